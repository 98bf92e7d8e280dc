"""Issue 18: the tasks in the batch system by job name (what observe asks the batch system
about) are kept from the tasks the daemon changes (daemon/inbatch.InBatch) instead of found
among every live task each round; over random sequences of changes they equal a fresh look."""

import random

import pytest

from batchman.core import states as S
from batchman.core.model import Task
from batchman.daemon.inbatch import InBatch

from keeper_helpers import rounds


def task(rng: random.Random, run: int) -> Task:
    t = Task(run=run, state=rng.choice(S.ALL))
    change(rng, t)
    return t


def change(rng: random.Random, t: Task) -> None:
    """What a decision or a recorded result may change: the state, the attempt's job (name, id,
    its place in a job array)."""
    t.state = rng.choice(S.ALL)
    if rng.random() < 0.5:
        t.job_name = rng.choice(["", f"bm.s.{t.run}.a.{rng.randint(1, 3)}"])
    if rng.random() < 0.5:
        t.job_id = rng.choice(["", str(rng.randint(1, 99))])
    if rng.random() < 0.3:
        t.array_name, t.array_index = rng.choice([("", None), ("arr", rng.randint(0, 5)), ("arr", None)])


@pytest.mark.parametrize("seed", range(300))
def test_the_jobs_kept_from_the_changes_are_those_found_afresh(seed):
    for tasks, kept in rounds(seed, InBatch, task, change):
        fresh = InBatch(tasks)
        assert kept.same(fresh)
        assert all(kept.named[n] is t for n, t in fresh.named.items())


def test_a_task_that_leaves_the_batch_system_is_no_longer_asked_about():
    t = Task(run=1, state=S.RUNNING, job_name="bm.s.1.a.1", job_id="7")
    kept = InBatch([t])
    assert kept.ids == {"bm.s.1.a.1": "7"}
    kept.deciding([t])
    t.state = S.COMPLETED
    kept.changed()
    assert kept.ids == {} and kept.named == {}


@pytest.mark.parametrize("seed", range(100))
def test_the_ids_lent_to_a_query_are_those_but_the_looked_at_jobs_and_come_back_whole(seed):
    """observe asks the batch system about the kept ids themselves (no copy of 300,000 jobs),
    without the jobs whose markers it reads first; the query may add some back."""
    rng = random.Random(seed)
    tasks = [task(rng, r) for r in range(rng.randint(0, 40))]
    kept = InBatch(tasks)
    before = dict(kept.ids)
    look = rng.sample(list(kept.named.values()), rng.randint(0, len(kept.named)))
    ask = kept.lend(look)
    assert ask == {n: i for n, i in before.items() if n not in {t.job_name for t in look}}
    for t in look[:3]:       # (as observe does: by its id, "" when it has none yet)
        ask[t.job_name] = t.job_id
    kept.put_back()
    assert kept.ids == before and kept.same(InBatch(tasks))


@pytest.mark.parametrize("seed", range(10))
def test_the_tasks_of_the_jobs_that_reported_counters_are_found_by_name(seed):
    """The record step finds the tasks whose jobs reported counters (observe reads the spools
    of jobs in the batch system only) by their job names, not by a pass over every live task
    (~70 ms at 1,000,000 tasks); the same tasks as the pass, names not of a task left out."""
    from batchman.core import plan as P
    from batchman.daemon import record as R
    rng = random.Random(seed)
    live = P.live([task(rng, run) for run in range(60)])
    in_batch = [t.job_name for t in live if t.state in S.IN_BATCH and t.job_name]
    counters = {n: {"events": 1} for n in rng.sample(in_batch, rng.randint(0, len(in_batch)))}
    counters.update({"bm.s.999.a.1": {"events": 2}} if rng.random() < .5 else {})     # a job no task has
    found = R.counted(counters, InBatch(live))
    assert sorted(map(id, found)) == sorted(id(t) for t in live if t.job_name in counters)
