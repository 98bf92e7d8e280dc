"""Issue 18: the room plan_budget starts from (segments held in the cache, jobs in the batch
system by job name) is kept from the tasks that change (plan.Room) instead of counted over every
live task each iteration; over random sequences of changes it equals Budget.of the tasks."""

import random

import pytest

from batchman.core import plan as P
from batchman.core import states as S
from batchman.core.decide import Budget, Observations, Policy
from batchman.core.model import Segment, Task
from batchman.core.observed import StagingView


def task(rng: random.Random, run: int) -> Task:
    return Task(run=run, job=rng.choice(["a", "b", "c"]), state=rng.choice(S.ALL),
                segments=[Segment(f"/d/{run}.{i}") for i in range(rng.randint(0, 3))])


def change(rng: random.Random, t: Task) -> None:
    """What a decision or a recorded result may change of a task's room."""
    t.state = rng.choice(S.ALL)
    if rng.random() < 0.3:
        t.segments = [Segment(f"/d/{t.run}.{i}") for i in range(rng.randint(0, 3))]
    if rng.random() < 0.1:
        t.job = rng.choice(["a", "b", "c"])


@pytest.mark.parametrize("seed", range(300))
def test_the_room_kept_from_the_changes_is_the_room_counted(seed):
    rng = random.Random(seed)
    tasks = [task(rng, r) for r in range(rng.randint(0, 40))]
    room = P.Room(tasks)
    assert room.budget() == Budget.of(tasks)
    for _ in range(rng.randint(1, 12)):
        deciding = rng.sample(tasks, rng.randint(0, len(tasks))) if tasks else []
        room.deciding(deciding + deciding[: rng.randint(0, len(deciding))])   # a task decided twice (carried)
        room.deciding(deciding[:1])                                           # or in two calls
        for t in deciding:
            for _ in range(rng.randint(1, 2)):
                change(rng, t)
        added = [task(rng, 1000 + len(tasks) + i) for i in range(rng.randint(0, 3))]
        tasks += added
        room.changed(added)
        assert room.budget() == Budget.of(tasks)


def test_plan_budget_starts_from_the_room_it_is_given_not_from_a_count(monkeypatch):
    tasks = [Task(run=1, job="a", state=S.RUNNING, segments=[Segment("/d/1")]),
             Task(run=2, job="a", state=S.STAGED, segments=[Segment("/d/2"), Segment("/d/3")])]
    room = P.Room(tasks)
    monkeypatch.setattr(Budget, "of", classmethod(lambda cls, tasks: pytest.fail("counted")))
    obs = Observations(now=1.0, me="h:1", staging=StagingView(present={"/d/2", "/d/3"}))
    _, budget = P.plan_budget(tasks, obs, Policy(max_jobs=1), room=room)
    assert (budget.staged_segments, budget.jobs, budget.per_job) == (3, 1, {"a": 1})   # the cap: no submission
