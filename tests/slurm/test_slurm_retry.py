"""Issue 8 on the real one-node SLURM cluster: retries by failure class with changed resources,
polling that backs off while slurmctld is down, and an sbatch that hangs after submitting.

Memory enforcement here: no cgroups on this node, so the cluster runs
``JobAcctGatherType=jobacct_gather/linux`` + ``JobAcctGatherParams=OverMemoryKill`` (sampled
every second). A job over its ``--mem`` is SIGKILLed; SLURM reports it FAILED (signal 9,
reason JobLaunchFailure / exit 0:9), never OUT_OF_MEMORY. Only slurmstepd's line in the job's
stderr ("... exceeded memory limit ...") tells it was memory: the daemon reads the tail of the
attempt's stderr and classifies the attempt as out-of-memory from that hint.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from batchman.core import states as S

from clusterhelp import slurm_end_now, slurm_outage, slurm_wait_accounted
from e2e_helpers import daemon, job_starts, wait_for
from test_slurm_daemon import best_mode, cleanup, env, slurm_experiment, states, tasks  # noqa: F401

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(420)]

JOB = r"""#!/bin/bash
# issue-8 test job: behaviour by run (and attempt)
echo "$BATCHMAN_TASK $BATCHMAN_ATTEMPT $$ start $(date +%s.%N)" >> "$TEST_LOG"
case "$1" in
  1) python3 -c "import time; b = b'x' * (150 * 2**20); time.sleep(6)" || exit $? ;;  # needs ~160 MB
  2) [ "$BATCHMAN_ATTEMPT" = 1 ] && sleep 300; sleep 1 ;;                            # 1st: time limit
  3) sleep 300 ;;                                                                     # scancel by hand
  4) echo "exit 1 on purpose" >&2; exit 1 ;;
  *) if [ -n "$GO" ]; then while [ ! -f "$GO" ]; do sleep 0.5; done; fi; sleep "${SLEEP:-0.2}" ;;
