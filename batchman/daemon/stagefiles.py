"""The files the staging system is asked about, kept from the changes (issue 18).

Observing asks the staging system about the files of every live task that waits for or holds
them (unstaged, staging, staged: 100,000 tasks at 1,000,000), and picking them out of every
live task each round cost ~60 ms there. The daemon changes few of them in a round, so
:class:`StagingFiles` keeps them: from the live tasks when the daemon surveys them afresh, and
otherwise from the tasks it decided (:meth:`deciding`, then :meth:`changed`) and those
appended, like plan.Room and daemon/inbatch.InBatch. The list is in no particular order: the
staging system's answer (a StagingView) is sets of files.
"""

from __future__ import annotations

from itertools import chain

from batchman.core import states as S
from batchman.core.keeper import Keeper
from batchman.core.model import Task

WAITS = frozenset({S.UNSTAGED, S.STAGING, S.STAGED})     # the states whose files the staging system is asked about


def _files(t: Task) -> tuple[str, ...] | None:
    return tuple(s.path for s in t.segments) if t.state in WAITS and t.segments else None


class StagingFiles(Keeper):
    def __init__(self, tasks: list[Task] = ()):
        # (_files written out: a call for each of the 430,000 live tasks at 1,000,000 cost ~70 ms)
        waits = WAITS
        self.of: dict[int, tuple[str, ...]] = {id(t): tuple(s.path for s in t.segments)
                                               for t in tasks if t.state in waits and t.segments}

    def forget(self, before) -> None:
        for t, _ in before:         # (a task replaced by another object: its id goes)
            self.of.pop(id(t), None)

    def keep(self, tasks) -> None:
        for t in tasks:
            f = _files(t)
            if f:
                self.of[id(t)] = f
            else:
                self.of.pop(id(t), None)

    def files(self) -> list[str]:
        """Every kept task's files (a task's in its order)."""
        return list(chain.from_iterable(self.of.values()))
