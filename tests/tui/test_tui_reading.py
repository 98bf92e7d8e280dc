"""Issue 18: a large status file is read in steps (tui/loading.py): the first screen comes from
its first tasks, keys that move work at once, a key that needs every task waits for the rest,
and what other writers did meanwhile is shown once the reading is done."""

import random

import pytest

from batchman import actions as A
from batchman.core import model
from batchman.experiment import open_experiment
from batchman.store import store as store_mod
from batchman.store.store import Store
from batchman.tui import loading
from tuihelp import change, line_of, make_experiment, screen

SMALL = (80, 24)
RUNS = range(1000, 1200)


@pytest.fixture
def big(tmp_path, monkeypatch):
    """200 tasks, 40 a line of the status file (at 1,000,000: 20,000), read in steps by a TUI
    that opens the experiment afresh (the store that wrote them has them already)."""
    monkeypatch.setattr(store_mod.snapshot, "CHUNK", 40)
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)       # writers append to the change log
    monkeypatch.setattr(store_mod, "COMPACT_MIN", 0)
    monkeypatch.setattr(loading, "STREAM_FROM", 0)
    exp = make_experiment(tmp_path / "exp")
    A.add_runs(exp.store, list(RUNS))
    return exp


def steps(app, between=lambda: None) -> int:
    n = 0
    while loading.step(app):
        between()
        n += 1
    return n


def test_the_first_screen_shows_the_first_tasks_and_says_the_rest_is_being_read(big, app_for):
    app = app_for(open_experiment(big.root))
    s = screen(app, SMALL)
    assert app.reading is not None and app.reading.status is None
    assert "1000" in s and "1004" in s and "1199" not in s        # the first piece: 5 or 6 tasks
    assert len(app.index.order) < 40 and s.splitlines()[-1].startswith(" reading the status file: ")
    head = s.splitlines()[0]
    assert "200" not in head and f"{len(app.index.order)} task" in head     # the counts of what is read
    for _ in range(12):
        loading.step(app)
    assert 40 <= len(app.reading.partial.tasks) < 200 and len(app.index.order) < 40
    assert f"{len(app.reading.partial.tasks)} task" in screen(app, SMALL).splitlines()[0]   # ... so far
    app.type("<down><down>", SMALL)                                 # moving needs no more
    assert app.reading is not None and line_of(app, "1002", SMALL).startswith(">")
    assert steps(app) > 4
    s = screen(app, SMALL)
    assert "200 task(s)" in s or "200 tasks" in s
    assert "reading" not in s and line_of(app, "1002", SMALL).startswith(">")


def test_a_key_that_needs_every_task_waits_for_the_rest(big, app_for):
    app = app_for(open_experiment(big.root))
    app.type("/1150<enter>", SMALL)
    assert app.reading is None or app.reading.shown
    assert "1 shown" in screen(app, SMALL) and "1150" in line_of(app, "1150", SMALL)


def test_a_small_file_is_read_at_once(big, app_for, monkeypatch):
    monkeypatch.setattr(loading, "STREAM_FROM", 1 << 30)
    app = app_for(open_experiment(big.root))
    assert app.reading is None and len(app.index.order) == 200


@pytest.mark.parametrize("seed", range(4))
def test_what_others_write_while_it_is_read_is_shown_once_read(big, app_for, seed):
    rnd = random.Random(seed)
    app = app_for(open_experiment(big.root))
    writes = iter(range(rnd.randint(1, 8)))

    def other_writer():
        if next(writes, None) is not None:
            runs = rnd.sample(list(RUNS), 3)
            change(big.store, **{f"r{r}": dict(state=rnd.choice(["failed", "running", "queued"]),
                                               error=f"e{rnd.random()}") for r in runs})
            if rnd.random() < 0.2:
                big.store.compact()
    steps(app, other_writer)
    app.tick()
    want = Store(big.store.path).read()
    assert model.encode(app.index.status) == model.encode(want)
    counts = line_of(app, "task(s)", SMALL) if "task(s)" in screen(app, SMALL) else screen(app, SMALL)
    for state in ("failed", "running", "queued"):
        n = sum(t.state == state for t in want.tasks)
        assert (f"{n} {state}" in counts) == (n > 0)
    for _ in range(3):                                      # and it goes on following
        change(big.store, r1100=dict(state="failed", error=f"x{_}"))
        app.tick()
        assert model.encode(app.index.status) == model.encode(Store(big.store.path).read())


