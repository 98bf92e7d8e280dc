"""Issue 18: a big status file gets its changes appended to a change log (what a write changed,
not the whole file), every reader replays the log from where it was, and a compaction folds the
log into a new file without holding the lock for long. Small files here: LOG_FROM is set to 0 so
the log is used at any size (the threshold is the only difference)."""

import json
import os
import subprocess
import sys

import msgspec
import pytest

from batchman.core import model
from batchman.core.model import Segment, Task
from batchman.store import compact, follow, store as store_mod
from batchman.store.store import CorruptStatus, ShrinkRefused, StatusLost, Store


@pytest.fixture(autouse=True)
def log_at_any_size(monkeypatch):
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    monkeypatch.setattr(store_mod, "COMPACT_MIN", 0)
    monkeypatch.setattr(store_mod, "CHECK", True)


def make(tmp_path, n=30):
    s = Store(str(tmp_path / "status.json"), lock_timeout=2)
    with s.transaction("test") as st:
        for r in range(n):
            st.tasks.append(Task(run=r, segments=[Segment(f"raw/{r}.dat", False)]))
    return s


def fresh(s):
    return Store(s.path, lock_timeout=2).read()


def same(a, b):
    assert model.encode(a) == model.encode(b)


def count_loads(monkeypatch, who):
    """Count the whole reads of the status file (the check's own reads are turned off)."""
    monkeypatch.setattr(store_mod, "CHECK", False)
    n = {"loads": 0}
    real = follow.load

    def load(path, *a):
        n["loads"] += 1
        return real(path, *a)
    monkeypatch.setattr(follow, "load", load)
    return n


def test_a_write_appends_what_changed_and_leaves_the_file_alone(tmp_path):
    s = make(tmp_path)
    file_before = open(s.path, "rb").read()
    with s.transaction("t") as st:
        st.tasks[3].state = "unstaged"
        st.tasks.append(Task(run=99))
    assert open(s.path, "rb").read() == file_before
    lines = open(s.log_path, "rb").read().splitlines()
    assert json.loads(lines[0]) == {"log": 1, "s": s.read().store_id, "base": 1}
    rec = json.loads(lines[1])
    assert rec["g"] == 2 and sorted(t["run"] for t in rec["put"]) == [3, 99]     # only what changed
    got = fresh(s)
    same(got, s.read())
    assert got.generation == 2 and got.tasks[3].state == "unstaged" and got.tasks[-1].run == 99


def test_a_reader_replays_only_the_new_lines_and_never_decodes_the_file_again(tmp_path, monkeypatch):
    s = make(tmp_path)
    reader = Store(s.path)
    reader.read()
    loads = count_loads(monkeypatch, reader)
    for i in range(5):
        with s.transaction("t") as st:
            st.tasks[i].priority = 10 + i
        got = reader.read()
        assert got.tasks[i].priority == 10 + i and got.index()[f"{i}.analysis"] is got.tasks[i]
    assert loads["loads"] == 0
    same(reader.read(), s.read())


def test_the_file_is_decoded_before_the_lock_is_taken(tmp_path, monkeypatch):
    s = make(tmp_path)
    with s.transaction("t") as st:
        st.tasks[0].priority = 1
    holders = []
    real = follow.load
    other = Store(s.path, lock_timeout=2)       # a new process: it has read nothing yet

    def load(path, *a):
        if other._snap is None:
            holders.append(Store(path).is_locked())
        return real(path, *a)
    monkeypatch.setattr(follow, "load", load)
    with other.transaction("batchman kill") as st:
        st.tasks[1].request = "kill"
    assert holders == [False]                    # decoded once, and not under the lock
    built_locked = []
    monkeypatch.setattr(store_mod, "CHECK", False)      # the check's own reads build indexes
    real_index = model.Status.index

    def index(self):
        if "_index" not in self.__dict__:
            built_locked.append(Store(s.path).is_locked())
        return real_index(self)
    monkeypatch.setattr(model.Status, "index", index)
    assert s.compact()                          # no lines to replay: reading builds no index
    third = Store(s.path, lock_timeout=2)
    with third.transaction("batchman hold") as st:
        st.tasks[2].held = True
    assert built_locked and not any(built_locked)   # the index too is built before the lock
    assert fresh(s).tasks[1].request == "kill"


