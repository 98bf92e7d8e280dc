"""Issue 15 parts 2 and 3: a status file that vanishes, is replaced, or is emptied is never taken as "no tasks"."""

import glob
import json
import os
import socket

import pytest

from batchman.core import model
from batchman.core.model import Task
from batchman.store import CorruptStatus, StatusLost, Store, html_generation


def make(tmp_path, n=3, writes=1):
    s = Store(str(tmp_path / "status.json"), lock_timeout=1)
    with s.transaction("test") as st:
        for r in range(n):
            st.tasks.append(Task(run=r))
            s.record(f"{r}.analysis", "", "new", "added", "test")
    for _ in range(writes - 1):
        with s.transaction("test") as st:
            st.tasks[0].priority += 1
    return s


# ---- 3. `{}` and files lacking the schema, the store id or the generation -------------------

@pytest.mark.parametrize("text", ["{}", '{"generation": 4, "store_id": "abc123"}',
                                  '{"schema": 1, "store_id": "abc123", "tasks": []}',
                                  '{"schema": 1, "generation": 4, "tasks": []}'])
def test_a_file_lacking_schema_store_id_or_generation_is_corrupt(tmp_path, text):
    s = make(tmp_path, n=30, writes=2)
    (tmp_path / "status.json").write_text(text)
    with pytest.raises(CorruptStatus) as e:
        Store(s.path).read()
    assert "status.json" in str(e.value) and "lacks" in str(e.value)
    with pytest.raises(CorruptStatus):
        with Store(s.path).transaction("t") as st:
            st.tasks.append(Task(run=99))
    assert (tmp_path / "status.json").read_text() == text
    assert len(model.decode(open(s.backup, "rb").read()).tasks) == 30      # the good backup is intact


def test_written_files_carry_schema_store_id_and_generation(tmp_path):
    s = make(tmp_path)
    raw = json.loads(open(s.path, "rb").read())
    assert raw["schema"] == model.SCHEMA and raw["store_id"] and raw["generation"] == 1


def test_a_write_never_replaces_the_backup_with_a_file_far_smaller(tmp_path):
    s = make(tmp_path, n=50, writes=2)
    with Store(s.path).transaction("t", allow_shrink=True) as st:     # shrunk without a purge
        del st.tasks[3:]
    assert len(model.decode(open(s.backup, "rb").read()).tasks) == 50
    with Store(s.path).transaction("t") as st:                        # the next write keeps the good backup
        st.tasks[0].priority = 7
    assert len(model.decode(open(s.backup, "rb").read()).tasks) == 50
    assert len(Store(s.path).read().tasks) == 3


def test_a_purge_does_move_the_backup_on(tmp_path):
    s = make(tmp_path, n=50, writes=2)
    with s.transaction("purge") as st:
        del st.tasks[3:]
        s.purged(47)
    with s.transaction("t") as st:
        st.tasks[0].priority = 7
    assert len(model.decode(open(s.backup, "rb").read()).tasks) == 3


def test_the_page_follows_a_new_store_id(tmp_path):
    page = str(tmp_path / "p.html")
    a = Store(str(tmp_path / "a" / "status.json"), html=lambda st: "A", html_path=page)
    with a.transaction("t") as st:
        st.tasks.append(Task(run=1))
    for _ in range(4):
        with a.transaction("t") as st:
            st.tasks[0].priority += 1
    assert html_generation(page)[1] == 5
    b = Store(str(tmp_path / "b" / "status.json"), html=lambda st: "B", html_path=page)
    with b.transaction("t") as st:
        st.tasks.append(Task(run=1))
    assert open(page).read().splitlines()[-1] == "B"
    assert html_generation(page) == (b.read().store_id, 1)


# ---- 2. the file deleted or replaced under a process that read it ------------------------------

def test_a_vanished_file_is_not_recreated_and_the_last_good_copy_is_kept(tmp_path):
    s = make(tmp_path, n=25, writes=2)
    sid = s.read().store_id
    os.unlink(s.path)
    os.unlink(s.backup)
    with pytest.raises(StatusLost) as e:
        with s.transaction("batchman-daemon") as st:
            st.tasks.clear()
    msg = str(e.value)
    assert "batchman recover" in msg and "missing" in msg
    assert not os.path.exists(s.path)
    last = glob.glob(str(tmp_path / f"status.json.daemon-{socket.gethostname()}-{os.getpid()}.last"))
    assert len(last) == 1 and last[0] in msg
    kept = model.decode(open(last[0], "rb").read())
    assert kept.store_id == sid and len(kept.tasks) == 25
    note = open(last[0][:-len(".last")] + ".txt").read()
    assert "batchman recover" in note and "missing" in note