def test_a_newer_status_of_many_tasks_is_shown_once_its_orders_are_made_keys_working_meanwhile(big, app_for,
                                                                                               monkeypatch):
    monkeypatch.setattr(loading, "WARM_FROM", 0)
    app = app_for(open_experiment(big.root))
    steps(app)
    change(big.store, r1150=dict(state="failed", error="exit code 9"))
    app.tick()
    assert app.reading is not None and not app.reading.first
    app.type("/exit code 9<enter>", SMALL)              # on the status shown: no wait for the newer one
    assert app.reading is not None and "0 shown" in screen(app, SMALL)
    steps(app)
    assert app.reading is None and "1 shown" in screen(app, SMALL)
    assert "failed" in line_of(app, "1150", SMALL) and "1 failed" in screen(app, SMALL)
    for k in range(3):                                  # and the next ones alike
        change(big.store, **{f"r{1100 + k}": dict(state="running")})
        app.tick()
        steps(app)
        app.tick()
        assert model.encode(app.index.status) == model.encode(Store(big.store.path).read())
    assert f"{3} running" in screen(app, SMALL)


def test_the_main_loop_takes_steps_for_a_budget_then_pauses_so_that_it_draws_and_takes_keys(big, app_for,
                                                                                          monkeypatch):
    app = app_for(open_experiment(big.root))

    class Loop:
        armed: list = []

        def set_alarm_in(self, seconds, callback):
            self.armed.append((seconds, callback))
    loop, go = Loop(), loading.alarm(app)
    monkeypatch.setattr(loading, "BUDGET", 0.0)
    go(loop)
    assert app.reading is not None and loop.armed == [(loading.PAUSE, go)]       # one step, then a pause > 0
    monkeypatch.setattr(loading, "BUDGET", 60.0)
    go(loop)
    assert app.reading is None and len(loop.armed) == 1                        # all done: not armed again


@pytest.mark.parametrize("seed", range(3))
def test_a_file_rewritten_whole_is_read_in_steps_the_list_showing_the_one_before(big, app_for, monkeypatch, seed):
    """Another writer rewrote the file whole (not a compaction of what the TUI has: a writer out of
    log mode, recover, a schema upgrade): it is read in steps, never decoded in one go in a tick,
    keys working on the list before; what is written meanwhile is shown once it is read."""
    rnd = random.Random(seed)
    app = app_for(open_experiment(big.root))
    steps(app)
    whole, writing = [], [True]
    load = store_mod.follow.load
    monkeypatch.setattr(store_mod.follow, "load", lambda *a: load(*a) if writing[0] else whole.append(a) or load(*a))
    monkeypatch.setattr(store_mod, "LOG_FROM", 1 << 40)     # the writer rewrites the file whole
    change(big.store, r1150=dict(state="failed", error="exit code 9"))
    writing[0] = False
    app.tick()
    assert app.reading is not None and not app.reading.first
    assert "200 new" in screen(app, SMALL).splitlines()[0]  # the one before, while it is read
    app.type("<down><down>/1150<enter>", SMALL)             # keys work on it meanwhile
    assert app.reading is not None and "1 shown" in screen(app, SMALL) and "new" in line_of(app, "1150 analysis", SMALL)
    loading.step(app)
    loading.step(app)
    assert screen(app, SMALL).splitlines()[-1].startswith(" reading the rewritten status file: ")

    n = [0]

    def other_writer():         # the file rewritten whole once more at a random step, then logged writes
        n[0] += 1
        if n[0] == again or rnd.random() < 0.2:
            writing[0] = True
            monkeypatch.setattr(store_mod, "LOG_FROM", 1 << 40 if n[0] == again else 0)
            run = rnd.choice(list(RUNS))
            change(big.store, **{f"r{run}": dict(state=rnd.choice(["running", "queued"]))})
            writing[0] = False
    again = rnd.randint(1, 5)
    steps(app, other_writer)
    monkeypatch.undo()
    for _ in range(2):
        app.tick()
        steps(app)
    want = Store(big.store.path).read()
    assert not whole and model.encode(app.index.status) == model.encode(want)
    assert "failed" in line_of(app, "1150 analysis", SMALL) and "reading" not in screen(app, SMALL)


def test_a_reading_not_begun_says_nothing_read_yet(big):
    for first in (True, False):
        r = loading.Reading(big.store, first=first)
        assert (r.read, r.size) == (0, 0) and r.told and r.first == first
        assert r.progress()[-1] == "reading: 0 %"
