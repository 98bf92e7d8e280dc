"""Issue 14: runs flow at the rate the batch system allows. Token buckets pace submissions,
staging requests and kills (pure, in plan); a job's end is seen from its done file within
seconds whatever daemon.delay is; a person's change wakes the daemon; between two batch
queries only the jobs whose end was seen have their files read."""

import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from batchman.backends.base import FINISHED, StagingView
from batchman.backends.factory import make_batch, make_staging
from batchman.cli.commands import main
from batchman.core import decide as D
from batchman.core import states as S
from batchman.core.decide import Observations, Policy
from batchman.core.plan import plan_budget
from batchman.core.model import Segment, Task
from batchman.daemon.engine import Engine

from e2e_helpers import env_for, make_experiment, wait_for

NOW = 1000.0
ME = "h:1"


def obs(**kw):
    return Observations(now=NOW, me=ME, live_daemons=frozenset({ME}), **kw)


def staged(run):
    return Task(run=run, state=S.STAGED, since=NOW, segments=[Segment(f"/d/{run}", True)])


def unstaged(run):
    return Task(run=run, state=S.UNSTAGED, since=NOW, segments=[Segment(f"/d/{run}", False)])


# ---- token buckets in the plan (pure) --------------------------------------------------------
@pytest.mark.parametrize("tokens, cap, submitted, held", [
    ({}, 0, 5, set()),                      # no bucket, no cap: all
    ({"submit": 2}, 0, 2, {"submit"}),      # the bucket
    ({"submit": 4}, 3, 3, {"submit"}),      # the per-iteration cap is still an upper bound
    ({"submit": 0}, 0, 0, {"submit"}),
    ({"submit": 9}, 0, 5, set()),           # enough tokens: nothing held
])
def test_submissions_are_drawn_from_the_bucket(tokens, cap, submitted, held):
    ts = [staged(r) for r in range(5)]
    view = StagingView(present={f"/d/{r}" for r in range(5)})
    ds, budget = plan_budget(ts, obs(staging=view), Policy(max_submit_per_iteration=cap), tokens=tokens)
    assert [d.state for _, d in ds].count(S.SUBMITTING) == submitted == budget.submits
    assert budget.held == held


def test_staging_requests_are_drawn_from_their_bucket():
    ts = [unstaged(r) for r in range(4)]
    ds, budget = plan_budget(ts, obs(staging=StagingView()), Policy(), tokens={"stage": 1})
    assert [t.run for t, d in ds if D.STAGE in d.actions] == [0] and budget.held == {"stage"}


def test_kills_are_drawn_from_their_bucket():
    ts = []
    for r in range(3):
        t = Task(run=r, state=S.RUNNING, since=NOW, job_name=f"j{r}", job_id=str(r), attempt=1, request="kill")
        ts.append(t)
    ds, budget = plan_budget(ts, obs(jobs={}), Policy(), tokens={"kill": 2})
    assert sum(D.CANCEL in d.actions for _, d in ds) == 2 and budget.held == {"kill"}


def test_max_jobs_is_not_a_bucket_and_does_not_wake_the_daemon():
    ts = [staged(r) for r in range(3)]
    view = StagingView(present={f"/d/{r}" for r in range(3)})
    ds, budget = plan_budget(ts, obs(staging=view), Policy(max_jobs=1), tokens={"submit": 5})
    assert budget.submits == 1 and budget.held == set()


# ---- the engine spends tokens and says when to wake -----------------------------------------
class Clock:
    t = 5000.0

    def __call__(self):
        return self.t


def test_the_engine_submits_a_burst_then_at_the_rate_and_wakes_when_a_token_is_back(tmp_path):
    e = make_experiment(tmp_path, range(1, 11), segments=1, **{
        "staging.cache_dir": "raw", "batch.submit_burst": 3, "batch.submit_rate": 0.5,
        "batch.max_submit_per_iteration": 0, "batch.local_slots": 1, "daemon.delay": 60.0})
    clock = Clock()
    eng = Engine(e.params, e.store, make_batch(e.params), make_staging(e.params), mode="test", clock=clock)
    eng.pacing.every = 60.0          # as the loop sets it: the batch system is asked every 60 s
    try:
        eng.run_once()
        assert sum(t.attempt == 1 for t in e.store.read().tasks) == 3      # the burst
        w = eng.next_wakeup(60.0)
        # the tokens of one watch interval (2 s at 0.5/s: one), not sooner
        assert w.reason == "submit" and w.at == pytest.approx(clock.t + 2.0)
        eng.run_once()
        assert sum(t.attempt == 1 for t in e.store.read().tasks) == 3      # no token yet
        clock.t += 4.0                                                     # two tokens
        eng.run_once()
        assert sum(t.attempt == 1 for t in e.store.read().tasks) == 5
    finally:
        for t in e.store.read().tasks:
            if t.job_id:
                eng.batch.cancel([t.job_id])