esac
echo "segments_analysed = 1" > "$BATCHMAN_STATS_FILE"
echo "$BATCHMAN_TASK $BATCHMAN_ATTEMPT $$ end $(date +%s.%N)" >> "$TEST_LOG"
"""


def write_job(root: Path) -> None:
    p = root / "analyze"
    p.write_text(JOB)
    p.chmod(0o755)


def scontrol_job(cluster, job_id: str) -> dict[str, str]:
    cp = cluster.run("scontrol", "show", "job", "--oneliner", job_id)
    assert cp.returncode == 0, cp.stderr
    return dict(w.split("=", 1) for w in cp.stdout.split() if "=" in w)


def ctld_alive(cluster) -> bool:
    """slurmctld's process is there (from its pid file; no RPC)."""
    try:
        pid = int((cluster.dir / "run" / "slurmctld.pid").read_text().split()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


# ----------------------------------------------------------------------------- retries by class
def test_memory_time_scancel_and_exit_1_are_classified_and_retried_per_policy(cluster, tmp_path, cleanup):
    e = slurm_experiment(cluster, tmp_path, [1, 2, 3, 4], mode=best_mode(cluster),
                         **{"policies.retry": {}},      # the default rules (slurm_experiment turns timeout retries off)
                         **{"batch.time_limit": 60, "batch.memory_mb": 100, "batch.max_jobs": 4,
                            "policies.auto_restart_failed": True, "policies.max_auto_restarts": 1,
                            "batch.min_query_interval": 1.0})
    write_job(tmp_path)
    cleanup[1].append(e)
    d = daemon(tmp_path, "verbose", env=env(cluster, tmp_path))
    cleanup[0].append(d)

    # the time limit: SLURM's minimum is a minute, so move the first attempt's end to now
    wait_for(lambda: ("2.analysis", 1) in job_starts(tmp_path) and tasks(e)[2].state == S.RUNNING, 90)
    jid2 = tasks(e)[2].job_id
    # (refused as "Invalid time specified" while now is not after its StartTime: retried)
    slurm_end_now(cluster.env, jid2)
    # a person's scancel, outside batchman
    wait_for(lambda: ("3.analysis", 1) in job_starts(tmp_path) and tasks(e)[3].state == S.RUNNING, 90)
    jid3 = tasks(e)[3].job_id
    assert cluster.run("scancel", jid3).returncode == 0

    out = d.communicate(timeout=240)[0]
    assert d.returncode == 0, out[-4000:]
    t = tasks(e)

    # 1: over --mem=100M -> killed (OverMemoryKill) -> out-of-memory -> again with 200 MB -> completed
    assert t[1].state == S.COMPLETED and t[1].attempt == 2, (t[1], out[-3000:])
    a = t[1].past[0]
    assert a.failure_class == "out-of-memory" and a.resources.get("memory_mb") == 100, a
    assert "memory 100 -> 200 MB" in a.retry and t[1].used.get("memory_mb") == 200
    assert t[1].resources == {"memory_mb": 200} and t[1].auto_restarts == 1
    assert scontrol_job(cluster, t[1].job_id).get("MinMemoryNode") == "200M"
    assert scontrol_job(cluster, a.job_id).get("JobState") == "FAILED"     # what SLURM calls it

    # 2: TIMEOUT -> time limit x2 (60 -> 120 s; the debug partition has no maximum) -> completed
    assert t[2].state == S.COMPLETED and t[2].attempt == 2, t[2]
    a = t[2].past[0]
    assert (a.failure_class, a.job_id, a.resources.get("time_limit")) == ("timeout", jid2, 60), a
    assert "time limit 60 -> 120 s" in a.retry
    assert scontrol_job(cluster, jid2)["TimeLimit"] == "00:01:00"
    assert scontrol_job(cluster, t[2].job_id)["TimeLimit"] == "00:02:00"

    # 3: cancelled by hand -> cancelled-by-user, not retried
    assert (t[3].state, t[3].failure_class, t[3].attempt, t[3].past) == (S.FAILED, "cancelled-by-user", 1, ()), t[3]

    # 4: exit 1 -> exit-nonzero, retried once unchanged (auto_restart_failed, max_auto_restarts 1), then left
    assert (t[4].state, t[4].failure_class, t[4].attempt, t[4].exit_code) == (S.FAILED, "exit-nonzero", 2, 1), t[4]
    assert t[4].past[0].failure_class == "exit-nonzero" and "retry 1 of 1" in t[4].past[0].retry
    assert t[4].resources == {} and t[4].auto_restarts == 1

    # shown to people: every attempt with class, reason and resources
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli_main
    shown = CliRunner().invoke(cli_main, ["-C", str(tmp_path), "show", "1"]).output
    assert "out-of-memory" in shown and "100 MB" in shown and "200 MB" in shown, shown
    assert job_starts(tmp_path) == {("1.analysis", 1): 1, ("1.analysis", 2): 1, ("2.analysis", 1): 1,
                                    ("2.analysis", 2): 1, ("3.analysis", 1): 1, ("4.analysis", 1): 1,
                                    ("4.analysis", 2): 1}


# ----------------------------------------------------------------------------- 3 minutes without slurmctld
@pytest.mark.cluster_outage
def test_slurmctld_down_three_minutes_with_50_jobs_backs_off_and_changes_nothing(cluster, tmp_path, cleanup):
    runs = range(101, 151)
    go = tmp_path / "go"
    e = slurm_experiment(cluster, tmp_path, runs, mode="jobcomp",
                         **{"batch.max_jobs": 50, "batch.max_submit_per_iteration": 50,
                            "batch.command_timeout": 3.0, "batch.min_query_interval": 2.0,
                            "batch.backoff_cap": 40.0, "daemon.delay": 0.5,
                            # all 50 at once, as before batch.submit_rate (at 2/s: ~10 s more)
                            "batch.submit_rate": 0.0})
    write_job(tmp_path)
    cleanup[1].append(e)
    d = daemon(tmp_path, "verbose", env=env(cluster, tmp_path, GO=go, SLEEP=0.1))
    cleanup[0].append(d)
    # all 50 in SLURM, two of them running (2 CPUs), waiting for the go file
    wait_for(lambda: set(states(e).values()) <= {S.QUEUED, S.RUNNING}
             and list(states(e).values()).count(S.RUNNING) >= 2, 120, step=0.5)
    before = {t.run: (t.state, t.job_id, t.attempt) for t in e.store.read().tasks}
    # stopped for the test; started again (and answering) whatever happens
    with slurm_outage(cluster.env, ["slurmctld"]) as down_at:
        back_at = None                        # the cluster is shared: another session may start it early
        tries: dict[float, float] = {}        # query round -> its next try, as the status file says
        while time.time() - down_at < 180:
            if back_at is None and ctld_alive(cluster):
                back_at = time.time()
                print(f"slurmctld started again by someone else after {back_at - down_at:.0f} s")
            st = e.store.read()
            now_states = {t.run: (t.state, t.job_id, t.attempt) for t in st.tasks}
            assert now_states == before, {r: (before[r], s) for r, s in now_states.items() if s != before[r]}
            li = st.last_iteration
            if li is not None and li.queried and st.batch_next_try:
                tries[li.at] = st.batch_next_try
            time.sleep(0.2)
        st = e.store.read()
        assert d.poll() is None
        if back_at is None:
            assert st.batch_unreachable_since is not None and st.batch_unreachable_since >= down_at - 1
            assert st.batch_next_try and st.batch_last_error, st
    waits = [nt - at for at, nt in sorted(tries.items()) if back_at is None or at < back_at]
    # exponential: from ~5 s to the 40 s cap (x0.75-1.25 jitter), so few queries in 3 minutes
    # (the first rounds' waits are short: 5-10 s with jitter; sampling may miss a round)
    assert len(waits) >= 2 and min(waits) < 15 and max(waits) <= 40.5, waits
    if back_at is None or back_at - down_at > 100:
        assert len(waits) >= 3 and max(waits) > 25, waits
    assert len(waits) <= 12, f"{len(waits)} query rounds in 3 minutes of outage"
    print(f"back-off while slurmctld was down: {[round(w, 1) for w in waits]}")
    go.write_text("go\n")
    out = d.communicate(timeout=150)[0]
    assert d.returncode == 0, out[-3000:]
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, {t.run: (t.state, t.reason) for t in st.tasks}
    assert st.batch_unreachable_since is None and st.batch_next_try is None
    assert all(t.attempt == 1 and t.job_id == before[t.run][1] for t in st.tasks)
    assert not [h for h in e.store.history() if h["to"] in (S.FAILED, S.ERROR)]
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in runs}