def test_a_file_with_another_store_id_is_refused(tmp_path):
    s = make(tmp_path, n=3)
    other = tmp_path / "other"
    other.mkdir()
    o = make(other, n=1)
    os.replace(o.path, s.path)
    with pytest.raises(StatusLost) as e:
        with s.transaction("batchman-daemon") as st:
            st.tasks.append(Task(run=9))
    assert "store id" in str(e.value)
    assert len(Store(s.path).read().tasks) == 1


def test_a_file_with_far_fewer_tasks_is_refused_unless_purged(tmp_path):
    s = make(tmp_path, n=50)
    s.read()
    with Store(s.path).transaction("someone", allow_shrink=True) as st:
        del st.tasks[5:]
    with pytest.raises(StatusLost) as e:
        s.read()
    assert "holds 5 tasks where this process saw 50" in str(e.value)
    # a purge by another writer is not a loss
    (tmp_path / "x").mkdir()
    s2 = make(tmp_path / "x", n=50)
    s2.read()
    other = Store(s2.path)
    with other.transaction("daemon 2") as st:
        del st.tasks[5:]
        other.purged(45)
    assert len(s2.read().tasks) == 5


def test_no_file_where_one_has_been_is_not_created(tmp_path):
    s = make(tmp_path, n=3)
    os.unlink(s.path)                                   # the journal remains: a file has been here
    fresh = Store(s.path)
    with pytest.raises(StatusLost) as e:
        with fresh.transaction("batchman add") as st:
            st.tasks.append(Task(run=5))
    assert "batchman recover" in str(e.value)
    assert not os.path.exists(s.path)


def test_a_new_directory_still_gets_its_first_file(tmp_path):
    s = Store(str(tmp_path / "status.json"))
    with s.transaction("batchman add") as st:
        st.tasks.append(Task(run=5))
    assert len(Store(s.path).read().tasks) == 1


def test_a_process_that_keeps_reading_a_lost_file_writes_its_copy_once(tmp_path):
    s = make(tmp_path, n=3)
    os.unlink(s.path)
    with pytest.raises(StatusLost):
        s.read()
    last = tmp_path / f"status.json.daemon-{socket.gethostname()}-{os.getpid()}.last"
    first = last.stat().st_mtime_ns
    with pytest.raises(StatusLost) as e:
        s.read()
    assert last.stat().st_mtime_ns == first and str(last) in str(e.value)


def test_a_rebuilt_file_gets_a_generation_no_reader_or_page_has_seen(tmp_path):
    s = make(tmp_path, n=25, writes=2)       # the journal stops at generation 1, the file is at 2
    page = str(tmp_path / "p.html")
    other = Store(s.path, html=lambda st: f"gen {st.generation}", html_path=page)
    with other.transaction("t") as st:
        st.tasks[1].priority = 5              # generation 3, on the page too
    s.read()
    rebuilt = model.decode(model.encode(other.read()))
    with other.locked("batchman recover"):
        other.replace_with(rebuilt)
    other.publish_html(rebuilt)
    assert len(s.read().tasks) == 25 and not os.path.exists(s.backup)   # the reader follows it
    assert s.read().generation == 4
    assert open(page).read().splitlines()[-1] == "gen 4"


def test_a_file_emptied_under_a_process_keeps_that_process_s_copy(tmp_path):
    s = make(tmp_path, n=30, writes=2)
    s.read()
    (tmp_path / "status.json").write_text("{}")
    with pytest.raises(StatusLost) as e:
        with s.transaction("batchman-daemon") as st:
            st.tasks.clear()
    assert "lacks" in str(e.value) and "status.json.bak" in str(e.value) and "batchman recover" in str(e.value)
    assert (tmp_path / "status.json").read_text() == "{}"
    last = tmp_path / f"status.json.daemon-{socket.gethostname()}-{os.getpid()}.last"
    assert len(model.decode(last.read_bytes()).tasks) == 30


def test_an_older_copy_put_in_place_under_a_process_is_refused(tmp_path):
    s = make(tmp_path, n=3, writes=3)
    s.read()
    os.replace(s.backup, s.path)                 # generation 3 -> 2 under it
    with pytest.raises(StatusLost) as e:
        s.read()
    assert "went back from generation 3 to 2" in str(e.value)
