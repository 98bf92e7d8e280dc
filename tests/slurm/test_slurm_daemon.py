"""The daemon end to end on the real one-node SLURM cluster (contrib/slurm/start.sh).

Issue 3's daemon-level tests: a real ``batchman-daemon`` process (or, where a test must
hide something from it, the Engine in-process with the backend ``make_batch`` builds)
drives real sbatch/squeue/sacct/scancel, and every test asserts on the final status file.
Staging is in place (``staging.cache_dir`` = ``staging.stub_dir``), so what is exercised
is the batch side. Every wait polls with a deadline.

Accounting modes at daemon level: the 50-run and slurmctld-restart tests use ``jobcomp``
(``sacct -c``), the failure and crash tests ``slurmdbd`` (plain sacct) when the cluster has
it, and the "jobs already gone from squeue" test runs in both.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchman import params as P
from batchman.core import states as S
from batchman.backends.base import FINISHED
from batchman.cli.commands import main as cli_main

from clusterhelp import slurm_end_now, slurm_outage, slurm_wait_accounted
from e2e_helpers import daemon, daemon_run, env_for, job_starts, make_experiment, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- helpers
def slurm_experiment(cluster, root: Path, runs, mode: str = "jobcomp", **overrides):
    """An experiment on the SLURM backend with staging in place and short client timeouts."""
    os.chmod(root, 0o755)
    cfg = {"batch.backend": "slurm", "batch.slurm_accounting": mode,
           "staging.stub_dir": "raw", "staging.cache_dir": "raw",
           "batch.command_timeout": 5.0, "batch.time_limit": 300,
           "daemon.delay": 0.2, "daemon.submit_grace": 60.0}
    if "policies.retry" in P.BY_KEY:
        # each ending must stay as SLURM ended it (a timeout is not retried with more time)
        cfg["policies.retry"] = {"timeout": {"retry": False}}
    cfg.update(overrides)
    return make_experiment(root, runs, segments=1, **cfg)


def env(cluster, root, **extra):
    return env_for(root, **cluster.env, **extra)


def tasks(e) -> dict:
    return {t.run: t for t in e.store.read().tasks}


def states(e) -> dict:
    return {t.run: t.state for t in e.store.read().tasks}


def until(e, pred, timeout, step=0.1):
    """wait_for, and on timeout say where every task is."""
    try:
        return wait_for(pred, timeout, step)
    except AssertionError as x:
        raise AssertionError(f"{x}; tasks: {[(t.run, t.state, t.reason, t.attempt) for t in e.store.read().tasks]}") from None


def cli(root, *args) -> str:
    r = CliRunner().invoke(cli_main, ["-C", str(root), *args])
    assert r.exit_code == 0, r.output
    return r.output


def our_jobs(cluster, e) -> list[tuple[str, str, str]]:
    """(name, id, SLURM state) of this experiment's jobs that slurmctld still knows (-t all)."""
    prefix = f"bm.{e.store.read().store_id}."
    cp = cluster.run("squeue", "--noheader", "--states=all", "--format=%j|%i|%T")
    assert cp.returncode == 0, cp.stderr
    return [tuple(l.split("|")) for l in cp.stdout.splitlines() if l.startswith(prefix)]


def task_job_name(temp: Path, name: str, job_id: str) -> str:
    """The task's job name of a row of our_jobs: an element of a job array (batch.arrays) is
    listed under the array's name, its task's job name is in the array's members file."""
    from batchman.daemon.arrayjob import all_members
    if "_" not in job_id or not job_id.split("_", 1)[1].isdigit():
        return name
    members = all_members(str(temp / "arrays"), {name}).get(name, {})
    return members.get(int(job_id.split("_", 1)[1]), name)


def mode_or_skip(cluster, mode: str) -> str:
    if mode not in cluster.modes:
        pytest.skip("cluster started without slurmdbd (contrib/slurm/start.sh --with-slurmdbd)")
    return mode


def best_mode(cluster) -> str:
    return "slurmdbd" if "slurmdbd" in cluster.modes else "jobcomp"


