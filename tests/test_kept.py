"""Issue 18: daemon/kept.Kept hands the tasks the daemon decides to all its keepers at once (what
Room, InBatch and Census keep of each noted in one pass); over random rounds of changes what it
keeps is what each would count afresh over the live tasks (Kept.check)."""

import random

import pytest

from batchman.core import plan as P
from batchman.daemon.kept import Kept

from keeper_helpers import rounds
from test_plan_live import random_task


def change(rng: random.Random, t) -> None:
    """What a decision may change: the state, the job, the segments, the request, the intent..."""
    new = random_task(rng, t.run)
    for f in ("state", "segments", "job_name", "job_id", "request", "held", "intent", "warning", "requested_at"):
        if rng.random() < 0.5:
            setattr(t, f, getattr(new, f))


def made(tasks, steady: bool) -> Kept:
    kept = Kept(P.live(tasks))
    if steady:
        kept.steady(P.live(tasks))          # (StagingWait: made at a steady survey)
    return kept


@pytest.mark.parametrize("steady", [False, True])
@pytest.mark.parametrize("seed", range(200))
def test_what_is_kept_from_the_changes_is_what_a_fresh_count_finds(seed, steady):
    for tasks, kept in rounds(seed, lambda ts: made(ts, steady), random_task, change):
        assert (kept.staging is not None) == steady
        kept.check(P.live(tasks))


def test_a_task_decided_twice_is_taken_back_as_it_was_before_the_first():
    rng = random.Random(1)
    t = random_task(rng, 1)
    t.state, t.job_name, t.request, t.intent, t.held = "running", "bm.s.1.a.1", "", None, False
    kept = Kept([t])
    kept.deciding([t])
    t.state = "completed"
    kept.deciding([t])                     # (a carried task: handed again, as it is now)
    assert kept.changed([]) == [t, t]
    kept.check([])
