"""Issue 18: the staging tasks decided in a round are only those core/stagingwait.StagingWait
says may move (a file the view shows on disk, failed or not queued, a file marked staged, no
file, a warning, a wait turned too long), kept from the tasks the daemon changes; over random
rounds of changes, views and clocks, every other staging task is one decide_task leaves alone,
and plan_budget decides as without it."""

import random

import pytest

from batchman.core import plan as P
from batchman.core import states as S
from batchman.core.decide import Budget, Policy, decide_task
from batchman.core.model import Intent, Segment, Task
from batchman.core.observed import StagingView
from batchman.core.stagingwait import StagingWait

from keeper_helpers import rounds
from test_plan_live import ME, NOW, copies, outcome, scenario

WARN = "staging for more than 100 s: check the staging system"


def task(rng: random.Random, run: int) -> Task:
    t = Task(run=run)
    change(rng, t)
    return t


def change(rng: random.Random, t: Task) -> None:
    """What a decision may change of a task that stages: the state, the flags, the warning..."""
    t.state = rng.choice([S.STAGING, S.STAGING, S.STAGING, S.UNSTAGED, S.STAGED, S.RUNNING])
    if rng.random() < 0.5:
        t.segments = [Segment(f"/d/{rng.randint(0, 30)}", rng.random() < 0.15) for _ in range(rng.randint(0, 3))]
    t.requested_at = rng.choice([None, 0.0, NOW - 1000, NOW - 150, NOW - 50, NOW - 5])
    t.warning = rng.choice(["", "", "", WARN, "other"])
    t.request = rng.choice(["", "", "", "", "kill"])
    t.intent = rng.choice([None] * 5 + [Intent(actions=["stage"], owner=ME, at=NOW)])


def view(rng: random.Random, tasks: list[Task]) -> StagingView | None:
    paths = {s.path for t in tasks for s in t.segments}
    if rng.random() < 0.1:
        return None
    pending = {p for p in paths if rng.random() < 0.9}
    return StagingView(present={p for p in paths if rng.random() < 0.05}, pending=pending,
                       failed={p: "lost" for p in paths if rng.random() < 0.03})


def policy(rng: random.Random) -> Policy:
    return Policy(verify_queue=rng.random() < 0.3, max_staging_time=rng.choice([100.0, 1000.0]), awol_grace=300.0)


@pytest.mark.parametrize("seed", range(300))
def test_a_staging_task_not_said_to_move_is_left_alone(seed):
    rng = random.Random(seed + 7000)
    now = NOW
    for tasks, kept in rounds(seed, StagingWait, task, change):
        assert kept.same(StagingWait(tasks))
        now += rng.choice([0, 10, 60, 200])           # time passes: waits turn too long
        pol, v = policy(rng), view(rng, tasks)
        moved = kept.moving(v, pol, now)
        obs = P.Observations(now=now, me=ME, staging=v)
        for t in tasks:
            if t.state == S.STAGING and id(t) not in moved:
                assert decide_task(t, obs, pol, Budget()) is None or t.intent is not None or t.request, t


def test_a_wait_that_turns_too_long_is_decided_when_it_does():
    """No file moved, nothing changed: the task is decided the round its wait passes
    staging.max_staging_time, and gets its warning then."""
    t = Task(run=1, state=S.STAGING, segments=[Segment("/d/1")], requested_at=NOW)
    kept, v, pol = StagingWait([t]), StagingView(pending={"/d/1"}), Policy(verify_queue=False, max_staging_time=100.0)
    assert kept.moving(v, pol, NOW + 100) == set()
    assert kept.moving(v, pol, NOW + 101) == {id(t)}
    obs = P.Observations(now=NOW + 101, me=ME, staging=v)
    assert decide_task(t, obs, pol, Budget()).updates == {"warning": WARN}
    assert kept.moving(v, pol, NOW + 102) == {id(t)}     # not decided (another daemon's task): still due
    kept.deciding([t])
    t.warning = WARN
    kept.changed()
    assert kept.moving(v, pol, NOW + 103) == set()       # warned: quiet again


@pytest.mark.parametrize("seed", range(300))
def test_plan_budget_decides_as_without_it(seed):
    tasks, obs, pol, rng = scenario(seed)
    live = P.live(copies(tasks))
    obs.staging_moved = StagingWait(live).moving(obs.staging, pol, obs.now)
    fast = outcome(*P.plan_budget(live, obs, pol))
    obs.staging_moved = None
    assert fast == outcome(*P.plan_budget(P.live(copies(tasks)), obs, pol))
