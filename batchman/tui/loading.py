"""A large status file read in steps while the TUI already shows its first tasks (issue 18).

At 1,000,000 tasks decoding the status file takes ~2-3 s of the first screen. The file holds its
tasks 20,000 a line (store/snapshot.py), so the first screen is drawn from the first ~2,500, and
the rest is decoded an eighth of a line a step (10-30 ms) from the main loop, keys handled
between steps: moving through the tasks read so far at once, the header counting every task read
so far; a key that needs every task (a filter, a sort, a request, quit) first waits for the rest.
Then the counts by state and the run order of the whole are made in steps (``Orders.warm``), the
list shows every task, and its search text, blocks by state and orders by state and by time
follow in steps too (``Orders.steps``). A newer status of many tasks (the daemon wrote) goes
through the same orders' steps before it is shown, the list showing the one before meanwhile; a
large file replaced whole by another than a compaction (another writer rewrote it, ``recover``)
is read in steps so too (``replaced``), not decoded in one go between two keys.

One thread: decoding builds Python objects, which holds the interpreter's lock, so a thread
would only take turns with the keys (measured at 1M: the decode in a thread let the main
thread's 5 ms naps last up to 0.5 s).
"""

from __future__ import annotations

import gc
import os
import time
from operator import attrgetter
from typing import TYPE_CHECKING

import msgspec

from batchman.core.model import Status
from batchman.store import steps
from batchman.store.store import StoreError
from batchman.tui.ordering import Orders

if TYPE_CHECKING:
    from batchman.tui.app import App

STREAM_FROM = 16 << 20      # bytes: a smaller status file (~40,000 tasks) is read at once
_STATE = attrgetter("state")
BUDGET, PAUSE = 0.03, 0.005  # seconds of steps in one go, and between two goes (``alarm``)
WARM_FROM = 40_000          # tasks: a newer status with fewer is shown at once, not after ``warm``
SHOW = "show"               # what a step yields once the whole status can be shown
# the commands that work on the tasks read so far; any other first waits for the rest
PARTIAL_OK = ("nav.", "help", "refresh", "view.", "dialog.", "log.")


class Reading:
    """The status file being read: ``step`` decodes the next line of tasks, then makes the
    orders of the whole a piece at a time; ``status`` and ``orders`` once done. Given a
    ``status`` (a newer one, read since), only its orders are made so; the list shows the
    one before meanwhile, and keys work on that (``first`` False), as while a file replaced
    whole is read (``first`` False too)."""

    def __init__(self, store, status: Status | None = None, first: bool = True,
                 job_order: tuple[str, ...] = ()) -> None:
        self.job_order = job_order              # batchman.yaml's jobs (the run order's, ordering.Orders)
        self._steps = self._run(store, status)
        self.first = status is None and first
        self.told = status is None              # a file is read: the message line says so
        self.read = self.size = 0
        self.partial: Status | None = None     # the status so far (its task list grows)
        self.status: Status | None = None
        self.orders: Orders | None = None
        self.shown = False                      # the list shows ``status``
        self.counted = 0                        # tasks of ``partial`` in the header's counts

    def _run(self, store, status: Status | None):
        if status is None:
            status = yield from steps.read_steps(store)
        orders = Orders(status.tasks, self.job_order)
        yield from orders.warm()
        self.status, self.orders = status, orders
        yield SHOW                      # the list shows every task from here
        yield from orders.steps()       # the search text and the blocks by state, ahead

    def step(self) -> bool:
        """One step (StoreError when the file cannot be read); False once all is done."""
        try:
            got = next(self._steps)
        except StopIteration:
            return False
        if isinstance(got, tuple):
            self.read, self.size, self.partial = got
        return True

    def progress(self) -> tuple[str, ...]:
        """The message line while reading, most complete first."""
        n = len(self.partial.tasks) if self.partial else 0
        pct = 100 * self.read // max(1, self.size)
        if not self.first:
            return (f"reading the status file, rewritten whole: {pct} % ({n} tasks); the list shows the one before",
                    f"reading the rewritten status file: {pct} %", f"reading: {pct} %")
        return (f"reading the status file: {pct} % ({n} tasks); keys that need every task wait for it",
                f"reading the status file: {pct} % ({n} tasks)", f"reading: {pct} %")


