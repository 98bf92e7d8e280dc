"""Everything the daemon keeps from the tasks it changes (core/keeper.py), as one: plan_budget's
room (plan.Room), the jobs in the batch system (inbatch.py), what people asked (intents.Asked),
the files staging is asked about (stagefiles.py), the live tasks' jobs and how many are new
(Census), the staging tasks by file (core/stagingwait.py). Built from the live tasks whenever the
daemon surveys them afresh; between two such surveys, kept from the tasks it decides and those
another writer replaced (daemon/survey.py)."""

from __future__ import annotations

from collections import Counter
from operator import attrgetter

from batchman.core import plan as P
from batchman.core import states as S
from batchman.core.decide import Budget
from batchman.core.keeper import Keeper, Keepers
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
    notes = True

    def __init__(self, live: list[Task]):
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


class Kept(Keepers):
    """The daemon's keepers, as one group (core/keeper.Keepers)."""

    def __init__(self, live: list[Task]):
        """(``live``: plan.live of the tasks)"""
        self.room, self.inbatch = P.Room(live), InBatch(live)
        self.asked, self.waiting = intents.Asked(live), StagingFiles(live)
        self.census, self.staging = Census(live), None
        super().__init__((self.room, self.inbatch, self.asked, self.waiting, self.census))

    def steady(self, live: list[Task]) -> None:
        """The daemon surveyed ``live`` without a pass over all tasks (none but it wrote since the
        last survey): what is worth keeping only over several such rounds is made now, at the first
        (StagingWait: ~0.15 s at 1,000,000 tasks, which a oneshot or a round after another writer
        would spend for one use)."""
        if self.staging is None:
            self.staging = StagingWait(live)
            self.add(self.staging)

    def check(self, live: list[Task]) -> None:
        """(BATCHMAN_STORE_CHECK, the tests) what is kept equals a count over ``live``."""
        assert self.room.budget() == Budget.of(live), (self.room.budget(), Budget.of(live))
        assert self.inbatch.same(InBatch(live)) and self.waiting.of == StagingFiles(live).of
        assert self.asked.now == intents.asked(live)
        assert self.census.job_names() == set(map(_JOB, live)) and self.census.new == sum(t.state == S.NEW for t in live)
        assert self.staging is None or self.staging.same(StagingWait(live))
