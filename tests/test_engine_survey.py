"""Issue 18: the daemon looks at the settled tasks (completed, aborted, skipped) once, not in
every iteration, and still sees one another process changed: a queued request, a write."""

import pytest

from batchman.core import plan as P
from batchman.core import states as S
from batchman.core.observed import StagingView
from batchman.daemon.engine import Engine
from batchman.experiment import open_experiment, store_for

from e2e_helpers import make_experiment
from test_observe_done import Batch     # every job running unless told otherwise


class Staging:
    def query(self, files):
        return StagingView()

    def request(self, files):
        pass

    release = cancel = request


@pytest.fixture
def engine(tmp_path, monkeypatch):
    e = make_experiment(tmp_path, range(1, 11))
    with e.store.transaction("test") as st:
        for t in st.tasks:
            t.state, t.attempt, t.job_name, t.job_id = S.COMPLETED, 1, f"bm.{st.store_id}.{t.run}.{t.job}.1", str(t.run)
        st.tasks[0].state = S.RUNNING
    eng = Engine(e.params, e.store, Batch(), Staging(), mode="test")
    surveyed = []
    real = P.live
    monkeypatch.setattr(P, "live", lambda tasks: surveyed.append(len(tasks)) or real(tasks))
    return e, eng, surveyed


def states(e):
    return {t.run: t.state for t in e.store.read().tasks}


def test_after_the_first_iteration_only_the_live_tasks_are_surveyed(engine):
    e, eng, surveyed = engine
    eng.run_once()
    assert surveyed[0] == 10
    surveyed.clear()
    eng.run_once()
    assert surveyed == [0]              # no task appended since (the live ones: plan.still_live)


def test_the_staging_tasks_are_kept_by_file_from_the_first_survey_without_a_pass(engine):
    """core/stagingwait.StagingWait (~0.15 s to make at 1,000,000 tasks) is made at the first
    steady survey, never in a round that surveys every task (a oneshot, after another writer)."""
    e, eng, surveyed = engine
    eng.run_once()
    assert eng.kept.staging is None
    eng.run_once()
    assert eng.kept.staging is not None
    with store_for(e.params).transaction("another process") as st:
        st.tasks[6].priority = 3
    eng.run_once()
    assert eng.kept.staging is None


def test_a_request_another_process_queues_on_a_settled_task_is_seen(engine):
    e, eng, surveyed = engine
    eng.run_once()
    eng.run_once()
    other = open_experiment(e.root)
    assert other.store.queue_requests({"5.analysis"}, "request", "restart") == 1
    surveyed.clear()
    eng.run_once()
    assert 10 in surveyed               # a settled task made live: every task looked at again
    assert states(e)[5] == S.NEW


def test_a_settled_task_another_process_changes_in_a_write_is_seen(engine):
    e, eng, surveyed = engine
    eng.run_once()
    eng.run_once()
    with store_for(e.params).transaction("another process") as st:
        st.tasks[6].request = "restart"
    surveyed.clear()
    eng.run_once()
    assert 10 in surveyed
    assert states(e)[7] == S.NEW


@pytest.mark.parametrize("point", ["after-observe", "after-intent"])
def test_a_request_queued_during_an_iteration_is_seen_by_the_next(engine, monkeypatch, point):
    """Queued after this iteration's survey: the iteration's last read merges it into the task in
    place, so the next survey cannot trust the last one (seed 39 of test_race_random)."""
    from batchman.daemon import crash
    e, eng, surveyed = engine
    eng.run_once()
    other = open_experiment(e.root)
    monkeypatch.setitem(crash.HOOKS, point, [lambda _eng: other.store.queue_requests({"3.analysis"}, "request", "restart")])
    eng.run_once()
    if point == "after-observe":         # merged by the read under the lock: decided again at once
        assert states(e)[3] == S.NEW
    monkeypatch.setitem(crash.HOOKS, point, [])
    eng.run_once()
    assert states(e)[3] in S.BEFORE_BATCH            # restarted (and on its way again)


