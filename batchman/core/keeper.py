"""What the daemon keeps from the tasks it changes, instead of a pass over every live task each
round (issue 18): plan.Room, daemon/inbatch.InBatch, intents.Asked, stagefiles.StagingFiles.

Each is built from the live tasks when the daemon surveys them afresh (daemon/engine._survey);
between two such surveys only this daemon changes the tasks, and only the ones it decides. Before
their decisions apply it hands those to :meth:`Keeper.deciding` (what is kept of each, as it is
then: :meth:`Keeper.was`); once applied, :meth:`Keeper.changed` takes back what was kept of them
(:meth:`Keeper.forget`) and keeps them as they are now, with the tasks appended since
(:meth:`Keeper.keep`).
"""

from __future__ import annotations

from batchman.core.model import Task


class Keeper:
    def __init__(self) -> None:
        self.before: dict[int, tuple[Task, object]] = {}    # id -> (task, what was kept of it)

    def was(self, t: Task) -> object:
        """What is kept of ``t`` before its decisions apply (by default: nothing to take back)."""
        return None

    def deciding(self, tasks) -> None:
        """``tasks`` may change before the next :meth:`changed` (a task handed twice: its first)."""
        before, was = self.before, self.was
        for t in tasks:
            if id(t) not in before:
                before[id(t)] = (t, was(t))

    def changed(self, added=()) -> None:
        """The tasks handed to :meth:`deciding` are kept as they are now; ``added``: new tasks."""
        before, self.before = list(self.before.values()), {}
        self.forget(before)
        self.keep([t for t, _ in before] + list(added))

    def forget(self, before: list[tuple[Task, object]]) -> None:
        """Take back what was kept of the tasks (task, :meth:`was`) that changed."""

    def keep(self, tasks: list[Task]) -> None:
        """Keep ``tasks`` as they are now (changed ones, after :meth:`forget`, and new ones)."""
        raise NotImplementedError
