"""Issue 18: plan_budget stops deciding unstaged tasks one by one once no staging request is
possible any more in the iteration (core/plan._stage_closed): over random task sets, views,
caps and token counts the decisions and the budget are those of deciding every one of them."""

import random

import msgspec
import pytest

from batchman.core import decide as D
from batchman.core import plan as P
from batchman.core import states as S
from batchman.core.decide import Observations, Policy
from batchman.core.model import Segment, Task
from batchman.core.observed import StagingView

NOW = 50_000.0


def scenario(seed: int):
    rng = random.Random(seed)
    tasks = []
    for run in range(rng.randint(1, 40)):
        state = rng.choice([S.UNSTAGED, S.UNSTAGED, S.UNSTAGED, S.STAGING, S.STAGED, S.NEW, S.RUNNING])
        segs = [Segment(f"/d/{run}.{i}", rng.random() < 0.2) for i in range(rng.choice([0, 1, 1, 2, 3]))]
        tasks.append(Task(run=run, job=rng.choice(["a", "b"]), state=state, priority=rng.randint(0, 2),
                          segments=segs, requested_at=NOW - 10, reason=rng.choice(["", "x"]),
                          held=rng.random() < 0.05, request=rng.choice(["", "", "", "", "", "kill"])))
    paths = [s.path for t in tasks for s in t.segments]
    present = {p for p in paths if rng.random() < 0.1} if rng.random() < 0.3 else set()
    view = None if rng.random() < 0.1 else StagingView(present=present, pending={p for p in paths if p not in present})
    obs = Observations(now=NOW, me="h:1", live_daemons=frozenset({"h:1"}), staging=view,
                       paused=rng.random() < 0.05, cache_full=rng.random() < 0.1,
                       unsubmittable_jobs={"a": "no command"} if rng.random() < 0.15 else {})
    pol = Policy(staging_limit=rng.choice([3, 6, 10 ** 9]), max_jobs=10 ** 9,
                 max_stage_per_iteration=rng.choice([0, 1, 3]))
    tokens = rng.choice([None, {}, {"stage": 0}, {"stage": 1}, {"stage": 2, "submit": 1}])
    return tasks, obs, pol, tokens


def copies(tasks):
    return [msgspec.structs.replace(t, segments=[msgspec.structs.replace(s) for s in t.segments]) for t in tasks]


def outcome(decisions, budget):
    return [(t.key, d) for t, d in decisions], budget


@pytest.mark.parametrize("seed", range(500))
def test_skipping_unstaged_tasks_once_staging_is_closed_decides_as_every_task(seed, monkeypatch):
    tasks, obs, pol, tokens = scenario(seed)
    fast = outcome(*P.plan_budget(copies(tasks), obs, pol, None, tokens))
    monkeypatch.setattr(P, "_stage_closed", lambda budget, pol: False)
    every = outcome(*P.plan_budget(copies(tasks), obs, pol, None, tokens))
    assert fast == every


def test_unstaged_tasks_are_not_decided_once_the_staging_tokens_are_spent(monkeypatch):
    tasks = [Task(run=r, job="a", state=S.UNSTAGED, segments=[Segment(f"/d/{r}")]) for r in range(100)]
    obs = Observations(now=NOW, me="h:1", staging=StagingView(pending={f"/d/{r}" for r in range(100)}))
    calls = []
    real = D.decide_task
    monkeypatch.setattr(P, "decide_task", lambda t, *a: calls.append(t.run) or real(t, *a))
    decisions, budget = P.plan_budget(tasks, obs, Policy(staging_limit=10 ** 9), None, {"stage": 2})
    assert [t.run for t, _ in decisions] == [0, 1] and budget.held == {"stage"}
    assert calls == [0, 1, 2]       # the third finds the bucket empty; the other 97 are not asked


def test_staging_found_closed_is_not_looked_at_again(monkeypatch):
    """What is spent only grows: once closed, closed for the rest of the waiting tasks (50,000
    at 1,000,000 tasks), without a call for each."""
    tasks = [Task(run=r, job="a", state=S.UNSTAGED, segments=[Segment(f"/d/{r}")]) for r in range(100)]
    obs = Observations(now=NOW, me="h:1", staging=StagingView(pending={f"/d/{r}" for r in range(100)}))
    answers, real = [], P._stage_closed
    monkeypatch.setattr(P, "_stage_closed", lambda budget, pol: answers.append(real(budget, pol)) or answers[-1])
    decisions, _ = P.plan_budget(tasks, obs, Policy(staging_limit=10 ** 9), None, {"stage": 2})
    assert [t.run for t, _ in decisions] == [0, 1] and answers.count(True) == 1



def look_in_four_passes(task, view):
    """What decide._staging_look returns, as _decide_staging computed it before (the spec)."""
    failed = [s.path for s in task.segments if s.path in view.failed]
    on_disk = all(s.path in view.present for s in task.segments)
    missing = [s.path for s in task.segments if s.path not in view.present and s.path not in view.pending]
    moved = any(s.staged != (s.path in view.present) for s in task.segments)
    return (failed[0] if failed else None), on_disk, missing, moved


@pytest.mark.parametrize("seed", range(300))
def test_a_staging_tasks_segments_looked_at_in_one_pass_say_what_four_passes_said(seed):
    rng = random.Random(seed)
    paths = [f"/d/{i}" for i in range(6)]
    view = StagingView(present={p for p in paths if rng.random() < 0.4}, pending={p for p in paths if rng.random() < 0.5},
                       failed={p: "lost" for p in paths if rng.random() < 0.1})
    for k in range(20):
        task = Task(run=k, state=S.STAGING,
                    segments=[Segment(p, rng.random() < 0.5) for p in rng.sample(paths, rng.randint(0, 3))])
        assert D._staging_look(task, view) == look_in_four_passes(task, view), task