def engine_blind_to_finished(cluster, root: Path, e, monkeypatch):
    """An in-process Engine on the real cluster, as after a daemon away longer than
    MinJobAge: squeue runs for real but its rows of finished jobs are dropped, so their end
    must come from accounting. Its jobs sleep 300 s unless ended by the test."""
    from batchman.backends.factory import make_batch, make_staging
    from batchman.daemon.engine import Engine
    for k, v in env(cluster, root, SLEEP=300).items():
        monkeypatch.setenv(k, v)
    batch = make_batch(e.params)
    real = batch._squeue
    monkeypatch.setattr(batch, "_squeue", lambda: [j for j in real() if j.state != FINISHED])
    return Engine(e.params, e.store, batch, make_staging(e.params), mode="test")


@pytest.fixture
def cleanup(cluster):
    """Daemons started by the test are stopped and its jobs cancelled, whatever happens."""
    procs: list[subprocess.Popen] = []
    exps: list = []
    yield procs, exps
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    for e in exps:
        try:
            left = [i for _, i, s in our_jobs(cluster, e) if s in ("PENDING", "RUNNING", "CONFIGURING")]
            if left:
                cluster.run("scancel", *left)
        except Exception:   # noqa: BLE001 -- best effort
            pass


def stop_daemon(p: subprocess.Popen) -> str:
    if p.poll() is None:
        p.terminate()
    out, _ = p.communicate(timeout=60)
    return out


# ----------------------------------------------------------------------------- 50 runs
class QueueSampler(threading.Thread):
    """Polls squeue: how many of our jobs are in SLURM and not yet ended by their own account
    (no ``exit`` marker: a job whose command returned is done for batchman even while SLURM
    still completes it). The peak must not exceed batch.max_jobs."""

    def __init__(self, cluster, e, attempts: Path):
        super().__init__(daemon=True)
        self.cluster, self.e, self.attempts = cluster, e, attempts
        self.peak = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            alive = [task_job_name(self.attempts.parent, n, i) for n, i, s in our_jobs(self.cluster, self.e)
                     if s in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")]
            n = sum(1 for name in alive if not (self.attempts / name / "exit").exists())
            self.peak = max(self.peak, n)
            self.samples += 1
            self.done.wait(0.1)


def test_fifty_runs_complete_within_max_jobs_and_the_daemon_exits(cluster, tmp_path, cleanup):
    max_jobs = 3
    e = slurm_experiment(cluster, tmp_path, range(1, 51), mode="jobcomp", **{"batch.max_jobs": max_jobs})
    cleanup[1].append(e)
    sampler = QueueSampler(cluster, e, tmp_path / ".batchman" / "attempts")
    sampler.start()
    try:
        r = daemon_run(tmp_path, "verbose", env=env(cluster, tmp_path, SLEEP=0.5), timeout=200)
    finally:
        sampler.done.set()
        sampler.join(10)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "nothing left to track: the daemon stops" in r.stdout

    st = e.store.read()
    assert len(st.tasks) == 50
    assert {t.state for t in st.tasks} == {S.COMPLETED}, {t.run: (t.state, t.reason) for t in st.tasks}
    assert all(t.exit_code == 0 and t.analysed == 1 and t.failure == "" for t in st.tasks)
    assert all(re.fullmatch(r"\d+(_\d+)?", t.job_id) and t.attempt == 1 and t.intent is None for t in st.tasks)
    assert len({t.job_id for t in st.tasks}) == 50
    assert st.daemons == [] and st.batch_unreachable_since is None
    listed = cli(tmp_path, "list", "--json")
    import json
    assert {row["state"] for row in json.loads(listed)["tasks"]} == {S.COMPLETED}
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in range(1, 51)}

    # the way there: every task was submitted, and SLURM's queue and run states were seen
    hist = e.store.history()
    to = {}
    for h in hist:
        to.setdefault(h["task"], []).append(h["to"])
    assert all(S.SUBMITTED in v and v[-1] == S.COMPLETED for v in to.values()), to
    seen = {s for v in to.values() for s in v}
    assert {S.SUBMITTING, S.SUBMITTED, S.QUEUED, S.RUNNING, S.COMPLETED} <= seen
    assert sum(S.QUEUED in v for v in to.values()) >= 10       # most waited: 3 in SLURM, 2 CPUs
    assert sum(S.RUNNING in v for v in to.values()) >= 25

    # the cap: from the jobs' own stamps (running at once) and from squeue (in SLURM at once)
    events = []
    for line in open(tmp_path / "jobs.log"):
        _, _, _, what, t = line.split()
        events.append((float(t), 1 if what == "start" else -1))
    running = peak = 0
    for _, d in sorted(events):
        running += d
        peak = max(peak, running)
    assert 1 <= peak <= min(max_jobs, 2)        # 2 CPUs on this node
    assert sampler.samples > 20
    assert sampler.peak <= max_jobs, f"{sampler.peak} jobs in SLURM at once, cap {max_jobs}"
    assert sampler.peak >= 2
    print(f"50 runs: peak running {peak}, peak in SLURM {sampler.peak} ({sampler.samples} samples)")


