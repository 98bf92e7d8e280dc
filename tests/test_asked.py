"""Issue 18: what people asked of the live tasks (daemon/intents.asked: requests and holds, which
make the daemon re-plan when one is merged under the lock) is kept from the tasks the daemon
changes (intents.Asked) instead of found among every live task each round; over random
sequences of changes it equals a fresh look."""

import random

import pytest

from batchman.core import states as S
from batchman.core.model import Task
from batchman.daemon.intents import Asked, asked

from keeper_helpers import rounds

REQUESTS = ["", "", "", "kill", "restart", "skip"]


def task(rng: random.Random, run: int) -> Task:
    t = Task(run=run, job=rng.choice(["a", "b"]))
    change(rng, t)
    return t


def change(rng: random.Random, t: Task) -> None:
    """What a decision or a recorded result may change: the state, the request (done: cleared)."""
    t.state = rng.choice(S.ALL)
    if rng.random() < 0.5:
        t.request = rng.choice(REQUESTS)
    if rng.random() < 0.3:
        t.held = rng.random() < 0.5


@pytest.mark.parametrize("seed", range(300))
def test_what_was_asked_kept_from_the_changes_is_what_a_fresh_look_finds(seed):
    for tasks, kept in rounds(seed, Asked, task, change):
        assert kept.now == asked(tasks)


def test_a_request_done_is_no_longer_asked_and_a_hold_on_a_settled_task_never_was():
    t = Task(run=1, state=S.RUNNING, request="kill")
    kept = Asked([t, Task(run=2, state=S.COMPLETED, held=True)])
    assert kept.now == {t.key: ("kill", False)}
    kept.deciding([t])
    t.state, t.request = S.ABORTED, ""
    kept.changed()
    assert kept.now == {}