# ----------------------------------------------------------------------------- sbatch that hangs
def test_sbatch_hanging_after_submitting_gives_exactly_one_job_per_task(cluster, tmp_path, cleanup):
    runs = [201, 202, 203, 204]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "sbatch"
    wrapper.write_text("#!/bin/bash\n# submits for real, then hangs past batch.command_timeout\n"
                       "/usr/bin/sbatch \"$@\"; rc=$?\nsleep 60\nexit $rc\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    mode = best_mode(cluster)
    # plain jobs, one sbatch each (a hanging sbatch of a job array: tests/slurm/test_slurm_arrays.py)
    e = slurm_experiment(cluster, tmp_path, runs, mode=mode,
                         **{"batch.command_timeout": 3.0, "batch.max_jobs": 4, "batch.arrays": False})
    write_job(tmp_path)
    cleanup[1].append(e)
    t0 = time.time()
    d = daemon(tmp_path, "verbose", env=env(cluster, tmp_path, PATH=f"{bindir}:{os.environ['PATH']}", SLEEP=0.5))
    cleanup[0].append(d)
    out = d.communicate(timeout=150)[0]
    assert d.returncode == 0, out[-3000:]
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, {t.run: (t.state, t.reason) for t in st.tasks}
    assert out.count("sbatch timed out") >= len(runs), out[-3000:]       # every sbatch hung
    assert all(t.attempt == 1 for t in st.tasks)
    assert not [h for h in e.store.history() if h["to"] in (S.FAILED, S.ERROR)]
    names = sorted(t.job_name for t in st.tasks)
    if mode == "slurmdbd":
        # slurmdbd records a finished job's name a few seconds late: wait until every name is there
        since = time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(t0 - 60))
        rows = slurm_wait_accounted(cluster.env, names, since=since)
    else:
        cp = cluster.run("squeue", "--noheader", "--states=all", "--format=%j|%i")
        assert cp.returncode == 0, cp.stderr
        rows = [l.split("|") for l in cp.stdout.splitlines() if l.split("|")[0] in names]
    assert sorted(n for n, _ in rows) == names, rows                     # exactly one job per task
    assert {n: i for n, i in rows} == {t.job_name: t.job_id for t in st.tasks}
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in runs}
