"""Issue 18: an iteration decides over plan.live(tasks) and skips the tasks plan._changing says
decide_task leaves alone; over randomised task sets and observations, the decisions and the
budget are the same as deciding every task."""

import random

import msgspec
import pytest

from batchman.core import plan as P
from batchman.core import states as S
from batchman.core.decide import Budget, Marker, Observations, Policy, decide_task
from batchman.core.model import Intent, Segment, Task
from batchman.core.observed import ABSENT, FINISHED, QUEUED, RUNNING, JobInfo, StagingView

NOW = 50_000.0
ME, OTHER = "host:1", "host:2"
REQUESTS = ["", "", "", "", "kill", "restart", "purge", "skip", "bogus"]
ACTIONS = ["stage", "release", "cancel_stage", "submit", "cancel"]


def random_task(rng: random.Random, run: int) -> Task:
    state = rng.choice(S.ALL)
    t = Task(run=run, job=rng.choice(["a", "b"]), state=state, since=NOW - rng.uniform(0, 1000),
             reason=rng.choice(["", "x"]), priority=rng.randint(0, 2),
             segments=[Segment(f"/d/{run}.{i}", rng.random() < 0.5) for i in range(rng.randint(0, 3))],
             request=rng.choice(REQUESTS), held=rng.random() < 0.1, attempt=rng.randint(0, 2),
             requested_at=rng.choice([None, NOW - 500]), submitted_at=rng.choice([None, NOW - 5000, NOW - 5]))
    if rng.random() < 0.15:
        t.intent = Intent(actions=rng.sample(ACTIONS, rng.randint(1, 2)), owner=rng.choice([ME, OTHER]),
                          at=NOW - rng.uniform(0, 100))
    if state in S.IN_BATCH or state in S.TERMINAL:
        t.job_name = rng.choice(["", f"bm.s.{run}.{t.job}.{t.attempt}"])
        t.job_id = rng.choice(["", str(1000 + run)])
        t.native_state = rng.choice(["", "Priority"])
    if state in (S.FAILED, S.INCOMPLETE, S.ERROR):
        t.failure = rng.choice(["exit-nonzero", "timeout", "out-of-memory", "submit-rejected", "vanished"])
        t.exit_code = rng.choice([None, 1, 137])
        t.auto_restarts = rng.randint(0, 3)
    return t


def random_obs(rng: random.Random, tasks: list[Task]) -> Observations:
    names = [t.job_name for t in tasks if t.job_name]
    markers = {n: Marker(started=NOW - 100, exit_code=rng.choice([None, 0, 1, 143]))
               for n in names if rng.random() < 0.2}
    jobs = None
    if rng.random() < 0.8:
        jobs = {}
        for n in names:
            if rng.random() < 0.7:
                st = rng.choice([QUEUED, QUEUED, RUNNING, RUNNING, FINISHED, ABSENT])
                t = next(t for t in tasks if t.job_name == n)
                jid = rng.choice([t.job_id, t.job_id, "", "999"])
                jobs[n] = JobInfo(n, jid, st, reason=rng.choice(["", "Priority"]),
                                  exit_code=rng.choice([0, 1]) if st == FINISHED else None)
    paths = [s.path for t in tasks for s in t.segments]
    staging = None if rng.random() < 0.2 else StagingView(
        present={p for p in paths if rng.random() < 0.4}, pending={p for p in paths if rng.random() < 0.4},
        failed={p: "lost" for p in paths if rng.random() < 0.05})
    segments = {t.key: ([f"/d/{t.run}.n"] if rng.random() < 0.8 else [], "/d/*")
                for t in tasks if t.state == S.NEW and rng.random() < 0.7}
    return Observations(now=NOW, me=ME, live_daemons=frozenset({ME} | ({OTHER} if rng.random() < 0.5 else set())),
                        markers=markers, jobs=jobs, staging=staging, segments=segments,
                        taken=rng.choice([None, NOW - 50]), paused=rng.random() < 0.1)


def policy(rng: random.Random) -> Policy:
    return Policy(staging_limit=rng.choice([2, 5, 100]), max_jobs=rng.choice([3, 10, 200]),
                  auto_restart_failed=rng.random() < 0.5, max_kill_per_iteration=rng.choice([0, 1]),
                  max_submit_per_iteration=rng.choice([0, 2]), submit_grace=rng.choice([10.0, 300.0]))


def scenario(seed: int):
    rng = random.Random(seed)
    tasks = [random_task(rng, r) for r in range(rng.randint(1, 60))]
    return tasks, random_obs(rng, tasks), policy(rng), rng


def copies(tasks: list[Task]) -> list[Task]:
    return [msgspec.structs.replace(t, segments=[msgspec.structs.replace(s) for s in t.segments]) for t in tasks]


def outcome(decisions, budget: Budget):
    return [(t.key, d) for t, d in decisions], budget


@pytest.mark.parametrize("seed", range(300))
def test_tasks_not_changing_are_left_alone_by_decide_task(seed):
    tasks, obs, pol, _ = scenario(seed)
    changing = {id(t) for t in P._changing(tasks, obs, {}, pol.submit_grace)}
    for t in tasks:
        if id(t) not in changing:
            assert decide_task(t, obs, pol, Budget.of(tasks)) is None, t


@pytest.mark.parametrize("seed", range(300))
def test_deciding_the_live_tasks_with_the_pre_filter_decides_as_every_task(seed, monkeypatch):
    tasks, obs, pol, rng = scenario(seed)
    tokens = rng.choice([None, {"submit": 1, "stage": 2, "kill": 1}])
    fast = outcome(*P.plan_budget(P.live(copies(tasks)), obs, pol, None, tokens))
    monkeypatch.setattr(P, "_changing", lambda tasks, *a: iter(tasks))
    every = outcome(*P.plan_budget(copies(tasks), obs, pol, None, tokens))
    assert fast == every