# ----------------------------------------------------------------------------- failures
def test_exit_3_time_limit_batchman_kill_and_scancel_by_hand(cluster, tmp_path, cleanup):
    """Run 1 exits 3; run 2 hits its time limit; run 3 is killed with `batchman kill`; run 4
    is cancelled with scancel outside batchman. One daemon follows all four to their end."""
    mode = best_mode(cluster)
    e = slurm_experiment(cluster, tmp_path, [1, 2, 3, 4], mode=mode,
                         **{"batch.time_limit": 60, "batch.max_jobs": 4})
    cleanup[1].append(e)
    d = daemon(tmp_path, "verbose", env=env(cluster, tmp_path, SLEEP=300, FAIL_RUNS="1"))
    cleanup[0].append(d)

    until(e, lambda: states(e)[1] in S.TERMINAL, 60)
    # time limit: SLURM's minimum is a minute; move the running job's end to now
    until(e, lambda: states(e)[2] == S.RUNNING and ("2.analysis", 1) in job_starts(tmp_path), 60)
    jid2 = tasks(e)[2].job_id
    # (refused as "Invalid time specified" while EndTime=now is not after StartTime: retried)
    slurm_end_now(cluster.env, jid2)
    # batchman kill of a running job
    until(e, lambda: states(e)[3] == S.RUNNING and ("3.analysis", 1) in job_starts(tmp_path), 60)
    jid3 = tasks(e)[3].job_id
    out = cli(tmp_path, "kill", "3")
    assert "kill queued for 1 task(s)" in out
    until(e, lambda: states(e)[3] == S.ABORTED, 60)
    # scancel by hand, outside batchman
    until(e, lambda: states(e)[4] == S.RUNNING and ("4.analysis", 1) in job_starts(tmp_path), 60)
    jid4 = tasks(e)[4].job_id
    cp = cluster.run("scancel", jid4)
    assert cp.returncode == 0, cp.stderr
    until(e, lambda: states(e)[4] in S.TERMINAL, 60)
    until(e, lambda: states(e)[2] in S.TERMINAL, 90, step=0.5)
    out = d.communicate(timeout=60)[0]
    assert d.returncode == 0, out[-3000:]
    assert "nothing left to track" in out

    t = tasks(e)
    # 1: exit 3
    assert (t[1].state, t[1].exit_code, t[1].failure) == (S.FAILED, 3, "exit-nonzero"), t[1]
    shown = cli(tmp_path, "show", "1")
    assert "state failed" in shown and "exit code 3" in shown
    assert "exit 3" in t[1].reason and "exit 3" in shown
    assert "failing on purpose" in shown                      # the job's stderr tail
    # 2: time limit
    assert (t[2].state, t[2].failure) == (S.FAILED, "timeout"), t[2]
    assert "TIMEOUT" in t[2].reason and t[2].native_state == "TIMEOUT"
    assert "timeout" in cli(tmp_path, "show", "2").lower()
    # 3: batchman kill
    assert (t[3].state, t[3].killed_in, t[3].job_id) == (S.ABORTED, S.RUNNING, jid3), t[3]
    # 4: scancel by hand
    assert (t[4].state, t[4].failure) == (S.FAILED, "cancelled"), t[4]
    assert "CANCELLED" in t[4].reason
    assert all(x.intent is None and x.request == "" for x in t.values())
    # nothing of ours left alive in SLURM; each job ran once
    alive = {(i, s) for _, i, s in our_jobs(cluster, e)}
    assert not {i for i, s in alive if s in ("PENDING", "RUNNING", "COMPLETING")}, alive
    states_by_id = {i: s for i, s in alive}
    assert states_by_id.get(jid2) == "TIMEOUT" and states_by_id.get(jid3) == "CANCELLED" \
        and states_by_id.get(jid4) == "CANCELLED", states_by_id
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in (1, 2, 3, 4)}


