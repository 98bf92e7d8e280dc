"""Everything the daemon keeps from the tasks it changes (core/keeper.py), as one: plan_budget's
room (plan.Room), the jobs in the batch system (inbatch.py), what people asked (intents.Asked),
the files staging is asked about (stagefiles.py). Built from the live tasks whenever the daemon
surveys them afresh (engine._survey); between two such surveys, kept from the tasks it decides."""

from __future__ import annotations

from batchman.core import plan as P
from batchman.core.decide import Budget
from batchman.core.model import Task
from batchman.daemon import intents
from batchman.daemon.inbatch import InBatch
from batchman.daemon.stagefiles import StagingFiles


class Kept:
    def __init__(self, live: list[Task]):
        self.room, self.inbatch = P.Room(live), InBatch(live)
        self.asked, self.waiting = intents.Asked(live), StagingFiles(live)
        self.keepers = (self.room, self.inbatch, self.asked, self.waiting)
        self.decided: list[Task] = []       # handed to deciding since the last changed

    def deciding(self, tasks: list[Task]) -> None:
        """``tasks`` are about to change (decided): what is kept of them is counted again next survey."""
        for keeper in self.keepers:
            keeper.deciding(tasks)
        self.decided += tasks

    def changed(self, added: list[Task]) -> list[Task]:
        """The tasks decided since :meth:`deciding` are as they are now; ``added``: new tasks.
        Returns the tasks decided (some maybe more than once)."""
        for keeper in self.keepers:
            keeper.changed(added)
        decided, self.decided = self.decided, []
        return decided

    def check(self, live: list[Task]) -> None:
        """(BATCHMAN_STORE_CHECK, the tests) what is kept equals a count over ``live``."""
        assert self.room.budget() == Budget.of(live), (self.room.budget(), Budget.of(live))
        assert self.inbatch.same(InBatch(live)) and self.waiting.of == StagingFiles(live).of
        assert self.asked.now == intents.asked(live)