def test_live_keeps_file_order_and_drops_only_settled_tasks_without_request_or_intent():
    tasks = [Task(run=1, state=S.COMPLETED), Task(run=2, state=S.RUNNING), Task(run=3, state=S.ABORTED, request="restart"),
             Task(run=4, state=S.SKIPPED, intent=Intent(actions=["release"], owner=ME, at=NOW)),
             Task(run=5, state=S.FAILED), Task(run=6, state=S.SKIPPED, held=True)]
    assert [t.run for t in P.live(tasks)] == [2, 3, 4, 5]


def test_a_request_merged_into_a_settled_task_makes_it_live_again():
    """Another process queues a restart of a completed task: the next survey looks at it."""
    t = Task(run=1, state=S.COMPLETED, job_name="bm.s.1.a.1", attempt=1)
    obs = Observations(now=NOW, me=ME, live_daemons=frozenset({ME}))
    assert P.plan_budget(P.live([t]), obs, Policy())[0] == []
    t.request = "restart"
    ds = P.plan_budget(P.live([t]), obs, Policy())[0]
    assert [d.state for _, d in ds] == [S.NEW]


def test_budget_counts_the_same_over_the_live_tasks():
    tasks, _, _, _ = scenario(7)
    assert Budget.of(P.live(tasks)) == Budget.of(tasks)


@pytest.mark.parametrize("seed", range(200))
def test_unsuccessful_tasks_the_retry_rules_leave_alone_are_decided_once(seed):
    """A second plan with what the first found (no task changed but by a person's request):
    the same decisions, without deciding those tasks again."""
    tasks, obs, pol, rng = scenario(seed)
    unretried = {}
    first = outcome(*P.plan_budget(copies(tasks), obs, pol))
    P.plan_budget(tasks, obs, pol, unretried=unretried)
    assert all(t.state in (S.FAILED, S.INCOMPLETE, S.ERROR) and not t.request for t in unretried.values())
    for t in rng.sample(list(unretried.values()), min(2, len(unretried))):
        t.request = "restart"                      # merged in place from the requests file
    again = outcome(*P.plan_budget(tasks, obs, pol, unretried=dict(unretried)))
    assert again == outcome(*P.plan_budget(copies(tasks), obs, pol))
    if not any(t.request == "restart" for t in unretried.values()):
        assert again == first


@pytest.mark.parametrize("seed", range(200))
def test_the_live_tasks_after_some_changed_are_live_of_the_last_ones(seed):
    """The daemon's survey between two of its own writes, over rounds: only the tasks it decided
    may have settled (or lost their intent or request), and tasks may be appended to the file;
    plan.Live takes the first out and adds the others, as live() of all would."""
    tasks, _, _, rng = scenario(seed)
    kept = P.Live(P.live(tasks))
    for _ in range(3):
        live = kept.tasks
        changed = rng.sample(live, rng.randint(0, len(live)))
        for t in changed:
            t.state = rng.choice([t.state, S.COMPLETED, S.ABORTED, S.SKIPPED, S.FAILED, S.NEW])
            if rng.random() < 0.5:
                t.request = rng.choice(["", "restart"])
            if rng.random() < 0.5:
                t.intent = rng.choice([None, t.intent, Intent(actions=["release"], owner=ME, at=NOW)])
        new = [random_task(rng, 100 + len(tasks) + k) for k in range(rng.randint(0, 3))]
        tasks += new
        assert [id(t) for t in kept.still(changed + changed[:2], P.live(new))] == [id(t) for t in P.live(tasks)]


@pytest.mark.parametrize("seed", range(200))
def test_the_live_tasks_after_another_writer_replaced_some_are_live_of_the_new_list(seed):
    """Another writer's changes read from the change log put new objects in the places of old
    ones (store/replays.py): plan.Live.swapped gives live() of the new list, or says it cannot
    (a task that was not live became live), over rounds mixed with the daemon's own changes; a
    replaced live task keeps its place (the list was made again around it: ~0.2 s at 1,000,000)."""
    tasks, _, _, rng = scenario(seed)
    kept = P.Live(P.live(tasks))
    for _ in range(4):
        if rng.random() < 0.5:
            changed = rng.sample(kept.tasks, rng.randint(0, len(kept.tasks)))
            for t in changed:
                t.state = rng.choice([t.state, S.COMPLETED, S.NEW])
            assert [id(t) for t in kept.still(changed, [])] == [id(t) for t in P.live(tasks)]
        pairs = []
        for i in rng.sample(range(len(tasks)), rng.randint(0, min(6, len(tasks)))):
            new = msgspec.structs.replace(tasks[i]) if rng.random() < 0.8 else tasks[i]
            new.state = rng.choice([new.state, new.state, S.COMPLETED, S.RUNNING, S.SKIPPED])
            pairs.append((tasks[i], new))
            tasks[i] = new
        more = [random_task(rng, 100 + len(tasks) + k) for k in range(rng.randint(0, 2))]
        tasks += more
        before = list(kept.tasks)
        if kept.swapped(pairs, P.live(more)):
            assert [id(t) for t in kept.tasks] == [id(t) for t in P.live(tasks)]
        else:
            assert kept.tasks == before and any(P.is_live(n) and not P.is_live(o) or
                                                P.is_live(n) and all(x is not o for x in before) for o, n in pairs)
            kept = P.Live(P.live(tasks))         # (what survey does then: live() of all)
