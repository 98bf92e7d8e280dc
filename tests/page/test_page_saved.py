"""The page's tally saved beside the page and taken by the next process (issue 18).

A saved tally brought up to date says what a tally counted afresh says; one made from another
status (another store, a later generation, more tasks), counted afresh too long ago, or
damaged is never used: the page is then counted afresh.
"""

from __future__ import annotations

import random

import msgspec
import pytest

from batchman.core import states as S
from batchman.core.model import Attempt, Status, Task
from batchman.page import live as live_mod, saved as SV, where as W
from batchman.page.live import LivePage
from batchman.page.tally import Tally

from test_page_tally import NOW, change, production, seen


def reread(st: Status) -> Status:
    """The status as a new process reads it: new objects."""
    return msgspec.json.decode(msgspec.json.encode(st), type=Status)


@pytest.mark.parametrize("seed", range(6))
def test_a_saved_tally_brought_up_to_date_equals_one_counted_afresh(seed):
    rnd = random.Random(seed)
    st = Status(store_id="s1", generation=5, tasks=production(rnd, 150))
    counted = Tally(st.tasks)
    seen(counted, st.tasks)                             # its ranges texts made: saved with it
    data = SV.dump(counted, st.store_id, st.generation, NOW)
    st = reread(st)
    for t in rnd.sample(st.tasks, 12):                 # other processes' writes since
        change(rnd, st.tasks, t, NOW + 60)
    for t in rnd.sample(st.tasks, 4):                  # and holds and releases (the state stays)
        t.held = not t.held
    have = {t.key for t in st.tasks}
    st.tasks += [t for t in production(rnd, 6) if t.key not in have]
    if seed % 2:                                        # a purge and an add: tasks moved
        st.tasks = [t for t in st.tasks if rnd.random() < .95] + [Task(run=99_999, state=S.NEW, since=NOW)]
    taken = SV.load([data])
    taken.sync(st.tasks)
    assert seen(taken, st.tasks) == seen(Tally(st.tasks), st.tasks)
    moved = st.tasks[3]
    change(rnd, st.tasks, moved, NOW + 90)              # and it goes on like any kept tally
    taken.sync(st.tasks, changed=[3])
    assert seen(taken, st.tasks) == seen(Tally(st.tasks), st.tasks)


def test_an_empty_tally_and_one_of_a_single_task_survive_the_trip():
    for tasks in ([], [Task(run=1, state=S.FAILED, since=NOW, error="oom")]):
        taken = SV.load([SV.dump(Tally(tasks), "s1", 1, NOW)])
        taken.sync(tasks)
        assert seen(taken, tasks) == seen(Tally(tasks), tasks)


@pytest.mark.parametrize("store_id, generation, tasks, ok", [
    ("s1", 7, 10, True),          # the status it was made from
    ("s1", 9, 12, True),          # written since, tasks added: brought up to date
    ("s2", 7, 10, False),         # another store (a recovered or foreign status file)
    ("s1", 6, 10, False),         # a status older than the tally (a backup put back)
    ("s1", 7, 9, False),          # fewer tasks than it counted (a purge: counted afresh anyway)
])
def test_a_saved_tally_is_used_only_for_its_status(store_id, generation, tasks, ok):
    head = SV.head_of(SV.dump(Tally([Task(run=r) for r in range(10)]), "s1", 7, NOW))
    assert SV.usable(head, store_id, generation, tasks) is ok


@pytest.mark.parametrize("age, ok", [(0, True), (600, True), (601, False), (-601, False)])
def test_a_saved_tally_counted_afresh_too_long_ago_is_not_recent(age, ok):
    """(-601: counted 'later' than now, by a host whose clock is ahead: not trusted either)"""
    head = SV.head_of(SV.dump(Tally([Task(run=r) for r in range(10)]), "s1", 7, NOW))
    assert SV.recent(head, NOW + age, max_age=600) is ok