def test_a_line_torn_by_a_crash_is_ignored_then_cut_off_by_the_next_writer(tmp_path):
    s = make(tmp_path)
    with s.transaction("t") as st:
        st.tasks[0].priority = 5
    with open(s.log_path, "ab") as f:
        f.write(b'{"g":3,"s":"x","head":{"sche')          # a write that never finished
    assert fresh(s).generation == 2
    other = Store(s.path)
    with other.transaction("t") as st:
        st.tasks[1].priority = 6
    got = fresh(s)
    assert got.generation == 3 and got.tasks[0].priority == 5 and got.tasks[1].priority == 6
    assert open(s.log_path, "rb").read().endswith(b"\n")


def test_a_damaged_whole_line_is_reported_and_nothing_is_written(tmp_path):
    s = make(tmp_path)
    with s.transaction("t") as st:
        st.tasks[0].priority = 5
    with open(s.log_path, "ab") as f:
        f.write(b"this is not a record\n")
    size = os.path.getsize(s.log_path)
    with pytest.raises(CorruptStatus, match="damaged line.*batchman recover"):
        with Store(s.path).transaction("t") as st:
            st.tasks[1].priority = 6
    assert os.path.getsize(s.log_path) == size


def test_a_list_changed_in_place_without_touch_is_caught_by_the_check(tmp_path):
    s = make(tmp_path)
    with pytest.raises(AssertionError, match="model.touch"):
        with s.transaction("t") as st:
            st.tasks[2].segments[0].staged = True          # nothing sets a field of the task
    with s.transaction("t") as st:
        st.tasks[2].segments[0].staged = True
        model.touch(st.tasks[2])
    assert fresh(s).tasks[2].segments[0].staged


def test_a_purge_removes_the_tasks_for_every_reader_and_the_shrink_guard_still_holds(tmp_path):
    s = make(tmp_path)
    reader = Store(s.path)
    reader.read()
    with s.transaction("t") as st:
        st.tasks = [t for t in st.tasks if t.run >= 5]
        s.purged(5)
    assert [t.run for t in reader.read().tasks] == list(range(5, 30))
    same(fresh(s), s.read())
    with pytest.raises(ShrinkRefused):
        with s.transaction("t") as st:
            st.tasks = st.tasks[:3]
    assert len(fresh(s).tasks) == 25


def test_tasks_whose_key_is_no_number_are_written_followed_and_compacted(tmp_path):
    """core/taskindex: a run beyond 32 bits, a job name with a dot, a segment below 0 (a file
    edited by hand: batchman makes none) turn the index of tasks into a dict of key strings, in
    the writer and in a reader following its log; both go on as with any other task."""
    s = make(tmp_path, n=5)
    reader = Store(s.path)
    reader.read()
    with s.transaction("t") as st:
        st.index()                                          # (numbers, then the odd tasks come)
        st.tasks += [Task(run=2**40), Task(run=3, job="a.b"), Task(run=4, job="reco", seg=-1)]
    with s.transaction("t") as st:
        idx = st.index()
        idx["1099511627776.analysis"].state = "failed"
        idx["3.a.b"].priority = 5
        idx["4.reco.-1"].state = "unstaged"
        idx["2.analysis"].state = "failed"
    got = reader.read()
    by = {t.key: t for t in got.tasks}
    assert by["1099511627776.analysis"].state == "failed" and by["3.a.b"].priority == 5
    assert by["4.reco.-1"].state == "unstaged" and by["2.analysis"].state == "failed"
    assert all(got.index()[k] is t for k, t in by.items()) and len(got.index()) == 8
    assert s.compact()
    same(fresh(s), s.read())
    same(fresh(s), reader.read())


def test_compaction_folds_the_log_into_the_file_that_scripts_read(tmp_path, monkeypatch):
    s = make(tmp_path)
    reader = Store(s.path)
    reader.read()
    for i in range(4):
        with s.transaction("t") as st:
            st.tasks[i].state = "failed"
    assert reader.read().generation == 5
    assert s.compact_due()
    assert s.compact()
    plain = json.load(open(s.path))                         # what a script sees: everything
    assert plain["generation"] == 5 and [t["state"] for t in plain["tasks"][:4]] == ["failed"] * 4
    assert open(s.log_path, "rb").read().count(b"\n") == 1  # only the first line
    assert os.path.exists(s.backup)
    loads = count_loads(monkeypatch, reader)
    with s.transaction("t") as st:
        st.tasks[9].state = "failed"
    assert reader.read().tasks[9].state == "failed"       # followed across the compaction...
    assert loads["loads"] == 0                             # ...without decoding the new file
    same(fresh(s), s.read())


