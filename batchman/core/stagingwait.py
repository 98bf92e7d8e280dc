"""The staging tasks that may change in a round, kept from the changes (issue 18).

decide._decide_staging leaves a staging task (without an intent or a request) alone when every
one of its files is in the staging queue, none on disk, failed or marked staged, and its
warning is the one its wait calls for (none, or the too-long-staging one after
staging.max_staging_time). At 1,000,000 tasks 50,000 tasks wait so in every round, each
decided to find nothing (~60 ms). :class:`StagingWait` keeps them by file, plus a heap of the
times at which their wait turns too long, so that a round decides only those whose files the
view shows changed, whose time came, and those always decided (no file, a file marked
staged) and those with a warning not due: :meth:`StagingWait.moving`. Kept like plan.Room (core/keeper.py).
"""

from __future__ import annotations

import heapq
import math
from operator import attrgetter

from batchman.core import states as S
from batchman.core.decide import Policy, staging_warning
from batchman.core.keeper import Keeper
from batchman.core.model import Task
from batchman.core.observed import StagingView

STAGING = S.STAGING
_PATH = attrgetter("path")


class StagingWait(Keeper):
    def __init__(self, tasks=()):
        self.kept: dict[int, tuple[Task, tuple[str, ...]]] = {}   # id -> (staging task, its files)
        self.files: dict[str, Task | list[Task]] = {}   # file -> the kept task waiting for it (a list: several)
        self.names: set[str] = set()               # its files, as a set (compared with the view's in C)
        self.always: dict[int, Task] = {}          # no file, or a file marked staged
        self.warned: dict[int, Task] = {}          # a warning (decided when it is not the one due)
        self.clock: list[tuple[float, int, Task]] = []   # (requested_at, id, task): a heap, stale entries left
        self.due: dict[int, Task] = {}             # taken off the heap: their wait turned too long
        self.keep(tasks)

    def forget(self, before) -> None:
        for t, _ in before:
            self._drop(t)

    def keep(self, tasks) -> None:
        kept, files, always, warned, drop = self.kept, self.files, self.always, self.warned, self._drop
        clock, names = [], []
        for t in tasks:
            if kept:
                drop(t)
            if t.state != STAGING:
                continue
            segs = t.segments
            paths = tuple(map(_PATH, segs))
            kept[id(t)] = (t, paths)
            staged = False
            for seg in segs:
                staged = staged or seg.staged
                ts = files.get(seg.path)
                if ts is None:
                    files[seg.path] = t
                elif type(ts) is list:
                    ts.append(t)
                else:
                    files[seg.path] = [ts, t]
            names += paths
            if staged or not paths:
                always[id(t)] = t
            elif t.warning:
                warned[id(t)] = t
            else:
                clock.append((_at(t), id(t), t))
        self.names.update(names)
        if len(clock) > 100:          # (the first ones: one heap made at once)
            self.clock += clock
            heapq.heapify(self.clock)
        else:
            for e in clock:
                heapq.heappush(self.clock, e)
        if len(self.clock) > 2 * len(kept) + 1000:    # (mostly stale entries: made again)
            self.clock = [e for e in self.clock if self._waits(e)]
            heapq.heapify(self.clock)

    def _drop(self, t: Task) -> None:
        k = self.kept.pop(id(t), None)
        if k is None or k[0] is not t:
            return
        for p in k[1]:
            ts = self.files[p]
            if ts is t:
                del self.files[p]
                self.names.discard(p)
            else:
                ts.remove(t)
                if len(ts) == 1:
                    self.files[p] = ts[0]
        self.always.pop(id(t), None)
        self.warned.pop(id(t), None)
        self.due.pop(id(t), None)

    def _waits(self, entry: tuple[float, int, Task]) -> bool:
        """A heap entry of a task kept as it was then (not changed since)."""
        r, i, t = entry
        k = self.kept.get(i)
        return k is not None and k[0] is t and i not in self.always and i not in self.warned and _at(t) == r

    def same(self, other: "StagingWait") -> bool:
        """(the tests) the same tasks kept, by file, always looked at, or waiting for their time."""
        def waiting(w):
            return {e[1] for e in w.clock if w._waits(e)} | w.due.keys()
        return (self.kept.keys() == other.kept.keys() and self.always.keys() == other.always.keys()
                and self.warned.keys() == other.warned.keys() and self.names == other.names
                and _by_file(self.files) == _by_file(other.files)
                and waiting(self) == waiting(other))

    def moving(self, view: StagingView | None, pol: Policy, now: float) -> set[int] | None:
        """The ids of the kept tasks decide_task may change (None: all of them may)."""
        if view is None:
            return set()                # _decide_staging waits for a view
        if pol.max_staging_time < 0:
            return None                 # (a wait of 0 s would be too long: every task has a warning due)
        out = set(self.always)
        out.update(i for i, t in self.warned.items() if pol.verify_queue or t.warning != staging_warning(t, pol, now))
        files = self.names
        odd = set() if files <= view.pending else files - view.pending     # (all of them, mostly)
        odd |= files & view.present
        odd |= view.failed.keys() & files
        for p in odd:
            ts = self.files[p]
            out.update(map(id, ts)) if type(ts) is list else out.add(id(ts))
        if not pol.verify_queue:
            clock = self.clock
            while clock and now - clock[0][0] > pol.max_staging_time:
                e = heapq.heappop(clock)
                if self._waits(e):
                    self.due[e[1]] = e[2]
            out.update(self.due)
        return out


def _at(t: Task) -> float:
    """When its request went (a task without one waits 0 s: never too long)."""
    return math.inf if t.requested_at is None else t.requested_at


def _by_file(files: dict) -> dict[str, set[int]]:
    return {p: set(map(id, ts)) if type(ts) is list else {id(ts)} for p, ts in files.items()}