def start(app: "App") -> None:
    """The first look at the status file: read whole when small; else its first line of tasks
    shown and the rest left to ``step``."""
    try:
        size = os.stat(app.store.path).st_size
    except OSError:
        size = 0
    if size < STREAM_FROM:
        app.refresh(force=True)
        return
    r = Reading(app.store, job_order=app.index.job_order())
    try:
        while r.step() and r.partial is None:
            pass
    except StoreError:
        app.refresh(force=True)         # says what is wrong
        return
    app.reading = r
    if r.partial is None:               # another layout (read whole), or not even one line
        finish(app)
        return
    first = msgspec.structs.replace(r.partial, tasks=list(r.partial.tasks))
    r.counted = len(first.tasks)
    app.index.set_status(first)
    for v in app.stack:
        v.on_status(first)
    app.say(*r.progress())


def step(app: "App") -> bool:
    """One step of the reading under way; False once there is none."""
    r = app.reading
    if r is None:
        return False
    try:
        more = r.step()
    except StoreError:
        more = False
    if more and r.status is None:
        if r.first and r.partial is not None:
            _count(app, r)
        if r.told and r.partial is not None:
            app.say(*r.progress())
    elif more and not r.shown:
        _show(app, r)
    elif not more:
        if not r.shown:
            _show(app, r)
        app.reading = None
        gc.freeze()     # the orders' lists of every task: a full collection would walk each
    return more


def _count(app: "App", r: Reading) -> None:
    """The header's counts by state, of every task read so far (the list shows the first ones)."""
    tasks = r.partial.tasks
    app.index.orders.counts().update(map(_STATE, tasks[r.counted:]))
    r.counted = len(tasks)
    app.tasklist.counts_changed()


def finish(app: "App") -> None:
    """Read the rest now (a key that needs every task); what is left once the list shows every
    task is made when needed (``Orders``: the search text by a filter, the blocks by a sort)."""
    while app.reading is not None and app.reading.first and not app.reading.shown and step(app):
        pass


def later(app: "App", status: Status) -> bool:
    """A newer status of many tasks: shown once its orders are made in steps (True), the list
    showing the one before meanwhile (each new status at 1M tasks would otherwise hold the
    screen ~0.5 s for its run order and counts)."""
    if len(status.tasks) < WARM_FROM or (app.reading is not None and not app.reading.shown):
        return False
    gc.freeze()         # its list and index of every task: else each full collection walks them
    stepping = app.reading is not None      # (the steps of the one before: their alarm goes on)
    app.reading = Reading(app.store, status, job_order=app.index.job_order())
    if app.loop is not None and not stepping:
        app.loop.set_alarm_in(0, alarm(app))
    return True


def replaced(app: "App") -> bool:
    """A large status file replaced whole by another than a compaction: read in steps (True),
    the list showing the one before meanwhile and keys working on it (a decode in one go held
    the screen ~1.5-2 s at 1,000,000 tasks)."""
    if app.reading is not None:
        return False
    try:
        if not steps.due(app.store) or os.stat(app.store.path).st_size < STREAM_FROM:
            return False
    except OSError:
        return False
    app.reading = Reading(app.store, first=False, job_order=app.index.job_order())
    if app.loop is not None:
        app.loop.set_alarm_in(0, alarm(app))
    return True


def _show(app: "App", r: Reading) -> None:
    """The whole status in the list (or, if it could not be read, what ``refresh`` says)."""
    from batchman.tui.app import HINTS
    r.shown = True
    if r.told:
        app.say(*HINTS)
    if r.status is None:
        app.reading = None
        app.refresh(force=True)
        return
    app.index.set_status(r.status, r.orders)
    for v in app.stack:
        v.on_status(r.status)


def before(app: "App", command: str) -> None:
    """Before a key's ``command``: the rest of the first read if the command needs every task."""
    if app.reading is not None and not command.startswith(PARTIAL_OK):
        finish(app)


def alarm(app: "App"):
    """The main loop's alarm callback: steps for up to BUDGET seconds, then again after PAUSE.
    urwid draws the screen only when its loop goes idle, which an alarm due at once never lets
    it do: the pause lets it draw and take keys (a key waits at most a budget and a step)."""
    def go(loop, _data=None) -> None:
        end = time.monotonic() + BUDGET
        while step(app):
            if time.monotonic() >= end:
                loop.set_alarm_in(PAUSE, go)
                return
    return go
