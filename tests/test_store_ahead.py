"""Issue 18: a transaction made ready before the lock is taken (store/ahead.py). The body runs
and its record is encoded without the lock; under it only the appends. When another process
wrote meanwhile, the body's changes are undone and it runs again under the lock, so what
lands is what an ordinary transaction would have written. Small files with LOG_FROM at 0
behave as a million-task one; every write is checked against the file (CHECK)."""

import json

import pytest

from batchman.core import model
from batchman.core.model import Task
from batchman.store import ahead
from batchman.store.store import ShrinkRefused, Store

import test_store_log as log
from test_store_log import log_at_any_size  # noqa: F401 - LOG_FROM 0, every write checked


def make(tmp_path, n=10):
    s = log.make(tmp_path, n)
    with s.transaction("test") as st:      # the change log exists from here on
        st.tasks[0].priority = 1
    return s


def other(s):
    return Store(s.path, lock_timeout=2)


def journal(s):
    return [json.loads(line) for line in open(s.journal_path)]


def stage(s, runs, during=None):
    """A body that stages ``runs`` (and appends run 99), noting whether the lock was held;
    ``during``: what another process does during its first run."""
    calls = []

    def body(st):
        calls.append(other(s).is_locked())
        if len(calls) == 1 and during:
            during()
        idx = st.index()
        for r in runs:
            t = idx[f"{r}.analysis"]
            t.state = "unstaged"
            t.segments[0].staged = True
            model.touch(t)
            s.record(t.key, "new", "unstaged", "found", "test")
        st.tasks.append(Task(run=99))
        return len(calls)
    return body, calls


def test_the_body_runs_and_is_encoded_before_the_lock_is_taken(tmp_path):
    s = make(tmp_path)
    body, calls = stage(s, [2, 3])
    idx = s.read().index()
    assert ahead.update(s, "test", body, [idx["2.analysis"], idx["3.analysis"]]) == 1
    assert calls == [False]                     # not under the lock
    got = other(s).read()
    assert [t.state for t in got.tasks[2:4]] == ["unstaged", "unstaged"] and got.tasks[-1].run == 99
    assert got.tasks[2].segments[0].staged and got.generation == s.read().generation == 3
    assert [(e["task"], e["g"]) for e in journal(s)[-2:]] == [("2.analysis", 3), ("3.analysis", 3)]


@pytest.mark.parametrize("meanwhile", ["write", "request"])
def test_another_writer_meanwhile_undoes_the_body_and_runs_it_again_under_the_lock(tmp_path, meanwhile):
    s = make(tmp_path)
    idx = s.read().index()

    def during():
        if meanwhile == "write":
            with other(s).transaction("other") as st:
                st.tasks[2].priority = 7
        else:
            other(s).queue_requests({"2.analysis"}, "priority", 7)
    body, calls = stage(s, [2, 3], during)
    assert ahead.update(s, "test", body, [idx["2.analysis"], idx["3.analysis"]]) == 2
    assert calls == [False, True]               # again, under the lock
    for got in (s.read(), other(s).read()):
        t2 = got.index()["2.analysis"]
        assert (t2.state, t2.priority, t2.segments[0].staged) == ("unstaged", 7, True)
        assert [t.run for t in got.tasks].count(99) == 1 and len(got.tasks) == 11
    ours = [e for e in journal(s) if e["by"] == "test"]
    assert [(e["task"], e["g"]) for e in ours] == [("2.analysis", s.read().generation)] * 1 + \
        [("3.analysis", s.read().generation)]   # the first run's transitions were never written


def test_a_change_to_a_task_the_body_did_not_declare_drops_the_copy(tmp_path):
    s = make(tmp_path)
    idx = s.read().index()
    body, calls = stage(s, [2, 3], lambda: other(s).queue_requests({"5.analysis"}, "priority", 3))
    ahead.update(s, "test", body, [idx["2.analysis"]])       # 3 not declared
    assert calls == [False, True]
    got = s.read()
    assert got is not None and got.tasks[3].state == "unstaged" and got.index()["5.analysis"].priority == 3
    assert model_of(got) == model_of(other(s).read())


def model_of(status):
    return model.encode(status)


def test_an_error_or_an_abort_in_the_body_leaves_the_copy_as_it_was(tmp_path):
    s = make(tmp_path)
    before = model_of(s.read())
    idx = s.read().index()

    def failing(st):
        st.index()["2.analysis"].state = "unstaged"
        st.tasks.append(Task(run=99))
        raise RuntimeError("no")

    def aborting(st):
        st.index()["2.analysis"].state = "unstaged"
        s.abort()
    with pytest.raises(RuntimeError):
        ahead.update(s, "test", failing, [idx["2.analysis"]])
    assert model_of(s.read()) == before and not any(id(t) in model.CHANGED for t in s.read().tasks)
    ahead.update(s, "test", aborting, [idx["2.analysis"]])
    assert model_of(s.read()) == before == model_of(other(s).read())
    with s.transaction("test") as st:           # the next write carries nothing of theirs
        st.tasks[4].priority = 2
    assert other(s).read().tasks[2].state == "new"


def test_a_shrink_goes_to_the_ordinary_transaction_which_refuses_it(tmp_path):
    s = make(tmp_path, 60)

    def purge(st):
        st.tasks = st.tasks[:2]
    with pytest.raises(ShrinkRefused):
        ahead.update(s, "test", purge, [])
    assert len(other(s).read().tasks) == len(s.read().tasks) == 60


def test_a_small_file_is_written_under_the_lock(tmp_path, monkeypatch):
    s = make(tmp_path)
    monkeypatch.setattr(log.store_mod, "LOG_FROM", 1 << 40)
    body, calls = stage(s, [2])
    ahead.update(s, "test", body, [])
    assert calls == [True] and other(s).read().tasks[2].state == "unstaged"


def test_a_task_whose_intent_only_the_body_replaces_gets_its_intent_back_on_an_undo(tmp_path):
    """``intents``: of these tasks only the intent is kept to undo the body (no copy of each)."""
    from batchman.core.model import Intent
    s = make(tmp_path)
    with s.transaction("test") as st:
        st.tasks[4].intent = Intent(actions=["release"], owner="me", at=1.0)
    idx = s.read().index()
    t4 = idx["4.analysis"]
    mine = t4.intent
    body, calls = stage(s, [2], lambda: other(s).queue_requests({"6.analysis"}, "priority", 3))

    def clearing(st):
        st.index()["4.analysis"].intent = None
        return body(st)
    ahead.update(s, "test", clearing, [idx["2.analysis"]], intents=[t4])
    assert calls == [False, True]               # undone, run again under the lock
    for got in (s.read(), other(s).read()):
        assert got.index()["4.analysis"].intent is None and got.index()["6.analysis"].priority == 3
    t4 = s.read().index()["4.analysis"]
    undo = ahead.Undo(s.read(), [], [t4])
    t4.intent = mine
    undo.run(s)
    assert t4.intent is None
