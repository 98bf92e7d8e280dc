"""Issue 18 end to end: a daemon and a person on a status file kept as a change log (the size
threshold set to 0, so a small file behaves as a million-task one): the person's command wakes
the sleeping daemon through the log, every run completes once, and the daemon folds the log into
the status file between iterations, so what scripts read catches up."""

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from batchman.cli.commands import main
from batchman.core import states as S
from batchman.store import store as store_mod

from e2e_helpers import env_for, job_starts, make_experiment, wait_for

pytestmark = pytest.mark.slow


def test_a_daemon_and_a_person_on_a_logged_status_file(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)          # the person's commands, in this process
    e = make_experiment(tmp_path, [1, 2, 3], segments=1, **{
        "staging.cache_dir": "raw", "daemon.delay": 60.0, "daemon.watch_interval": 0.5})
    env = {**env_for(tmp_path, SLEEP=0.5), "BATCHMAN_STORE_LOG_FROM": "0", "BATCHMAN_STORE_COMPACT_MIN": "0"}
    d = subprocess.Popen([sys.executable, "-m", "batchman.daemon", "-C", str(tmp_path), "verbose", "--forever"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: {t.state for t in e.store.read().tasks} == {S.COMPLETED}, 60, what="runs 1-3 completed")
        assert os.path.exists(e.store.log_path)
        time.sleep(2)                       # the daemon is in its long sleep now
        # a person adds a run while the daemon sleeps (delay 60): the log's new line wakes it
        # (its raw file first: the daemon may look for it at once, and would then sleep 60 s)
        (tmp_path / "raw" / "run_4.dat.0").write_text("x\n")
        t0 = time.time()
        r = CliRunner().invoke(main, ["-C", str(tmp_path), "add", "4"])
        assert r.exit_code == 0, r.output
        wait_for(lambda: e.store.read().index().get("4.analysis") is not None
                 and e.store.read().index()["4.analysis"].state == S.COMPLETED, 30, what="run 4 completed")
        assert e.store.read().index()["4.analysis"].submitted_at - t0 < 5
        # the daemon folded the log into the file: what a script reads has caught up
        wait_for(lambda: json.load(open(e.store.path))["generation"] >= e.store.read().generation - 1, 30,
                 what="the file caught up with the log")
        plain = {t["run"]: t["state"] for t in json.load(open(e.store.path))["tasks"]}
        assert plain == {1: S.COMPLETED, 2: S.COMPLETED, 3: S.COMPLETED, 4: S.COMPLETED}
    finally:
        d.terminate()
        out, _ = d.communicate(timeout=30)
    assert d.returncode == 0, out
    assert all(n == 1 for n in job_starts(tmp_path).values()) and len(job_starts(tmp_path)) == 4