def test_what_people_asked_reads_the_same_over_the_live_tasks():
    """The engine compares what was asked before deciding with what the locked read says, to
    re-plan on a request merged in between; over the live tasks it must read as over all."""
    from batchman.daemon.intents import asked as _asked
    from test_plan_live import scenario
    for seed in range(100):
        tasks = scenario(seed)[0]
        assert _asked(P.live(tasks)) == _asked(tasks)


def test_the_next_wakeup_sees_jobs_in_the_batch_system_whoever_wrote_last(engine):
    """After an iteration it looks at the live tasks only; after another writer, at all."""
    e, eng, surveyed = engine
    eng.pacing.every = 30.0
    eng.run_once()
    assert eng.next_wakeup(3600.0).reason == "query"            # the running task
    with store_for(e.params).transaction("another process") as st:
        st.tasks[0].state, st.tasks[0].reason = S.COMPLETED, "by hand"
    assert eng.next_wakeup(3600.0).reason == "delay"            # no job left to ask about
    with store_for(e.params).transaction("another process") as st:
        st.tasks[9].state = S.RUNNING                           # settled before: not in the live list
    assert eng.next_wakeup(3600.0).reason == "query"


def test_without_listings_while_asleep_the_iteration_lists_the_done_files(tmp_path):
    """daemon.watch_interval 0: the loop lists nothing while it sleeps; the iteration does."""
    import os
    e = make_experiment(tmp_path, [1], **{"daemon.watch_interval": 0})
    with e.store.transaction("test") as st:
        t = st.tasks[0]
        t.state, t.attempt, t.job_name, t.job_id = S.RUNNING, 1, f"bm.{st.store_id}.1.{t.job}.1", "1"
    name = t.job_name
    eng = Engine(e.params, e.store, Batch(), Staging(), mode="test")
    eng.run_once(set())                  # (the first iteration reads every marker anyway)
    os.makedirs(e.paths.attempt_dir(name), exist_ok=True)
    with open(os.path.join(e.paths.attempt_dir(name), "exit"), "w") as f:
        f.write("0\n")
    os.makedirs(e.paths.done, exist_ok=True)
    open(os.path.join(e.paths.done, name), "w").close()
    eng.run_once(set())                  # what the loop hands over after a sleep without listings
    assert states(e)[1] == S.COMPLETED


def test_a_failed_task_no_rule_retries_is_decided_again_only_after_another_writer(engine, monkeypatch):
    e, eng, surveyed = engine
    with e.store.transaction("test") as st:
        t = st.tasks[1]
        t.state, t.failure, t.exit_code = S.FAILED, "exit-nonzero", 1
    decided = []
    real = P.decide_task
    monkeypatch.setattr(P, "decide_task", lambda t, *a: (decided.append(t.run), real(t, *a))[1])
    eng.run_once()
    eng.run_once()
    assert decided.count(2) == 1        # auto_restart_failed is off: nothing to retry, asked once
    with store_for(e.params).transaction("another process") as st:
        st.tasks[1].note = "looked at"
    eng.run_once()
    assert decided.count(2) == 2


def test_the_cyclic_collector_waits_for_the_end_of_an_iteration(engine, monkeypatch):
    """What an iteration allocates is freed by reference counting; the collector walking every
    object several times an iteration cost 2.5 s at 1,000,000 tasks. It is on again after the
    iteration, an iteration that fails included."""
    import gc
    e, eng, _ = engine
    seen = []
    real = eng.batch.query
    monkeypatch.setattr(eng.batch, "query", lambda jobs, **kw: seen.append(gc.isenabled()) or real(jobs, **kw))
    eng.run_once()
    assert seen == [False] and gc.isenabled()
    monkeypatch.setattr(eng.batch, "query", lambda jobs, **kw: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        eng.run_once()
    assert gc.isenabled()
