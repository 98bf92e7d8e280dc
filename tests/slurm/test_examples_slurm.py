"""examples/hallc-replay (jcache test double, batchman-jobwrap, a failed replay restarted) and examples/lcls-arp (several jobs
per run, partition per job, counters, ARP's environment) on the real SLURM cluster, each from
`batchman init --example` to every run completed with its declared outputs."""

from __future__ import annotations

import getpass
import json
import os
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchman.core import states as S
from batchman.cli.commands import main as cli

from e2e_helpers import daemon_run, env_with_batchman, example_experiment

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(280)]

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


def invoke(root, *args):
    r = CliRunner().invoke(cli, ["-C", str(root), *args])
    assert r.exit_code == 0, r.output
    return r.output


def run_daemon(cluster, e, root, env):
    """The daemon until nothing is left; our jobs still in SLURM afterwards are cancelled."""
    prefix = f"bm.{e.store.read().store_id}."
    try:
        d = daemon_run(root, "--delay", "0.3", env=env_with_batchman({**env, **cluster.env}), timeout=240)
        assert d.returncode == 0, d.stdout[-3000:] + d.stderr
        assert "nothing left to track" in d.stdout
    finally:
        b = cluster.backend()
        left = [j.job_id for j in b.list_ours(prefix) if j.state != "finished"]
        if left:
            b.cancel(left)


def test_hallc_replay_jcache_staging_jobwrap_on_slurm_to_completed_and_released(cluster, tmp_path):
    e = example_experiment(tmp_path, "hallc-replay")
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JCACHE_DOUBLE_")}
    env.update(PATH=f"{DOUBLES}{os.pathsep}{env['PATH']}", JCACHE_DOUBLE_DIR=str(tmp_path / "tape/jcache-state"),
               JCACHE_DOUBLE_MSS=str(tmp_path / "tape/mss"), JCACHE_DOUBLE_CACHE=str(tmp_path / "tape/cache"),
               JCACHE_DOUBLE_USER=user, JCACHE_DOUBLE_DELAY="0.05", REPLAY_SLEEP="0.1")
    # fault injection: run 2050's first replay fails, so the example's auto_restart_failed acts
    replay = tmp_path / "Runtime" / "replay"
    replay.rename(replay.with_name("replay.real"))
    replay.write_text('#!/bin/bash\n[ "$1" = 2050 ] && [ "$BATCHMAN_ATTEMPT" = 1 ] && { echo "failing once" >&2; exit 3; }\n'
                      'exec ./replay.real "$@"\n')
    replay.chmod(0o755)
    invoke(tmp_path, "add", "--file", str(tmp_path / "runs.txt"))
    run_daemon(cluster, e, tmp_path, env)

    tasks = {t.run: t for t in e.store.read().tasks}
    assert sorted(tasks) == [2049, 2050, 2051]
    assert {t.state for t in tasks.values()} == {S.COMPLETED}, [(t.run, t.state, t.reason) for t in tasks.values()]
    assert e.params["policies.auto_restart_failed"] and e.params["policies.max_auto_restarts"] == 2
    to_2050 = [h["to"] for h in e.store.history() if h["task"] == tasks[2050].key]
    assert S.FAILED in to_2050 and to_2050[-1] == S.COMPLETED, to_2050
    for run, t in tasks.items():
        nseg = run % 3 + 1
        assert t.job == "replay" and re.fullmatch(r"\d+(_\d+)?", t.job_id) and t.attempt == (2 if run == 2050 else 1)
        assert t.segments and len(t.segments) == nseg and t.analysed == nseg      # from jobwrap's stats file
        assert t.counters.get("segments_done") == nseg
        out = tmp_path / f"ROOTfiles/coin_replay_production_{run}_-1.root"
        assert out.read_text() == f"run {run}: {nseg} segments, {4096 * nseg} bytes replayed\n"
    state = json.loads((tmp_path / "tape/jcache-state/state.json").read_text())
    assert len(state["requests"]) >= 1                             # staged through jcache get
    assert not [f for f, users in state["pins"].items() if user in users]   # every file released


def test_lcls_arp_smd_then_summary_manual_calib_counters_partition_per_job(cluster, tmp_path):
    e = example_experiment(tmp_path, "lcls-arp")
    invoke(tmp_path, "add", "--file", str(tmp_path / "runs.txt"))
    invoke(tmp_path, "run", "5", "--job", "calib")
    run_daemon(cluster, e, tmp_path, dict(os.environ, ARP_SLEEP="0.1"))

    tasks = {(t.run, t.job): t for t in e.store.read().tasks}
    assert sorted(tasks) == sorted([(5, "calib")] + [(r, j) for r in (5, 6, 7) for j in ("smd", "summary")])
    assert {t.state for t in tasks.values()} == {S.COMPLETED}, [(k, t.state, t.reason) for k, t in tasks.items()]
    h5 = tmp_path / "hdf5"
    for run in (5, 6, 7):
        smd = h5 / f"smalldata/xpptut15_Run{run:04d}.h5"
        assert smd.read_text() == f"smalldata of xpptut15 run {run}: 100 events\n"
        assert smd.read_text().strip() in (h5 / f"summary/xpptut15_Run{run:04d}.txt").read_text()
        assert tasks[(run, "smd")].counters == {"Counter": 2, "events": 100}     # reported from the job
        assert tasks[(run, "summary")].counters == {"summary": "ok"}
    assert (h5 / "calib/xpptut15_Run0005_pedestals.txt").exists()
    assert not (h5 / "calib/xpptut15_Run0006_pedestals.txt").exists()            # manual: only where asked
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("6.smd.*"))
    assert "EXPERIMENT=xpptut15 RUN_NUM=6" in logs                                # ARP's environment

    if cluster.accounting != "slurmdbd":
        return
    want = {t.job_id: {"smd": "debug", "summary": "short", "calib": "short"}[t.job] for t in tasks.values()}
    end = time.monotonic() + 60
    while True:     # slurmdbd records a job a few seconds after it ended
        cp = cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID,Partition", "-j", ",".join(want))
        seen = dict(line.split("|") for line in cp.stdout.split() if "|" in line)
        if seen == want or time.monotonic() > end:
            break
        time.sleep(1)
    assert seen == want
