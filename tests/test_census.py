"""Issue 18: the jobs of the live tasks (the command watch) and how many of them are new
(observe's look for segments) are kept from the tasks the daemon changes (daemon/kept.Census)
instead of found by a pass over every live task each round; over random sequences of changes
they are what a fresh look finds, and the command watch hands on the same problems with them."""

import random

import pytest

from batchman.core import plan as P
from batchman.core import states as S
from batchman.core.model import Intent, Task
from batchman.daemon.command_watch import CommandWatch
from batchman.daemon.kept import Census

from keeper_helpers import rounds
from test_command_watch import Engine


def task(rng: random.Random, run: int) -> Task:
    t = Task(run=run, job=rng.choice(["a", "b", "c"]))
    change(rng, t)
    return t


def change(rng: random.Random, t: Task) -> None:
    """What a decision may change: the state (settled or not), the request, the intent."""
    t.state = rng.choice(S.ALL + (S.NEW, S.COMPLETED))
    if rng.random() < 0.3:
        t.request = rng.choice(["", "", "restart"])
    if rng.random() < 0.3:
        t.intent = rng.choice([None, None, Intent(actions=["release"], owner="m", at=0.0)])


@pytest.mark.parametrize("seed", range(300))
def test_the_jobs_and_new_tasks_kept_are_those_of_the_live_tasks(seed):
    for tasks, kept in rounds(seed, lambda ts: Census(P.live(ts)), task, change):
        live = P.live(tasks)
        assert kept.job_names() == {t.job for t in live}
        assert kept.new == sum(t.state == S.NEW for t in live)


@pytest.mark.parametrize("seed", range(50))
def test_the_command_watch_hands_on_the_same_problems_with_the_kept_jobs(seed):
    rng = random.Random(seed)
    live = P.live([task(rng, r) for r in range(rng.randint(0, 30))])
    missing = set(rng.sample(["a", "b", "c"], rng.randint(0, 3)))
    kept, fresh = Engine(missing), Engine(missing)
    assert CommandWatch().check(kept, live, Census(live).job_names()) == CommandWatch().check(fresh, live)
    assert kept.said == fresh.said
