"""Everything the daemon keeps from the tasks it changes (core/keeper.py), as one: plan_budget's
room (plan.Room), the jobs in the batch system (inbatch.py), what people asked (intents.Asked),
the files staging is asked about (stagefiles.py), the live tasks' jobs and how many are new
(Census), the staging tasks by file (core/stagingwait.py). Built from the live tasks whenever the daemon surveys them afresh (engine._survey);
between two such surveys, kept from the tasks it decides."""

from __future__ import annotations

from collections import Counter
from operator import attrgetter

from batchman.core import plan as P
from batchman.core import states as S
from batchman.core.decide import Budget
from batchman.core.keeper import Keeper
from batchman.core.stagingwait import StagingWait
from batchman.core.model import Task
from batchman.daemon import intents
from batchman.daemon.inbatch import InBatch
from batchman.daemon.stagefiles import StagingFiles

_JOB, _STATE = attrgetter("job"), attrgetter("state")


class Census(Keeper):
    """How many live tasks each job has, and how many of them are new (whose segments observe
    looks for): what the command watch and observe's look for segments would otherwise find by a
    pass over every live task each round (432,000 at 1,000,000 tasks: ~25 and ~20 ms)."""

    def __init__(self, live: list[Task]):
        super().__init__()
        self.jobs: Counter = Counter(map(_JOB, live))       # ``live``: plan.live of the tasks
        self.new = list(map(_STATE, live)).count(S.NEW)

    def was(self, t: Task) -> tuple[str, bool] | None:
        return (t.job, t.state == S.NEW) if P.is_live(t) else None

    def forget(self, before) -> None:
        for _, was in before:
            if was is not None:
                self.jobs[was[0]] -= 1
                self.new -= was[1]

    def keep(self, tasks) -> None:
        for t in tasks:
            if P.is_live(t):
                self.jobs[t.job] += 1
                self.new += t.state == S.NEW

    def job_names(self) -> set[str]:
        """The jobs of the live tasks."""
        return {j for j, n in self.jobs.items() if n}


class Kept:
    """The keepers handed the tasks decided once, not each: one pass notes what the three that
    keep something of a task (Room, InBatch, Census: Keeper.was) keep of it before its decisions
    apply (10,000 tasks a round at 1,000,000 tasks, some handed twice), instead of a pass and a
    dict of them per keeper; the others keep nothing of a task before (Keeper.was: None)."""

    def __init__(self, live: list[Task]):
        """(``live``: plan.live of the tasks)"""
        self.room, self.inbatch = P.Room(live), InBatch(live)
        self.asked, self.waiting = intents.Asked(live), StagingFiles(live)
        self.census, self.staging = Census(live), None
        self.keepers = (self.room, self.inbatch, self.asked, self.waiting, self.census)
        self.before: dict[int, tuple] = {}   # id -> (task, what room, inbatch and census keep of it)
        self.decided: list[Task] = []       # handed to deciding since the last changed

    def deciding(self, tasks: list[Task]) -> None:
        """``tasks`` are about to change (decided): what is kept of them is counted again next survey."""
        before, room, inbatch, census = self.before, self.room, self.inbatch, self.census
        for t in tasks:
            if id(t) not in before:
                before[id(t)] = (t, room.was(t), inbatch.was(t), census.was(t))
        self.decided += tasks

    def changed(self, added: list[Task]) -> list[Task]:
        """The tasks decided since :meth:`deciding` are as they are now; ``added``: new tasks.
        Returns the tasks decided (some maybe more than once)."""
        before, self.before = list(self.before.values()), {}
        tasks = [b[0] for b in before]
        for j, keeper in enumerate((self.room, self.inbatch, self.census), 1):
            keeper.forget([(b[0], b[j]) for b in before])
        nothing = [(t, None) for t in tasks]
        for keeper in self.keepers:
            if keeper not in (self.room, self.inbatch, self.census):
                keeper.forget(nothing)
        tasks += added
        for keeper in self.keepers:
            keeper.keep(tasks)
        decided, self.decided = self.decided, []
        return decided

    def steady(self, live: list[Task]) -> None:
        """The daemon surveyed ``live`` without a pass over all tasks (none but it wrote since the
        last survey): what is worth keeping only over several such rounds is made now, at the first
        (StagingWait: ~0.15 s at 1,000,000 tasks, which a oneshot or a round after another writer
        would spend for one use)."""
        if self.staging is None:
            self.staging = StagingWait(live)
            self.keepers += (self.staging,)

    def check(self, live: list[Task]) -> None:
        """(BATCHMAN_STORE_CHECK, the tests) what is kept equals a count over ``live``."""
        assert self.room.budget() == Budget.of(live), (self.room.budget(), Budget.of(live))
        assert self.inbatch.same(InBatch(live)) and self.waiting.of == StagingFiles(live).of
        assert self.asked.now == intents.asked(live)
        assert self.census.job_names() == set(map(_JOB, live)) and self.census.new == sum(t.state == S.NEW for t in live)
        assert self.staging is None or self.staging.same(StagingWait(live))
