"""The status file: atomic writes, backup, journal, corrupt files, the lock and who holds it."""

import json
import os
import subprocess
import sys

import pytest

from batchman.core import model
from batchman.core.model import Task
from batchman.store.store import CorruptStatus, LockTimeout, ShrinkRefused, Store, check_locking


def make(tmp_path, n=3):
    s = Store(str(tmp_path / "status.json"), lock_timeout=1)
    with s.transaction("test") as st:
        for r in range(n):
            st.tasks.append(Task(run=r))
            s.record(f"{r}.analysis", "", "new", "added", "test")
    return s


def test_write_bumps_generation_keeps_backup_and_journals(tmp_path):
    s = make(tmp_path)
    assert s.read().generation == 1 and not os.path.exists(s.backup)
    with s.transaction("t") as st:
        st.tasks[0].state = "unstaged"
        s.record("0.analysis", "new", "unstaged", "found", "t")
    assert s.generation() == 2
    bak = model.decode(open(s.backup, "rb").read())
    assert bak.generation == 1 and bak.tasks[0].state == "new"
    hist = s.history({"0.analysis"})
    assert [h["to"] for h in hist] == ["new", "unstaged"] and hist[1]["why"] == "found"


def test_exception_in_transaction_changes_nothing(tmp_path):
    s = make(tmp_path)
    before = open(s.path, "rb").read()
    with pytest.raises(RuntimeError):
        with s.transaction("t") as st:
            st.tasks[0].state = "error"
            raise RuntimeError("boom")
    assert open(s.path, "rb").read() == before
    assert s.read().tasks[0].state == "new"   # the cache was dropped too


def test_abort_writes_nothing(tmp_path):
    s = make(tmp_path)
    with s.transaction("t") as st:
        st.tasks.clear()
        s.abort()
    assert len(Store(s.path).read().tasks) == 3


def test_corrupt_file_is_kept_and_the_error_points_to_the_backup(tmp_path):
    s = make(tmp_path)
    with s.transaction("t"):
        pass
    with open(s.path, "w") as f:
        f.write('{"schema": 1, "tasks": [')   # half-written by something else
    fresh = Store(s.path)
    with pytest.raises(CorruptStatus) as e:
        fresh.read()
    assert s.backup in str(e.value) and "cp " in str(e.value)
    with pytest.raises(CorruptStatus):
        with fresh.transaction("t") as st:
            st.tasks.append(Task(run=9))
    assert open(s.path).read() == '{"schema": 1, "tasks": ['


def test_missing_file_with_a_backup_is_an_error(tmp_path):
    s = make(tmp_path)
    with s.transaction("t"):
        pass
    os.unlink(s.path)
    with pytest.raises(CorruptStatus) as e:
        Store(s.path).read()
    assert "missing" in str(e.value)


def test_wrong_schema_is_refused(tmp_path):
    p = tmp_path / "status.json"
    p.write_text(json.dumps({"schema": 99, "tasks": []}))
    with pytest.raises(CorruptStatus) as e:
        Store(str(p)).read()
    assert "schema version 99" in str(e.value)


