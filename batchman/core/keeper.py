"""What the daemon keeps from the tasks it changes, instead of a pass over every live task each
round (issue 18): plan.Room, daemon/inbatch.InBatch, intents.Asked, stagefiles.StagingFiles,
kept.Census, core/stagingwait.StagingWait.

Each is built from the live tasks when the daemon surveys them afresh (daemon/survey.py).
Between two such surveys the daemon changes only the tasks it decides. Before their decisions
apply it hands those to :meth:`Keepers.deciding` (what each keeper keeps of them, as they are
then: :meth:`Keeper.was`); once applied, :meth:`Keepers.changed` has each keeper take back what
it kept of them (:meth:`Keeper.forget`) and keep them as they are now, with the tasks appended
since (:meth:`Keeper.keep`). Tasks another writer changed come as new objects in the place of
the old ones (store/replays.py): :meth:`Keepers.replaced` forgets the old and keeps the new.
"""

from __future__ import annotations

from batchman.core.model import Task


class Keeper:
    notes = False       # whether forget() needs what was() kept of a task before it changed

    def was(self, t: Task) -> object:
        """What is kept of ``t`` before its decisions apply (by default: nothing to take back)."""
        return None

    def forget(self, before: list[tuple[Task, object]]) -> None:
        """Take back what was kept of the tasks (task, :meth:`was`) that changed."""

    def keep(self, tasks: list[Task]) -> None:
        """Keep ``tasks`` as they are now (changed ones, after :meth:`forget`, and new ones)."""
        raise NotImplementedError

    # A keeper used on its own (the tests) is a group of one.
    def deciding(self, tasks) -> None:
        self._alone().deciding(tasks)

    def changed(self, added=()) -> None:
        self._alone().changed(added)

    def _alone(self) -> "Keepers":
        group = self.__dict__.get("_group")
        if group is None:
            group = self._group = Keepers([self])
        return group


class Keepers:
    """Keepers handed the tasks decided once, not each: one pass notes what those that need it
    (:attr:`Keeper.notes`) keep of each task before its decisions apply (10,000 tasks a round
    at 1,000,000 tasks, some handed twice), instead of a pass and a dict of them per keeper."""

    def __init__(self, keepers) -> None:
        self.keepers: list[Keeper] = list(keepers)
        self.before: dict[int, tuple] = {}     # id -> (task, what each keeper that notes kept of it)
        self.decided: list[Task] = []          # handed to deciding since the last changed

    def add(self, keeper: Keeper) -> None:
        """One more keeper (between a :meth:`changed` and the next :meth:`deciding`)."""
        assert not self.before, "a keeper added while tasks are being decided"
        self.keepers.append(keeper)

    def deciding(self, tasks: list[Task]) -> None:
        """``tasks`` may change before the next :meth:`changed` (a task handed twice: its first)."""
        before, was = self.before, [k.was for k in self.keepers if k.notes]
        for t in tasks:
            if id(t) not in before:
                before[id(t)] = (t, *[w(t) for w in was])
        self.decided += tasks

    def replaced(self, pairs) -> None:
        """Each (old, new) of ``pairs``: ``new`` took the place of ``old``, a task kept (another
        writer's change, read from the change log: store/replays.py). What was kept of old is
        taken back, new is kept. Between a :meth:`changed` and the next :meth:`deciding`."""
        assert not self.before, "tasks replaced while others are being decided"
        old = [o for o, _ in pairs]
        for keeper in self.keepers:
            keeper.forget([(o, keeper.was(o)) for o in old])
        new = [n for _, n in pairs]
        for keeper in self.keepers:
            keeper.keep(new)

    def changed(self, added=()) -> list[Task]:
        """The tasks decided since :meth:`deciding` are kept as they are now; ``added``: new
        tasks. Returns the tasks decided (some maybe more than once)."""
        before, self.before = list(self.before.values()), {}
        tasks = [b[0] for b in before]
        nothing, j = None, 0
        for keeper in self.keepers:
            if keeper.notes:
                j += 1
                keeper.forget([(b[0], b[j]) for b in before])
            else:
                nothing = [(t, None) for t in tasks] if nothing is None else nothing
                keeper.forget(nothing)
        tasks += added
        for keeper in self.keepers:
            keeper.keep(tasks)
        decided, self.decided = self.decided, []
        return decided