# ----------------------------------------------------------------------------- slurmctld down
@pytest.mark.cluster_outage
def test_slurmctld_stopped_and_restarted_while_jobs_run(cluster, tmp_path, cleanup):
    """8 runs, 4 in SLURM at once: slurmctld stops while 2 run and 2 wait. The running ones
    end meanwhile (completed from their exit markers), so the daemon tries to submit more
    while slurmctld is down: nothing is marked failed, iterations go on at the pace of
    batch.command_timeout, and everything completes once slurmctld is back."""
    runs = range(1, 9)
    # backoff_cap: once slurmctld is back the daemon asks within 5 s, not after the 20-40 s
    # wait its back-off had reached (the back-off itself: test_slurm_retry's 3-minute outage)
    e = slurm_experiment(cluster, tmp_path, runs, mode="jobcomp",
                         **{"batch.max_jobs": 4, "batch.command_timeout": 2.0, "batch.backoff_cap": 5.0})
    cleanup[1].append(e)
    d = daemon(tmp_path, "verbose", env=env(cluster, tmp_path, SLEEP=5))
    cleanup[0].append(d)
    wait_for(lambda: list(states(e).values()).count(S.RUNNING) >= 2, 60)
    # stopped for the test; started again (and answering) whatever happens
    with slurm_outage(cluster.env, ["slurmctld"]) as down_at:
        it0 = last_iter = None
        unconfirmed = False
        # The daemon keeps iterating (each squeue/sbatch gives up after command_timeout) and
        # marks nothing failed. Stay down at least 10 s, and until the jobs that were running
        # have ended (their slots free: the daemon may try sbatch meanwhile) and a few more
        # iterations went by.
        freed_at = None
        while time.time() - down_at < 40:
            st = e.store.read()
            bad = {t.run: (t.state, t.reason) for t in st.tasks if t.state in (S.FAILED, S.ERROR, S.ABORTED)}
            assert not bad, f"marked while slurmctld is down: {bad}"
            unconfirmed = unconfirmed or any(t.state == S.SUBMITTING and "not confirmed" in t.warning
                                             for t in st.tasks)
            if st.daemons:
                it0 = it0 if it0 is not None else st.daemons[0].iterations
                last_iter = st.daemons[0].iterations
            if freed_at is None and sum(t.state == S.COMPLETED for t in st.tasks) >= 2:
                freed_at = last_iter
            if time.time() - down_at >= 10 and (unconfirmed or (freed_at is not None and last_iter - freed_at >= 3)):
                break
            time.sleep(0.3)
        st = e.store.read()
        assert d.poll() is None, "the daemon exited while slurmctld was down"
        assert st.batch_unreachable_since is not None and st.batch_unreachable_since >= down_at - 1
        # the failure is on record (rounds in back-off do not ask, so not every iteration logs it)
        assert st.batch_last_error, st
        assert st.batch_last_error_at is not None and st.batch_last_error_at >= down_at - 1
        assert last_iter - it0 >= 2, f"only {last_iter - it0} iteration(s) while slurmctld was down"
        assert time.time() - st.last_iteration.at < 10         # not hanging in a command
        assert sum(t.state == S.COMPLETED for t in st.tasks) >= 2     # ended while it was down
    out = d.communicate(timeout=150)[0]
    assert d.returncode == 0, out[-3000:]
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, {t.run: (t.state, t.reason) for t in st.tasks}
    assert st.batch_unreachable_since is None
    assert "problem: batch system" in out
    # while it was down, at most one sbatch per iteration: the others were not even tried
    for block in out.split("iteration done")[:-1]:
        assert block.count("problem: submit bm.") <= 1, block
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in runs}
    assert all(t.attempt == 1 for t in st.tasks)
    hist = e.store.history()
    assert not [h for h in hist if h["to"] in (S.FAILED, S.ERROR)]


