"""Issue 18: the daemon records its decisions before it takes the lock (daemon/intents.py,
store/ahead.py) on a status file kept as a change log (LOG_FROM 0: a small file behaves as a
million-task one); what another process writes meanwhile is never lost nor overruled."""

import pytest

from batchman.core import states as S
from batchman.daemon import record as R
from batchman.experiment import open_experiment, store_for
from batchman.store import store as store_mod

from test_engine_survey import engine, states  # noqa: F401 - the fixture


@pytest.fixture(autouse=True)
def logged(monkeypatch):
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    monkeypatch.setattr(store_mod, "CHECK", True)


def watch_recording(monkeypatch, e, during=None):
    """Note, at each recording of decisions, whether the lock was held; ``during``: what
    another process does at the first one."""
    locked = []
    real = R.record_decisions

    def spy(store, st, decisions, *a):
        locked.append(open_experiment(e.root).store.is_locked())
        if len(locked) == 1 and during:
            during()
        return real(store, st, decisions, *a)
    monkeypatch.setattr(R, "record_decisions", spy)
    return locked


def test_the_decisions_are_recorded_before_the_lock_is_taken(engine, monkeypatch):  # noqa: F811
    e, eng, _ = engine
    eng.run_once()
    eng.batch.says[e.store.read().tasks[0].job_name] = "finished"
    locked = watch_recording(monkeypatch, e)
    eng.run_once()
    assert locked == [False]
    assert states(e)[1] == S.COMPLETED and store_for(e.params).read().tasks[0].state == S.COMPLETED
    assert [h["to"] for h in e.store.history({"1.analysis"})][-1] == S.COMPLETED


@pytest.mark.parametrize("how", ["queued", "written"])
def test_a_restart_asked_while_the_daemon_records_is_decided_again_under_the_lock(engine, monkeypatch, how):  # noqa: F811
    """The running task 1 finishes; meanwhile a person asks to restart the completed task 5.
    The recording is undone, done again under the lock on what the person wrote, and the
    restart is obeyed in the same iteration, as if it had been asked before."""
    e, eng, _ = engine
    eng.run_once()
    eng.batch.says[e.store.read().tasks[0].job_name] = "finished"

    def restart():
        other = open_experiment(e.root).store
        if how == "queued":
            assert other.queue_requests({"5.analysis"}, "request", "restart") == 1
        else:
            with other.transaction("a person") as st:
                st.index()["5.analysis"].request = "restart"
    locked = watch_recording(monkeypatch, e, restart)
    eng.run_once()
    assert locked == [False, True]
    got = store_for(e.params).read()
    assert {t.run: t.state for t in got.tasks} == states(e)
    assert states(e)[1] == S.COMPLETED and states(e)[5] == S.NEW
    assert got.index()["5.analysis"].request == ""
    ends = [h for h in e.store.history({"1.analysis"}) if h["to"] == S.COMPLETED]
    assert len(ends) == 1 and ends[0]["g"] <= got.generation      # recorded once, by the second run