HOLDER = """
import sys, time
from batchman.store.store import Store
s = Store(sys.argv[1])
with s.locked("holder-test"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_lock_timeout_says_who_holds_it_and_changes_nothing(tmp_path):
    s = make(tmp_path)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, s.path, "5"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    try:
        assert s.is_locked()
        with pytest.raises(LockTimeout) as e:
            with s.transaction("t", timeout=0.3) as st:
                st.tasks.clear()
        msg = str(e.value)
        assert "holder-test" in msg and f"pid {p.pid}" in msg
    finally:
        p.kill()
        p.wait()
    # the kernel dropped the lock with its dead holder
    assert not s.is_locked()
    assert len(s.read().tasks) == 3


def test_shrink_guard_refuses_losing_tasks_without_purge(tmp_path):
    s = make(tmp_path, n=50)
    with pytest.raises(ShrinkRefused) as e:
        with s.transaction("t") as st:
            del st.tasks[10:]
    assert len(Store(s.path).read().tasks) == 50
    copies = list(tmp_path.glob("status.json.safety-*"))
    assert len(copies) == 1 and str(copies[0]) in str(e.value)
    assert len(model.decode(copies[0].read_bytes()).tasks) == 50
    with s.transaction("purge", allow_shrink=True) as st:
        del st.tasks[10:]
    assert len(Store(s.path).read().tasks) == 10


def test_journal_skips_entries_of_a_write_that_never_landed(tmp_path):
    s = make(tmp_path)
    with open(s.journal_path, "a") as f:
        f.write(json.dumps({"g": 99, "t": 1, "task": "0.analysis", "from": "new", "to": "error", "why": "x", "by": "y"}) + "\n")
        f.write('{"g": 100, "torn')
    assert [h["to"] for h in s.history({"0.analysis"}, upto=s.generation())] == ["new"]


def test_locking_works_here(tmp_path):
    assert check_locking(str(tmp_path / "status.json")) is None


def test_html_written_in_the_same_transaction(tmp_path):
    s = Store(str(tmp_path / "status.json"), html=lambda st: f"gen {st.generation}", html_path=str(tmp_path / "p.html"))
    with s.transaction("t") as st:
        st.tasks.append(Task(run=1))
    assert (tmp_path / "p.html").read_text().splitlines()[-1] == "gen 1"


def test_reader_reuses_its_copy_until_the_file_changes(tmp_path):
    s = make(tmp_path)
    a = s.read()
    assert s.read() is a
    other = Store(s.path)
    with other.transaction("t") as st:
        st.tasks.append(Task(run=77))
    b = s.read()
    assert b is not a and b.generation == a.generation + 1 and b.tasks[-1].run == 77


def test_deferred_page_is_written_on_flush(tmp_path):
    s = Store(str(tmp_path / "status.json"), html=lambda st: f"gen {st.generation}", html_path=str(tmp_path / "p.html"))
    s.defer_html = True
    with s.transaction("t") as st:
        st.tasks.append(Task(run=1))
    assert not (tmp_path / "p.html").exists()
    s.flush_html()
    assert (tmp_path / "p.html").read_text().splitlines()[-1] == "gen 1"


def test_requests_are_queued_with_a_short_append_and_merged_by_the_next_write(tmp_path):
    s = make(tmp_path, n=3)
    size = os.path.getsize(s.path)
    n = s.queue_requests({"0.analysis", "2.analysis"}, "request", "kill", allowed_states={"new"}, command="t")
    assert n == 2 and os.path.getsize(s.path) == size           # the status file was not rewritten
    other = Store(s.path)                                       # every reader sees it at once
    assert [t.request for t in other.read().tasks] == ["kill", "", "kill"]
    with other.transaction("daemon") as st:                      # the next writer merges it
        st.tasks[1].priority = 3
    assert os.path.getsize(s.requests_path) == 0
    assert [t.request for t in model.decode(open(s.path, "rb").read()).tasks] == ["kill", "", "kill"]


def test_a_merged_request_is_not_applied_again_after_a_crash_before_truncation(tmp_path):
    s = make(tmp_path, n=2)
    s.queue_requests({"0.analysis"}, "request", "restart")
    saved = open(s.requests_path).read()
    with s.transaction("daemon") as st:
        st.tasks[0].request = ""        # the daemon carried the restart out in the same write
    with open(s.requests_path, "w") as f:
        f.write(saved)                  # as if it had died before truncating
    assert [t.request for t in Store(s.path).read().tasks] == ["", ""]


def test_kill_request_only_for_active_tasks(tmp_path):
    s = make(tmp_path, n=2)
    with s.transaction("t") as st:
        st.tasks[1].state = "completed"
    assert s.queue_requests({"0.analysis", "1.analysis"}, "request", "kill", allowed_states={"new"}) == 1


def test_a_file_of_schema_1_is_read_and_written_back_as_2_which_an_older_batchman_refuses(tmp_path):
    """Schema 2 (issue 18): the log and segment tasks. A file of 1 (written before) reads as it
    did; the next write says 2, so a batchman that reads only 1 refuses it instead of missing
    the change log."""
    p = tmp_path / "status.json"
    p.write_text(json.dumps({"schema": 1, "generation": 3, "store_id": "abc123", "tasks": [{"run": 7}]}))
    s = Store(str(p))
    assert [t.key for t in s.read().tasks] == ["7.analysis"]
    with s.transaction("test") as st:
        st.tasks[0].priority = 5
    raw = json.loads(p.read_text())
    assert raw["schema"] == 2 and raw["tasks"] == [{"run": 7, "priority": 5}]
    p.write_text(json.dumps({**raw, "schema": 3}))
    with pytest.raises(CorruptStatus) as e:
        Store(str(p)).read()
    assert "schema version 3 is not supported (this batchman reads 1 and 2" in str(e.value)