def test_lines_written_during_a_compaction_are_carried_to_the_new_log(tmp_path, monkeypatch):
    s = make(tmp_path)
    with s.transaction("t") as st:
        st.tasks[0].priority = 1
    real = compact.snapshot.write_temp

    def write_temp_while_another_writes(path, status):
        tmp = real(path, status)
        with Store(s.path).transaction("batchman kill") as st:     # after the copy was taken
            st.tasks[7].request = "kill"
        return tmp
    monkeypatch.setattr(compact.snapshot, "write_temp", write_temp_while_another_writes)
    assert s.compact()
    got = fresh(s)
    assert got.generation == 3 and got.tasks[0].priority == 1 and got.tasks[7].request == "kill"
    assert json.load(open(s.path))["generation"] == 2
    same(s.read(), got)


def test_a_file_replaced_by_another_store_and_a_log_deleted_are_refused(tmp_path):
    s = make(tmp_path)
    with s.transaction("t") as st:
        st.tasks[0].priority = 1
    os.unlink(s.log_path)
    with pytest.raises(StatusLost, match="change log"):
        s.read()
    s2 = make(tmp_path / "b")
    t = make(tmp_path / "c")
    os.replace(s2.path, t.path)
    with pytest.raises(StatusLost, match="another status file"):
        t.read()


def test_a_file_of_the_old_layout_is_read_and_rewritten_in_the_new_one(tmp_path):
    s = make(tmp_path)
    old = msgspec.json.decode(open(s.path, "rb").read())
    with open(s.path, "wb") as f:
        f.write(msgspec.json.encode(old))                  # one line, as before issue 18
    other = Store(s.path)
    with other.transaction("t") as st:
        st.tasks[0].priority = 3
    assert not os.path.exists(s.log_path)                  # rewritten whole, not logged
    assert open(s.path, "rb").readline().endswith(b'"tasks":[\n')
    with other.transaction("t") as st:
        st.tasks[1].priority = 4
    assert os.path.exists(s.log_path)
    same(fresh(s), other.read())


def test_queued_requests_are_merged_once_by_a_logged_write(tmp_path):
    s = make(tmp_path)
    assert s.queue_requests({"4.analysis"}, "priority", 7, command="batchman priority") == 1
    assert fresh(s).tasks[4].priority == 7
    with s.transaction("t") as st:
        st.tasks[5].priority = 8
    assert os.path.getsize(s.requests_path) == 0
    got = Store(s.path).read()
    assert (got.tasks[4].priority, got.tasks[5].priority) == (7, 8)


PROBE = r"""
import os, sys
from batchman.store.store import Store
s = Store(sys.argv[1])
with s.transaction("t") as st:
    st.tasks[11].state = "failed"
s.compact()
"""


@pytest.mark.parametrize("point", ["compact-written", "compact-file-renamed"])
def test_a_sigkill_during_compaction_loses_nothing(tmp_path, point):
    s = make(tmp_path)
    with s.transaction("t") as st:
        st.tasks[10].state = "failed"
    env = {**os.environ, "BATCHMAN_STORE_LOG_FROM": "0", "BATCHMAN_STORE_COMPACT_MIN": "0",
           "BATCHMAN_STORE_CRASH": point}
    r = subprocess.run([sys.executable, "-c", PROBE, s.path], env=env, capture_output=True, text=True)
    assert r.returncode == -9, r.stderr
    got = fresh(s)
    assert got.generation == 3 and got.tasks[10].state == "failed" and got.tasks[11].state == "failed"
    same(s.read(), got)
    with s.transaction("t") as st:                          # and life goes on
        st.tasks[12].state = "failed"
    assert s.compact()
    got = fresh(s)
    assert [t.state for t in got.tasks[10:13]] == ["failed"] * 3 and got.generation == 4
    assert json.load(open(s.path))["generation"] == 4


def test_the_file_is_read_a_line_at_a_time_and_a_reformatted_or_cut_file_is_handled(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod.snapshot, "CHUNK", 7)            # several lines of tasks
    s = make(tmp_path)
    lines = open(s.path, "rb").read().splitlines(keepends=True)
    assert len(lines) == 1 + 5 + 1                                 # first line, 30 tasks by 7, "]}"
    assert store_mod.snapshot.read_stream(s.path).tasks[29].run == 29
    want = model.encode(fresh(s))
    with open(s.path, "w") as f:                                   # a person ran it through jq .
        json.dump(json.loads(want), f, indent=2)
    assert store_mod.snapshot.read_stream(s.path) is None
    assert model.encode(Store(s.path).read()) == want
    with open(s.path, "wb") as f:                                  # cut short
        f.write(b"".join(lines[:3]))
    with pytest.raises(CorruptStatus, match="unreadable"):
        Store(s.path).read()
