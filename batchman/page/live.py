"""The status page kept by one process across its writes (the daemon's, above all).

``LivePage`` holds a ``Tally`` in step with the tasks, so a write costs the tasks that
changed, not all of them; and it remembers what its last page showed, so a write that
changed nothing the page shows is not rendered again at all.

What keeps the page honest when a render is skipped: the page's age. Its ``data-written``
(which the page's script compares with the reader's clock to raise "page not updated for
N min: is the daemon running?") and the heartbeat it shows are those of the last render,
so a render is never skipped when the last one is older than ``max_age`` (by default a
third of the time after which a daemon counts as gone, and at most the reload period). A
living daemon thus rewrites its page well before any reader could call it stale, and a dead
one stops rewriting it, exactly as before. Everything else the page shows is in the
fingerprint: the tally's version (any task moved), every field of the tasks shown one by one
(listed rows, bulk rows, retried ones: a counter reported or a kill requested shows), the
daemons by identity, the health lines, the pause, the parameter problem, unknown jobs, the
last round's errors and whether the heartbeat was already stale (the red line drawn
without scripts).

As a safety net against a change that keeps a task's state and ``since`` (a person editing
a dataset by hand), every task is compared with the tally in every field it counts by every
``rebuild_after`` seconds (``Tally.unlike``), and those found are counted again: what
rebuilding it from scratch found, in ~0.4 s at 1,000,000 tasks instead of ~1.8 s.

A new process takes the tally the last one saved (``saved``: ``status.json.tally``, see
batchman.page.saved: the same store, a generation not after this one) instead of counting
every task again; one checked more than ``rebuild_after`` ago gets the periodic comparison
at once. A process saves its tally once it has counted it afresh (its first page without a
saved one), and when a periodic comparison finds it moved over 1 % of the tasks since it was
saved (each process that takes it moves those again). When the saved tally
is of the generation this process read, or of a later one it read from the change log, what
changed since is among what the store hands over (the tasks the log's records replaced and
those this process wrote in place, since the file it read): the tally takes the process's list
for the one it counted, as its own tally would, and no task is compared field by field.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import msgspec

from batchman.core.model import Status
from batchman.page import html as H, saved as SV, summary as SM, timeline
from batchman.page.tally import Tally
from batchman.util import files

_encode = msgspec.json.Encoder().encode
CHECK = bool(os.environ.get("BATCHMAN_STORE_CHECK"))     # (the tests: every page's tally checked)


def shown(status: Status, tally: Tally, full: list, hb: tuple) -> tuple:
    """What the page shows besides the clock: equal tuples, equal pages. ``full``: the tasks
    shown one by one (all their fields count: a counter reported, a kill requested); ``hb``:
    the daemon line (SM.heartbeat)."""
    li = status.last_iteration
    return (status.store_id, status.experiment, tally.version, tally.n, hash(_encode(full)),
            tuple(sorted((d.id, d.host, d.pid) for d in status.daemons)),
            hb[:2],
            status.paused, status.paused_by, status.params_problem, status.params_problem_since,
            status.batch_unreachable_since, status.batch_next_try, status.batch_last_error,
            status.batch_last_error_at, status.staging_unreachable_since,
            tuple((u.name, u.job_id, u.state) for u in status.unknown),
            tuple(li.errors) if li is not None else ())


class LivePage:
    """``page(status)`` -> the page in pieces, or None when it would show the same as the last."""

    def __init__(self, stale_after: float = 300.0, refresh: int = 60, title: str = "", journal: str = "",
                 max_age: float | None = None, rebuild_after: float = 600.0,
                 clock: Callable[[], float] = time.time, saved: str = "") -> None:
        self.stale_after, self.refresh, self.title, self.journal = stale_after, refresh, title, journal
        self.max_age = max_age if max_age is not None else max(1.0, min(float(refresh), stale_after / 3))
        self.rebuild_after, self.clock = rebuild_after, clock
        self.saved = saved              # the tally's file ("": none)
        self.job_order: tuple[str, ...] = ()    # batchman.yaml's jobs: the order of a run's rows
        self._fresh = False             # to be saved: counted afresh, or moved over 1 % since it was saved
        self._taken: int | None = None  # the generation of the saved tally taken
        self._saved_version = 0         # the tally's version when it was saved or taken (tasks moved since: the difference)
        self._status: Status | None = None  # the status of the last page
        # A daemon's loop sets this: the periodic recount then waits for ``tend`` between its rounds
        # (as the change log's compaction does) instead of lengthening the round it falls in.
        self.between_rounds = False
        self.tally = Tally()
        self._built = self._written = float("-inf")
        self._shown: tuple | None = None
        self.skipped = 0

    takes_touched = True        # the store hands over the tasks its writes changed (batchman.store)

    def __call__(self, status: Status, changed=None, touched=None, origin: int | None = None,
                 base: list | None = None) -> list[str] | None:
        """The page of ``status``, or None if the last one shows the same and is recent.

        ``changed``: positions in ``status.tasks`` known to have changed since the last call
        (the caller's change tracking); without it they are found by comparison. ``touched``:
        the tasks the store's writes changed in place or appended since its last page, or since
        its list of tasks was read as generation ``origin`` (a saved tally of that generation
        is then brought up to date with them alone); ``base``: the list they are of, when another
        writer's changes read from the change log made ``status.tasks`` of it, position by
        position (store/replays.py), and not the list itself.
        """
        now = self.clock()
        check = False
        if self._built == float("-inf") and self.saved and (head := self._take_saved(status)) is not None:
            changed = None      # (found by comparison: the caller's word is about its own last call)
            if not SV.recent(head, now, self.rebuild_after):
                check, changed = True, []       # (the periodic recount due: every task compared below,
                                                # in this first page even between rounds: it must be right)
                self.tally.adopt(status.tasks)
            elif touched is not None and origin is not None and origin <= self._taken:
                self.tally.adopt(status.tasks)      # (touched since origin: also since the tally's generation)
        elif self._built == float("-inf"):
            self.tally, self._built, changed, self._fresh = Tally(), now, None, True    # (counted afresh)
        elif self._due(now) and not self.between_rounds:
            check = True
        self.tally.sync(status.tasks, changed, touched, base)
        self._status = status
        if check:
            self._check(status.tasks, now)
        if CHECK and touched is not None:
            assert not self.tally.behind(status.tasks), "the page's tally missed a change"
        out = self._render(status, now)
        if self._fresh and self.saved:
            self._save(status)      # (after the render: with the ranges texts it made)
        return out

    def _due(self, now: float) -> bool:
        """Is the periodic recount due (the tally last counted or compared in full too long ago)?"""
        return now - self._built > self.rebuild_after

    def _check(self, tasks: list, now: float) -> None:
        """The periodic recount: every task compared with the tally in every field it counts by,
        what a recount would count otherwise (~0.4 s at 1,000,000 tasks against ~1.8 s to count
        them and ~0.5 s to save them). Saved again once it moved over 1 % of the tasks since it
        was saved (what moving them costs each process that takes it after)."""
        missed = self.tally.unlike(tasks)
        if missed:
            self.tally.sync(tasks, missed)
        self._built = now
        self._fresh = (self.tally.version - self._saved_version) * 100 > len(tasks)

    def tend(self) -> bool:
        """Between a daemon's rounds (``between_rounds``): the periodic recount when it is due,
        on the tasks of the last page, and the save it calls for; what it found shows on the
        next page. Returns whether it was due."""
        status, now = self._status, self.clock()
        if status is None or not self._due(now):
            return False
        self._check(status.tasks, now)
        if self._fresh and self.saved:
            self._save(status)
        return True

    def _render(self, status: Status, now: float) -> list[str] | None:
        listed, full = H.one_by_one(self.tally, status.tasks)
        hb = SM.heartbeat(status, now, self.stale_after, self.tally.progress(now))     # (once a render)
        what = shown(status, self.tally, full, hb)
        if what == self._shown and now - self._written < self.max_age:
            self.skipped += 1
            return None
        deltas = timeline.load(self.journal, status.store_id, status.generation) if self.journal else {}
        out = H.parts(status, self.tally, now, self.stale_after, self.refresh, self.title, deltas, listed, hb,
                      self.job_order)
        self._shown, self._written = what, now
        return out

    def unwritten(self) -> None:
        """The last page rendered did not reach the disk (store.publish_html): the next is not skipped."""
        self._shown = None

    def _take_saved(self, status: Status) -> SV.Head | None:
        """Take the saved tally if it may be brought up to date to ``status``; its identity line,
        or None when it was not taken."""
        try:
            with open(self.saved, "rb") as f:
                data = f.read()
        except OSError:
            return None
        head = SV.head_of(data)
        if not SV.usable(head, status.store_id, status.generation, len(status.tasks)):
            return None
        box = [data]
        del data            # (the file's bytes freed once decoded, not held beside the tally)
        tally = SV.load(box)
        if tally is None:
            return None
        self.tally, self._built, self._taken, self._saved_version = tally, head.built, head.generation, tally.version
        return head

    def _save(self, status: Status) -> None:
        """Save the tally (just brought to ``status``) for the next process; a cache: a failure
        to write it costs that process a count, nothing else."""
        try:
            files.atomic_write(self.saved, SV.pieces(self.tally, status.store_id, status.generation, self._built),
                               sync=False)
            self._fresh, self._saved_version = False, self.tally.version
        except OSError:
            pass