def test_a_damaged_or_foreign_file_is_not_a_tally():
    data = SV.dump(Tally(production(random.Random(1), 40)), "s1", 1, NOW)
    assert SV.head_of(b"garbage") is None and SV.head_of(b"{}\n") is None
    assert SV.head_of(data.replace(b'"form":%d' % SV.FORM, b'"form":0', 1)) is None     # another layout
    assert SV.load([data[:len(data) // 2]]) is None                           # cut short
    assert SV.load([data[:data.index(b"\n") + 1] + b"\x00" * 100]) is None


class Counting:
    """Tally._build spied on: how many times a process counted every task."""

    def __init__(self, monkeypatch) -> None:
        self.n = 0
        build = Tally._build

        def counting(tally, tasks):
            self.n += 1
            return build(tally, tasks)
        monkeypatch.setattr(Tally, "_build", counting)


def page_of(live: LivePage, st: Status) -> str:
    return "".join(live(st))


def test_a_new_process_takes_the_last_ones_tally_and_shows_what_changed_since(tmp_path, monkeypatch):
    rnd = random.Random(3)
    builds = Counting(monkeypatch)
    path = str(tmp_path / "status.html.tally")
    st = Status(store_id="s1", generation=3, tasks=production(rnd, 100))
    LivePage(clock=lambda: NOW, saved=path)(st)
    assert builds.n == 1
    st = reread(st)
    st.generation += 1
    st.tasks[0].state, st.tasks[0].since = S.FAILED, NOW + 5     # another process's write
    st.tasks[0].error = "the one failure"
    page = page_of(LivePage(clock=lambda: NOW + 10, saved=path), st)
    assert builds.n == 1                                          # taken, not counted again
    assert page == page_of(LivePage(clock=lambda: NOW + 10), st)
    assert "the one failure" in page


def test_a_changed_status_file_makes_the_next_process_count_afresh(tmp_path, monkeypatch):
    """Another store's status (recover, a copy of another experiment) or an older generation
    (a backup put back) in place of the one the tally was made from: never used."""
    builds = Counting(monkeypatch)
    path = str(tmp_path / "status.html.tally")
    st = Status(store_id="s1", generation=8, tasks=[Task(run=r, state=S.RUNNING, since=NOW) for r in range(20)])
    LivePage(clock=lambda: NOW, saved=path)(st)
    other = Status(store_id="s2", generation=8, tasks=[Task(run=r, state=S.COMPLETED, since=NOW) for r in range(20)])
    assert "20 of 20 done" in page_of(LivePage(clock=lambda: NOW, saved=path), other)
    older = reread(st)
    older.generation = 7
    older.tasks[0].state = S.QUEUED          # (a tally of generation 8 is never taken for 7)
    assert "queued <b>1</b>" in page_of(LivePage(clock=lambda: NOW, saved=path), older)
    assert builds.n == 3


def _unseen_edits(rnd: random.Random, tasks: list[Task]) -> None:
    """Edits in place that keep every task's state and since: what no comparison of state,
    since, run, job and segment finds, but a recount does."""
    done = [t for t in tasks if t.state == S.COMPLETED]
    bad = [t for t in tasks if t.state in S.PROBLEM]
    for t in rnd.sample(tasks, 10):
        t.meta = {"dataset": "renamed"}
    for t in rnd.sample(done, 3):
        t.finished_at = (t.finished_at or NOW) + 7
        t.started_at = NOW - 50
    for t in rnd.sample(bad, min(3, len(bad))):
        t.error, t.failure_class = "edited by hand", "timeout"
    for t in rnd.sample(tasks, 3):
        t.past = (Attempt(n=1, state=S.FAILED),)


@pytest.mark.parametrize("seed", range(4))
def test_a_saved_tally_past_its_recount_is_compared_in_full_and_equals_one_counted_afresh(tmp_path, monkeypatch, seed):
    """A oneshot a quarter of an hour after the last (cron), or any writing command after a
    quiet while, counted every task afresh: ~2.7 s at 1,000,000 tasks. It takes the saved tally
    and compares every task with it in every field it counts by: what it shows is what a recount
    shows, edits that keep the state and since included (the recount's reason to be)."""
    rnd = random.Random(seed)
    builds = Counting(monkeypatch)
    path = tmp_path / "status.html.tally"
    st = Status(store_id="s1", generation=3, tasks=production(rnd, 200))
    LivePage(clock=lambda: NOW, saved=str(path))(st)
    saved = path.read_bytes()
    st = reread(st)
    st.generation += 2
    _unseen_edits(rnd, st.tasks)
    later = NOW + 601
    live = LivePage(clock=lambda: later, saved=str(path))
    page = page_of(live, st)
    assert builds.n == 1                                              # compared, not counted
    assert seen(live.tally, st.tasks) == seen(Tally(st.tasks), st.tasks)
    assert page == page_of(LivePage(clock=lambda: later), st)
    assert "renamed" in page and "edited by hand" in page
    assert path.read_bytes() != saved and SV.head_of(path.read_bytes()).built == later   # moved 16 of 200: saved
    assert live._built == later                                       # its own recount: rebuild_after from now
    live.clock, before = (lambda: later + 100), builds.n
    quiet = next(t for t in st.tasks if t.state == S.COMPLETED)
    quiet.meta = {"dataset": "qqlate"}                                # (in place, unsaid: the caller's list)
    page_of(live, st)
    assert "qqlate" not in live.tally.breakdown("dataset")            # (not before the periodic recount)
    live.clock = lambda: later + 601
    assert "qqlate" in page_of(live, st) and builds.n == before         # found by the same comparison


def test_a_full_comparison_that_moved_few_tasks_does_not_save_the_tally_again(tmp_path, monkeypatch):
    """Saving costs ~0.6 s at 1,000,000 tasks: done when the tally moved over 1 % of them (each
    later process moves them again), not for a few."""
    builds = Counting(monkeypatch)
    path = tmp_path / "status.html.tally"
    st = Status(store_id="s1", generation=3, tasks=[Task(run=r, state=S.RUNNING, since=NOW) for r in range(300)])
    LivePage(clock=lambda: NOW, saved=str(path))(st)
    saved = path.read_bytes()
    st = reread(st)
    st.generation += 1
    for t in st.tasks[:3]:                                            # 1 % exactly: not saved
        t.meta = {"dataset": "renamed"}
    live = LivePage(clock=lambda: NOW + 700, saved=str(path))
    assert "renamed" in page_of(live, st) and builds.n == 1
    assert path.read_bytes() == saved
    st.tasks[3].meta = {"dataset": "renamed"}                         # 4 of 300: saved
    assert "renamed" in page_of(LivePage(clock=lambda: NOW + 700, saved=str(path)), st) and builds.n == 1
    assert SV.head_of(path.read_bytes()).built == NOW + 700


def test_a_process_saves_its_tally_when_it_counted_afresh_or_its_periodic_check_finds_it_moved(tmp_path, monkeypatch):
    """A living daemon's periodic recount (every rebuild_after) compares every task in full; it
    saves the tally when it moved over 1 % of the tasks since it was saved, and never counts
    afresh again (at 1,000,000 tasks that iteration took ~2.8 s: bench_campaign's 'recount')."""
    builds = Counting(monkeypatch)
    path = tmp_path / "status.html.tally"
    clock = [NOW]
    st = Status(store_id="s1", generation=1, tasks=[Task(run=r, state=S.NEW, since=NOW) for r in range(5)])
    live = LivePage(clock=lambda: clock[0], saved=str(path), rebuild_after=600)
    live(st)
    first = path.read_bytes()
    st.generation, st.tasks[0].state = 2, S.UNSTAGED
    clock[0] += 10
    live(st)
    assert path.read_bytes() == first                     # moved a task: not saved again
    clock[0] += 600                                       # the periodic recount: moved 1 of 5, saved
    st.generation = 3
    live(st)
    assert SV.head_of(path.read_bytes()).generation == 3 and builds.n == 1
    clock[0] += 601                                       # nothing moved since: not saved
    st.generation = 4
    live(st)
    assert SV.head_of(path.read_bytes()).generation == 3 and builds.n == 1
    nothing = LivePage(clock=lambda: NOW, saved=str(tmp_path / "no" / "such" / "dir" / "x"))
    nothing(st)                                           # unwritable: the page all the same


def test_an_experiment_saves_the_tally_beside_its_status_file_not_in_the_pages_directory(tmp_path):
    """The page's directory may be one a web server publishes; the tally is the status file's."""
    from e2e_helpers import make_experiment
    e = make_experiment(tmp_path, [1, 2], **{"daemon.html_file": str(tmp_path / "www" / "status.html")})
    with e.store.transaction("test") as st:
        st.tasks[0].priority += 1
    assert e.store.render_html.saved == e.store.path + ".tally"
    assert SV.head_of((tmp_path / "status.json.tally").read_bytes()).n == len(st.tasks) > 0
    assert sorted(p.name for p in (tmp_path / "www").iterdir()) == ["status.html", "status.html.lock"]
    none = make_experiment(tmp_path / "quiet", [1], **{"daemon.html_file": ""})
    assert none.store.render_html.saved == ""


def _dataset_renamed(tasks: list[Task], k: int) -> list[Task]:
    """What a write changed that no comparison of state, since, run and job sees."""
    for t in tasks[:k]:
        t.meta = {"dataset": "renamed"}
    return tasks[:k]


@pytest.mark.parametrize("cost", [1, 10 ** 6])
def test_a_saved_tally_of_the_generation_read_is_brought_up_to_date_with_the_tasks_written_alone(
        tmp_path, monkeypatch, cost):
    """oneshot after another writer: the saved tally is of the generation this process read, so
    what changed since is what this process wrote (the store's word), in place: those tasks
    alone are looked at, or (many of them) the states compared, as in the process's own list."""
    monkeypatch.setattr(W, "COST", cost)
    builds = Counting(monkeypatch)
    rnd = random.Random(5)
    path = str(tmp_path / "status.json.tally")
    st = Status(store_id="s1", generation=3, tasks=sorted(production(rnd, 100), key=lambda t: t.run))
    LivePage(clock=lambda: NOW, saved=path)(st)
    st = reread(st)                                  # read as generation 3 by a new process ...
    touched = _dataset_renamed(st.tasks, 4)          # ... which changes tasks and writes
    change(rnd, st.tasks, st.tasks[50], NOW + 5)
    st.generation = 4
    live = LivePage(clock=lambda: NOW + 10, saved=path)
    looked = []
    monkeypatch.setattr(live_mod, "CHECK", False)     # (its check compares: not what is counted here)
    monkeypatch.setattr(Tally, "behind", lambda self, tasks: looked.append(1) or [])   # (5 fields compared)
    page = page_of_touched(live, st, touched + [st.tasks[50]], origin=3)
    assert builds.n == 1 and not looked
    if cost == 1:
        assert page == page_of(LivePage(clock=lambda: NOW + 10), st) and "renamed" in page
    else:       # the states compared: a change that keeps the state waits for the recount
        assert live.tally.counts == Tally(st.tasks).counts


def test_a_saved_tally_of_another_generation_than_the_one_read_is_compared(tmp_path, monkeypatch):
    """Saved at 3, read as 4 (another process wrote meanwhile): the tasks this process wrote are
    not all that changed since the tally; every task is compared."""
    monkeypatch.setattr(W, "COST", 1)
    rnd = random.Random(6)
    path = str(tmp_path / "status.json.tally")
    st = Status(store_id="s1", generation=3, tasks=sorted(production(rnd, 100), key=lambda t: t.run))
    LivePage(clock=lambda: NOW, saved=path)(st)
    st = reread(st)
    st.tasks[10].state, st.tasks[10].since, st.generation = S.SKIPPED, NOW + 3, 4    # the other writer
    st.tasks[20].state, st.generation = S.ABORTED, 5                                # this process
    page = page_of_touched(LivePage(clock=lambda: NOW + 10, saved=path), st, [st.tasks[20]], origin=4)
    assert page == page_of(LivePage(clock=lambda: NOW + 10), st)


def page_of_touched(live: LivePage, st: Status, touched: list, origin: int) -> str:
    return "".join(live(st, touched=touched, origin=origin))


@pytest.mark.parametrize("log_mode", [False, True])
def test_a_new_process_after_another_writer_brings_the_saved_tally_up_to_date_through_the_store(
        tmp_path, monkeypatch, log_mode):
    """The store's word end to end: a writer saves its tally; a new process that read the same
    generation takes it with the tasks it wrote alone. One that read a later generation (a
    third process wrote between: a change the states alone do not show) compares when the file
    was rewritten whole; when the later generation is the saved one's file and the change log's
    records after it, the tasks those records replaced are touched too and the tally moves them
    alone (a new process after another writer: no task compared). (A change that keeps state and
    since, written by a process that took a saved tally, reaches the saved tally only at the
    next recount: as before, not exercised here.)"""
    from batchman.store import store as store_mod
    from batchman.store.store import Store
    monkeypatch.setattr(W, "COST", 1)
    if log_mode:
        monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    path, html = str(tmp_path / "status.json"), str(tmp_path / "p.html")
    adopted = []
    adopt = Tally.adopt
    monkeypatch.setattr(Tally, "adopt", lambda self, tasks: adopted.append(1) or adopt(self, tasks))

    def process() -> Store:
        return Store(path, html=LivePage(clock=lambda: NOW, saved=path + ".tally"), html_path=html)

    def page_is_fresh(store: Store) -> None:
        with open(html, encoding="utf-8") as f:
            assert f.read().split("\n", 1)[1] == "".join(LivePage(clock=lambda: NOW)(Store(path).read()))

    with process().transaction("writer") as st:                     # counts afresh, saves the tally
        st.tasks = [Task(run=r, state=S.RUNNING, since=NOW - 60) for r in range(60)]
    new = process()
    with new.transaction("oneshot") as st:                          # read the generation saved
        st.tasks[3].state, st.tasks[4].state = S.COMPLETED, S.FAILED
    assert adopted == [1]
    page_is_fresh(new)
    with process().transaction("writer") as st:
        st.tasks[9].state = S.QUEUED                                # counts afresh again, saves
    third = process()
    third.read()
    with Store(path).transaction("third") as st:                    # no page: the tally stays behind
        st.tasks[20].since = NOW - 5
    with third.transaction("late") as st:                           # read again: a later generation
        st.tasks[30].state = S.FAILED
    # (log mode: the second writer and the third process read the first writer's file and the
    # records after it, and the saved tally is of that file; each takes it, with what changed)
    assert adopted == ([1, 1, 1] if log_mode else [1])
    page_is_fresh(third)


def test_a_tally_saved_by_the_writer_of_a_logged_change_is_taken_by_the_next_process(tmp_path, monkeypatch):
    """The file is generation 1; another process appended generation 2 to the change log and,
    its saved tally being too old, counted afresh and saved it as of 2. A new process reads the
    file (1) and the log (2): the tasks the log replaced and those it writes are touched since 1,
    so also since 2: it takes that tally (no task compared) and its page is a fresh count's."""
    from batchman.store import store as store_mod
    from batchman.store.store import Store
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    path, html = str(tmp_path / "status.json"), str(tmp_path / "p.html")
    adopted, behind = [], []
    adopt, compare = Tally.adopt, Tally.behind
    monkeypatch.setattr(Tally, "adopt", lambda self, tasks: adopted.append(1) or adopt(self, tasks))

    def process(**kw) -> Store:
        return Store(path, html=LivePage(clock=lambda: NOW, saved=path + ".tally", **kw), html_path=html)

    with process().transaction("writer") as st:
        st.tasks = [Task(run=r, state=S.RUNNING, since=NOW - 60) for r in range(60)]
    with process(rebuild_after=-1).transaction("another process") as st:      # counts afresh, saves as of 2
        st.tasks[7].state, st.tasks[8].since = S.FAILED, NOW - 5
    with open(path + ".tally", "rb") as f:
        assert SV.head_of(f.read()).generation == 2
    adopted.clear()
    monkeypatch.setattr(Tally, "behind", lambda self, tasks: behind.append(1) or compare(self, tasks))
    monkeypatch.setattr(live_mod, "CHECK", False)      # (its check compares every task: the page below does)
    new = process()
    with new.transaction("oneshot") as st:
        st.tasks[3].state = S.COMPLETED
    assert adopted == [1] and behind == []
    with open(html, encoding="utf-8") as f:
        assert f.read().split("\n", 1)[1] == "".join(LivePage(clock=lambda: NOW)(Store(path).read()))


def test_between_rounds_the_periodic_recount_waits_for_tend(tmp_path, monkeypatch):
    """A daemon's loop sets ``between_rounds``: a page past its recount is rendered without it;
    ``tend`` between two rounds compares every task, and the next page shows what it found."""
    builds = Counting(monkeypatch)
    path = tmp_path / "status.html.tally"
    clock = [NOW]
    st = Status(store_id="s1", generation=1, tasks=[Task(run=r, state=S.COMPLETED, since=NOW) for r in range(50)])
    live = LivePage(clock=lambda: clock[0], saved=str(path), rebuild_after=600)
    live.between_rounds = True
    assert not live.tend()                               # (no page yet: nothing to compare)
    live(st)
    assert not live.tend() and builds.n == 1             # (not due)
    st.tasks[7].meta = {"dataset": "qqlate"}             # in place, unsaid
    clock[0] += 601
    live(st)
    assert "qqlate" not in live.tally.breakdown("dataset")
    assert live.tend() and "qqlate" in live.tally.breakdown("dataset") and builds.n == 1
    assert SV.head_of(path.read_bytes()).built == NOW + 601       # moved 1 of 50 (over 1 %): saved
    assert not live.tend()                               # (done: not due again before 600 s)
    st.generation += 1
    assert "qqlate" in page_of(live, st)


def test_the_tally_written_in_pieces_is_its_body_encoded_whole():
    """The saved file is written a field at a time (saved.pieces: a daemon's memory did not hold
    every field's lists and the encoded whole at once); its bytes are those of the Body encoded
    in one piece, which is what a reader decodes."""
    rnd = random.Random(5)
    tasks = production(rnd, 150)
    tally = Tally(tasks)
    seen(tally, tasks)
    data = SV.dump(tally, "s1", 3, NOW)
    assert b"".join(SV.pieces(tally, "s1", 3, NOW)) == data
    body = data[data.index(b"\n") + 1:]
    decoded = SV._body.decode(body)
    assert msgspec.msgpack.encode(decoded) == body
    assert len(list(SV.pieces(tally, "s1", 3, NOW))) == 2 + len(SV.Body.__struct_fields__)
