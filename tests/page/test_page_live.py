"""The daemon's page across its writes: rendered when what it shows changed, never left to age.

``LivePage`` skips a render that would show the same; these tests pin what counts as
"the same" (not the clock, not a fresh heartbeat) and that a skipped page never gets old
enough for a reader to take a living daemon for a dead one -- or the reverse.
"""

from __future__ import annotations

import re

import pytest

from batchman.core import states as S
from batchman.core.model import Daemon, IterationLog, Status, Task
from batchman.page.live import LivePage
from batchman.store.store import Store

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


def production() -> Status:
    tasks = [Task(run=r, state=S.RUNNING, since=NOW - 60, job_id=str(r)) for r in range(5)]
    tasks += [Task(run=r, state=S.COMPLETED, since=NOW - 600, finished_at=NOW - 600) for r in range(5, 500)]
    return Status(generation=1, store_id="s1", tasks=tasks, last_iteration=IterationLog(at=NOW),
                  daemons=[Daemon(id="h:1", host="h", pid=1, started=NOW - 900, heartbeat=NOW)])


def beat(st: Status, clock: Clock, dt: float) -> None:
    """An iteration that changed nothing but the heartbeat and the round's time."""
    clock.t += dt
    st.generation += 1
    st.daemons[0].heartbeat = clock.t
    st.last_iteration = IterationLog(at=clock.t, seconds=0.2)


def test_a_write_that_changed_nothing_shown_is_not_rendered_until_the_page_would_age():
    clock, st = Clock(), production()
    live = LivePage(stale_after=300, refresh=60, clock=clock)
    assert live.max_age == 60                   # at most the reload period, a third of stale_after
    assert live(st) is not None
    beat(st, clock, 20)
    assert live(st) is None and live.skipped == 1
    beat(st, clock, 20)
    assert live(st) is None
    beat(st, clock, 25)                         # 65 s after the last page: rendered again
    page = "".join(live(st))
    assert f"data-written='{clock.t:.0f}'" in page


def test_the_page_age_limit_keeps_a_living_daemon_far_from_stale():
    live = LivePage(stale_after=90, refresh=300)
    assert live.max_age == 30                   # a page is never older than a third of stale_after


def test_a_task_that_changed_state_is_rendered_at_once():
    clock, st = Clock(), production()
    live = LivePage(clock=clock)
    live(st)
    beat(st, clock, 5)
    st.tasks[0].state, st.tasks[0].since = S.COMPLETED, clock.t
    page = "".join(live(st))
    assert "<li class='s-running'>running <b>4</b></li>" in page


def test_a_listed_row_that_changed_without_a_new_state_is_rendered_at_once():
    """A counter reported by a running job, a kill requested: same state, new row."""
    clock, st = Clock(), production()
    live = LivePage(clock=clock)
    live(st)
    beat(st, clock, 5)
    st.tasks[1].counters = {"events": 12345}
    assert "events=12345" in "".join(live(st))
    beat(st, clock, 5)
    st.tasks[2].request = "kill"
    assert "running [kill]" in "".join(live(st))


def test_a_heartbeat_gone_stale_and_a_new_daemon_are_rendered_at_once():
    clock, st = Clock(), production()
    live = LivePage(stale_after=300, refresh=600, max_age=1000, clock=clock)
    live(st)
    clock.t += 301                              # nobody beat: the page says so, red, without scripts
    page = "".join(live(st))
    assert re.search(r"<p id='hb' class='bad'>daemon pid 1 on h, heartbeat .*is it running\?", page)
    st.daemons = [Daemon(id="h:2", host="h", pid=2, started=clock.t, heartbeat=clock.t)]
    assert "daemon pid 2 on h" in "".join(live(st))


def test_health_lines_are_part_of_what_the_page_shows():
    clock, st = Clock(), production()
    live = LivePage(clock=clock)
    live(st)
    st.batch_unreachable_since, st.batch_last_error = clock.t, "squeue: <timeout>"
    assert "squeue: &lt;timeout&gt;" in "".join(live(st))
    st.paused = True
    assert "PAUSED" in "".join(live(st))
    assert live(st) is None


def test_the_tally_is_counted_afresh_now_and_then():
    """The safety net for an edit that keeps a task's state and since (a dataset renamed by hand)."""
    clock, st = Clock(), production()
    live = LivePage(clock=clock, rebuild_after=600)
    live(st)
    st.tasks[100].meta = {"dataset": "Ti50"}      # neither state nor since: not seen in place
    beat(st, clock, 30)
    assert live(st) is None and live.tally.by_dataset[S.COMPLETED]["Ti50"] == 0
    clock.t += 600
    live(st)
    assert live.tally.by_dataset[S.COMPLETED]["Ti50"] == 1