# ----------------------------------------------------------------------------- crash
def test_sigkill_between_sbatch_and_recording_the_id_adopts_the_job(cluster, tmp_path, cleanup):
    mode = best_mode(cluster)
    runs = [1, 2, 3]
    # plain jobs, one sbatch each (the same crash with a job array: tests/slurm/test_slurm_arrays.py)
    e = slurm_experiment(cluster, tmp_path, runs, mode=mode, **{"batch.max_jobs": 3, "batch.arrays": False})
    cleanup[1].append(e)
    crash_env = env(cluster, tmp_path, SLEEP=1, BATCHMAN_CRASH_AT="after-submit")
    r = daemon_run(tmp_path, "loop", env=crash_env, timeout=60)
    assert r.returncode == -9, r.stdout + r.stderr
    st = e.store.read()
    # the first sbatch went through, then the daemon died: no task knows a job id
    assert [t.state for t in st.tasks] == [S.SUBMITTING] * 3, [(t.state, t.reason) for t in st.tasks]
    assert all(t.job_id == "" and t.intent is not None for t in st.tasks)
    assert [n for n, _, _ in our_jobs(cluster, e)] == [st.tasks[0].job_name]
    # twice more: each restart adopts what the dead one submitted, submits one more, dies
    for _ in range(2):
        r = daemon_run(tmp_path, "loop", env=crash_env, timeout=60)
        assert r.returncode == -9, r.stdout + r.stderr
    st = e.store.read()
    assert st.tasks[0].job_id and st.tasks[0].state in (S.QUEUED, S.RUNNING, S.COMPLETED), st.tasks[0]
    assert st.tasks[2].job_id == "" and st.tasks[2].state == S.SUBMITTING
    assert len(our_jobs(cluster, e)) == 3
    names = {t.run: t.job_name for t in st.tasks}
    r = daemon_run(tmp_path, "verbose", env=env(cluster, tmp_path, SLEEP=1), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.state, t.reason) for t in st.tasks]
    assert all(t.attempt == 1 and t.intent is None and t.job_name == names[t.run] for t in st.tasks)
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in runs}
    assert "submitted bm." not in r.stdout                    # all three were adopted by name
    # SLURM has exactly one job per name, and it is the one recorded
    jobs = our_jobs(cluster, e)
    per_name = {}
    for name, jid, _ in jobs:
        per_name.setdefault(name, []).append(jid)
    assert per_name == {t.job_name: [t.job_id] for t in st.tasks}, per_name
    if mode == "slurmdbd":
        # slurmdbd records finished jobs' names a few seconds late: wait until all are there
        rows = slurm_wait_accounted(cluster.env, list(names.values()), since="now-1hour")
        assert sorted(n for n, _ in rows) == sorted(names.values()), rows


# ----------------------------------------------------------------------------- accounting
@pytest.mark.parametrize("mode", ["jobcomp", "slurmdbd"])
def test_jobs_gone_from_squeue_are_judged_from_accounting(cluster, tmp_path, cleanup, monkeypatch, mode):
    """As after a daemon away longer than MinJobAge: slurmctld no longer lists the finished
    jobs, so their end comes from accounting (sacct -c or plain sacct). The Engine runs
    in-process with the backend make_batch builds; squeue runs for real, but its rows of
    finished jobs are dropped."""
    mode_or_skip(cluster, mode)
    e = slurm_experiment(cluster, tmp_path, [1, 2], mode=mode, **{"batch.max_jobs": 2})
    cleanup[1].append(e)
    eng = engine_blind_to_finished(cluster, tmp_path, e, monkeypatch)
    batch = eng.batch

    def step_until(pred, timeout):
        end = time.monotonic() + timeout
        while True:
            rep = eng.run_once()
            assert rep.commands <= 3 or any(a.startswith("submitted") for a in rep.actions), rep
            if pred():
                return
            assert time.monotonic() < end, states(e)
            time.sleep(0.2)

    step_until(lambda: set(states(e).values()) == {S.RUNNING}, 60)
    ids = [t.job_id for t in tasks(e).values()]
    cp = cluster.run("scancel", *ids)
    assert cp.returncode == 0, cp.stderr
    step_until(lambda: all(s in S.TERMINAL for s in states(e).values()), 60)
    t = tasks(e)
    for r in (1, 2):
        assert (t[r].state, t[r].failure) == (S.FAILED, "cancelled"), t[r]
        assert "CANCELLED" in t[r].reason
    sacct = [r.argv for r in batch.runner.records if r.argv[0] == "sacct"]
    assert sacct, "accounting was never asked"
    assert all(("--completion" in a) == (mode == "jobcomp") for a in sacct)
    assert batch.accounting == mode
    eng.unregister()
