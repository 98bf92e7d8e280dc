"""Issue 18: the tasks waiting for room are put in rank order by plan.in_rank_order (three sorts
with keys made in C) exactly as by one sort on plan._rank, ties kept in their order."""

import random

import pytest

from batchman.core import plan as P
from batchman.core.model import Task


@pytest.mark.parametrize("seed", range(200))
def test_in_rank_order_is_the_order_of_rank_with_ties_kept(seed):
    rng = random.Random(seed)
    tasks = [Task(run=rng.randint(1, 8), job=rng.choice(["a", "b", "c"]), priority=rng.choice([-1, 0, 0, 1, 5]))
             for _ in range(rng.randint(0, 80))]
    expected = sorted(tasks, key=P._rank)          # (stable: equal ranks in their order)
    got = list(tasks)
    P.in_rank_order(got)
    assert [id(t) for t in got] == [id(t) for t in expected]


@pytest.mark.parametrize("seed", range(300))
def test_plan_budget_decides_as_with_one_sort_on_rank(seed, monkeypatch):
    from tests.test_plan_live import copies, outcome, scenario
    tasks, obs, pol, rng = scenario(seed)
    for t in tasks:
        t.priority = rng.choice([0, 0, 1])         # ties of rank among the tasks waiting for room
    tokens = rng.choice([None, {"submit": 1, "stage": 2, "kill": 1}])
    fast = outcome(*P.plan_budget(P.live(copies(tasks)), obs, pol, None, tokens))
    monkeypatch.setattr(P, "in_rank_order", lambda ts: ts.sort(key=P._rank))
    one_sort = outcome(*P.plan_budget(P.live(copies(tasks)), obs, pol, None, tokens))
    assert fast == one_sort