def test_the_store_leaves_a_skipped_page_alone_and_streams_a_page_in_pieces(tmp_path):
    pieces: list = [None]
    store = Store(str(tmp_path / "status.json"), html=lambda st: pieces[0], html_path=str(tmp_path / "p.html"))
    with store.transaction("test") as st:
        st.tasks = [Task(run=1)]
    assert not (tmp_path / "p.html").exists()            # nothing rendered: nothing written
    pieces[0] = iter(["<p>", "été", b"</p>"])           # text and bytes, one after the other
    with store.transaction("test") as st:
        st.tasks[0].state = S.QUEUED
    text = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert text.startswith("<!-- batchman generation 2 ") and text.endswith("\n<p>été</p>")


@pytest.mark.parametrize("log_mode", [False, True])
def test_the_store_hands_the_page_the_tasks_its_writes_changed(tmp_path, monkeypatch, log_mode):
    """The daemon's own writes: the page looks at the tasks written alone (found by run, no
    pass over every task), and counts a change that keeps the state at once. After another
    process wrote: the file read again (small files, rewritten whole), it compares every task;
    its change read from the change log (log mode), it looks at that task too, and at no other
    (store/replays.py). Each page is the page counted afresh."""
    from batchman.page import where as W
    from batchman.page.tally import Tally
    from batchman.store import store as store_mod
    monkeypatch.setattr(W, "COST", 1)
    if log_mode:
        monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    told: list = []
    sync = Tally.sync
    monkeypatch.setattr(Tally, "sync", lambda self, tasks, changed=None, touched=None, base=None: told.append(
        (self, None if touched is None else len(touched))) or sync(self, tasks, changed, touched, base))
    located, positions = [], W.positions       # (found by run: no pass over every task)
    monkeypatch.setattr(W, "positions", lambda *a: located.append(len(a[4])) or positions(*a))
    path, html = str(tmp_path / "status.json"), tmp_path / "p.html"
    store = Store(path, html=LivePage(clock=lambda: NOW), html_path=str(html))
    other = Store(path)

    def page_is_fresh():
        fresh = "".join(LivePage(clock=lambda: NOW)(Store(path).read()))
        assert html.read_text(encoding="utf-8").split("\n", 1)[1] == fresh

    with store.transaction("test") as st:
        st.tasks = [Task(run=r, state=S.RUNNING, since=NOW - 60) for r in range(40)]
    for k in range(3):
        with store.transaction("test") as st:
            st.tasks[k].state, st.tasks[k].since = S.COMPLETED, NOW
            st.tasks[10 + k].meta = {"dataset": "Ti50"}       # the state kept
            st.tasks.append(Task(run=100 + k, state=S.QUEUED))
        page_is_fresh()
    mine = lambda: [n for tally, n in told if tally is store.render_html.tally]     # noqa: E731
    assert mine()[1:] == [3, 3, 3]
    located.clear()
    with other.transaction("test") as st:
        st.tasks[20].state = S.FAILED
    with store.transaction("test") as st:
        st.tasks[30].state = S.QUEUED
    page_is_fresh()
    assert mine()[-1] == (2 if log_mode else 1) and "failed <b>1</b>" in html.read_text(encoding="utf-8")
    assert located == ([2] if log_mode else [])


def test_a_page_that_did_not_reach_the_disk_is_not_skipped_next(tmp_path, monkeypatch):
    """A full disk failed the page's write; the next write showed the same, so the page skipped
    it as 'on disk already' and the old page stayed for up to max_age after the space was back."""
    import errno
    import os

    from batchman.store import store as store_mod
    clock = Clock()
    live = LivePage(stale_after=300, refresh=60, clock=clock)
    store = Store(str(tmp_path / "status.json"), html=live, html_path=str(tmp_path / "p.html"))
    with store.transaction("test") as st:
        st.tasks = [Task(run=1, state=S.RUNNING, since=NOW)]
    real = store_mod.atomic_write

    def full(path, data, *a, **kw):
        if path.endswith("p.html"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data, *a, **kw)
    monkeypatch.setattr(store_mod, "atomic_write", full)
    with pytest.raises(OSError):
        with store.transaction("test") as st:
            st.tasks[0].state = S.COMPLETED
    monkeypatch.setattr(store_mod, "atomic_write", real)
    clock.t += 5
    with store.transaction("test") as st:      # (the space back) a write that shows nothing new
        st.last_iteration = IterationLog(at=clock.t, seconds=0.2)
    text = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert text.startswith("<!-- batchman generation 3 ") and "completed" in text
