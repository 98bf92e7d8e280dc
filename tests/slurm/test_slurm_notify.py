"""Issue 19 on the real SLURM cluster: slurmctld stops while jobs run; the webhook hears once
that the batch system is unreachable and once that it answers again, then that all is done."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from batchman.core import states as S

from clusterhelp import slurm_outage
from e2e_helpers import daemon, env_for, make_experiment, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notify"))   # tests/ is not a package
from receivers import Receiver  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.cluster_outage, pytest.mark.timeout(240)]


def test_an_outage_of_slurmctld_is_told_when_it_starts_and_when_it_ends(cluster, tmp_path):
    hook = Receiver()
    os.chmod(tmp_path, 0o755)
    e = make_experiment(tmp_path, [1, 2], segments=1, **{
        "batch.backend": "slurm", "batch.slurm_accounting": "jobcomp", "staging.stub_dir": "raw",
        "staging.cache_dir": "raw", "batch.command_timeout": 2.0, "batch.time_limit": 300,
        "daemon.delay": 0.5, "daemon.submit_grace": 60.0, "batch.backoff_cap": 4.0,
        "notify.targets": [hook.url()], "notify.unreachable_minutes": 0.1})
    # the jobs run until the test writes the go file (once slurmctld is back and the daemon was
    # told so), not for a fixed time long enough to outlast the outage (25 s: ~7 s more)
    go = tmp_path / "go"
    d = daemon(tmp_path, "verbose", env=env_for(tmp_path, **cluster.env, GO=go))
    try:
        wait_for(lambda: any(t.state == S.RUNNING for t in e.store.read().tasks), 90)
        with slurm_outage(cluster.env, ["slurmctld"]):   # restarted, and answering, whatever happens
            wait_for(lambda: any("has not answered" in t for t in hook.titles()), 60)
            time.sleep(3)                                # more iterations while down: still one message
        # told once the daemon asks again and is answered, while its jobs still run (as when
        # they slept through the outage); then they may end
        wait_for(lambda: any("answers again" in t for t in hook.titles()), 60,
                 what="the webhook told that the batch system answers again", show=hook.titles)
        go.write_text("go\n")
        out = d.communicate(timeout=150)[0]
        assert d.returncode == 0, out[-3000:]
        titles = hook.wait(3, timeout=10) and hook.titles()
        assert sum("batch system has not answered" in t for t in titles) == 1, titles
        assert sum("batch system answers again" in t for t in titles) == 1, titles
        assert sum("production finished" in t for t in titles) == 1, titles
        assert len(titles) == 3, titles
    finally:
        go.write_text("go\n")                            # no job of ours left waiting in SLURM
        if d.poll() is None:
            d.terminate()
            d.communicate(timeout=30)
        hook.server.shutdown()
