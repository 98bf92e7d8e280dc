"""A write that finds the disk or the quota full (store/guard.writing): a StoreError saying where
(NoSpace), and the process that tried believes nothing it did not write. Found filling a small
disk: the TUI ended on a key ('Error: No space left on device'); a store that had failed to
write kept the change in memory, showing it as done (big file) or writing it later with
another change (small file); a request line a full disk cut short swallowed the next one."""

import errno
import os

import pytest

from batchman import actions as A
from batchman.store import ahead, log, requests, snapshot
from batchman.store import lock as lock_mod
from batchman.store import store as store_mod
from batchman.store.errors import NoSpace
from batchman.store.store import Store


@pytest.fixture(params=["small", "big"])
def store(request, tmp_path, monkeypatch):
    """A store of 4 tasks: rewritten whole (small), or with a change log (big)."""
    if request.param == "big":
        monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    s = Store(str(tmp_path / "status.json"), lock_timeout=1)
    A.add_runs(s, [1, 2, 3])
    A.add_runs(s, [4])
    return s


def full(*args, **kw):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def the_file(s: Store):
    st = Store(s.path).read()
    return st.generation, [(t.key, t.state, t.reason, t.held) for t in st.tasks]


def test_a_transaction_that_finds_the_disk_full_leaves_nothing_believed(store, monkeypatch):
    before = the_file(store)
    with monkeypatch.context() as m:
        m.setattr(log, "append", full)
        m.setattr(snapshot, "write", full)
        with pytest.raises(NoSpace) as got:
            with store.transaction("t") as st:
                st.tasks[0].state, st.tasks[0].reason = "failed", "never written"
    assert str(got.value) == f"No space left on device: cannot write in {os.path.dirname(store.path)}; free space there"
    assert the_file(store) == before
    assert (store.read().generation, [(t.key, t.state, t.reason, t.held) for t in store.read().tasks]) == before
    A.add_runs(store, [5])                     # a later write carries only its own change
    gen, tasks = the_file(store)
    assert gen == before[0] + 1 and tasks[:4] == before[1] and tasks[4][0] == "5.analysis"


def test_the_daemons_write_ahead_of_the_lock_too(store, monkeypatch):
    before = the_file(store)
    tasks = store.read().tasks

    def body(st):
        st.tasks[1].reason = "never written"
    with monkeypatch.context() as m:
        m.setattr(log, "append", full)
        m.setattr(snapshot, "write", full)
        with pytest.raises(NoSpace):
            ahead.update(store, "daemon", body, [tasks[1]])
    assert [t.reason for t in store.read().tasks] == [t[2] for t in before[1]]
    assert the_file(store) == before


def test_a_request_that_finds_the_disk_full_is_not_queued(store, monkeypatch):
    store.read()
    before = the_file(store)
    with monkeypatch.context() as m:
        m.setattr(requests, "append", full)
        with pytest.raises(NoSpace):
            A.hold(store, {"2.analysis"})
    assert not any(t.held for t in store.read().tasks) and the_file(store) == before
    assert A.hold(store, {"2.analysis"}) == 1 and [t.held for t in Store(store.path).read().tasks] == [0, 1, 0, 0]


def test_the_lock_is_not_taken_when_not_even_its_holders_name_can_be_written(store, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(lock_mod, "atomic_write", full)
        with pytest.raises(NoSpace):
            A.set_paused(store, True)
    assert not store.is_locked() and not Store(store.path).read().paused
    with Store(store.path).locked("next", timeout=0):     # released: another takes it at once
        pass


def test_a_request_line_cut_short_does_not_swallow_the_next(store):
    A.hold(store, {"1.analysis"})
    with open(store.requests_path, "ab") as f:
        f.write(b'{"g": 3, "field": "held", "val')          # what a full disk (or a crash) left
    assert A.hold(Store(store.path), {"3.analysis"}) == 1
    assert [t.held for t in Store(store.path).read().tasks] == [1, 0, 1, 0]