# ---- a job's end within seconds, whatever daemon.delay is ------------------------------------
@pytest.mark.slow
def test_a_jobs_end_is_recorded_within_seconds_with_a_long_delay_and_an_add_wakes_the_daemon(tmp_path):
    e = make_experiment(tmp_path, [1], segments=1, **{
        "staging.cache_dir": "raw", "daemon.delay": 60.0, "daemon.watch_interval": 0.5})
    env = env_for(tmp_path, SLEEP=1)
    d = subprocess.Popen([sys.executable, "-m", "batchman.daemon", "-C", str(tmp_path), "verbose", "--forever"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _state(e, 1) == S.COMPLETED, 30, what="run 1 completed")
        ended = _job_end(tmp_path, "1.analysis")
        lag = e.store.read().index()["1.analysis"].since - ended
        assert 0 <= lag < 5, lag                               # not 60 s: the done file woke it
        assert not os.listdir(tmp_path / ".batchman" / "done")   # its done file is gone once recorded
        # a person adds a run while the daemon sleeps (delay 60): it is submitted within seconds
        t0 = time.time()
        r = CliRunner().invoke(main, ["-C", str(tmp_path), "add", "2"])
        assert r.exit_code == 0, r.output
        (tmp_path / "raw" / "run_2.dat.0").write_text("x\n")
        wait_for(lambda: _state(e, 2) == S.COMPLETED, 30, what="run 2 completed")
        assert e.store.read().index()["2.analysis"].submitted_at - t0 < 5
    finally:
        d.terminate()
        out, _ = d.communicate(timeout=30)
    assert d.returncode == 0, out


def _state(e, run):
    t = e.store.read().index().get(f"{run}.analysis")
    return t.state if t else None


def _job_end(root, task):
    for line in open(root / "jobs.log"):
        name, att, pid, what, t = line.split()
        if name == task and what == "end":
            return float(t)
    raise AssertionError(f"no end of {task} in jobs.log")


# ---- between two queries, only the files of the jobs seen ending are read -------------------
def test_between_queries_only_the_jobs_seen_ending_have_their_markers_read(tmp_path):
    e = make_experiment(tmp_path, [1, 2], segments=1, **{"staging.cache_dir": "raw"})
    clock = Clock()
    eng = Engine(e.params, e.store, make_batch(e.params), make_staging(e.params), mode="test", clock=clock)
    eng.pacing.every = 60.0
    env_log = str(tmp_path / "jobs.log")
    os.environ["TEST_LOG"] = env_log
    try:
        eng.run_once(set())                       # submits both, asks nothing yet
        eng.run_once(set())                    # the batch system answers: next query in 60 s
        wait_for(lambda: len(list(tmp_path.glob(".batchman/attempts/*/exit"))) == 2, 30, what="both ends")
        names = {t.run: t.job_name for t in e.store.read().tasks}
        # and both ends as the batch system sees them: a runner slowed by load still lists its
        # job as running after the job's exit marker, and a query then rightly reads no marker
        ids = {t.job_name: t.job_id for t in e.store.read().tasks}
        wait_for(lambda: all(i.state == FINISHED for i in eng.batch.query(ids).values()), 30,
                 what="both jobs over in the batch system")
        clock.t += 1
        eng.run_once({names[1]})               # only run 1's done file was seen
        assert _state(e, 1) == S.COMPLETED and _state(e, 2) in S.IN_BATCH    # its marker unread
        clock.t += 60                          # a query is due: every job's files are read
        eng.run_once(set())
        assert _state(e, 2) == S.COMPLETED
    finally:
        os.environ.pop("TEST_LOG", None)


def test_done_files_are_removed_once_their_end_is_recorded_and_kept_while_the_job_runs(tmp_path):
    """At the end of a round the done files of jobs whose end is recorded go; one of a job
    still in the batch system stays (a hint: its end is not recorded yet), and so does the
    rest of the directory. Whether this daemon alone wrote (its job names kept) or another
    process wrote too (every task looked at), the same files go."""
    e = make_experiment(tmp_path, [1, 2], segments=1, **{"staging.cache_dir": "raw"})
    clock = Clock()
    eng = Engine(e.params, e.store, make_batch(e.params), make_staging(e.params), mode="test", clock=clock)
    eng.pacing.every = 60.0
    os.environ["TEST_LOG"] = str(tmp_path / "jobs.log")
    try:
        eng.run_once(set())
        eng.run_once(set())
        wait_for(lambda: len(list(tmp_path.glob(".batchman/attempts/*/exit"))) == 2, 30, what="both ends")
        names = {t.run: t.job_name for t in e.store.read().tasks}
        clock.t += 1
        eng.run_once({names[1]})                  # only run 1's end is recorded
        assert _state(e, 1) == S.COMPLETED and _state(e, 2) in S.IN_BATCH
        done = tmp_path / ".batchman" / "done"
        for other in (False, True):
            for n in (names[1], names[2], "bm.elsewhere.7.analysis.1"):
                (done / n).write_text("")
            eng.watcher.seen = {names[1], names[2]}
            if other:                             # another process wrote: the list is read again
                with make_experiment_store(tmp_path).transaction("test") as st:
                    st.tasks[0].priority += 1
            final = e.store.read()
            assert (final.tasks is eng._live[0]) is not other
            eng._forget_ended(final)
            assert sorted(os.listdir(done)) == sorted([names[2], "bm.elsewhere.7.analysis.1"]), other
            assert eng.watcher.seen == {names[2]}
    finally:
        os.environ.pop("TEST_LOG", None)
        for t in e.store.read().tasks:
            if t.job_id:
                eng.batch.cancel([t.job_id])


def make_experiment_store(root):
    """Another process's store of the same experiment (a `batchman` command)."""
    from batchman.experiment import open_experiment
    return open_experiment(str(root)).store
