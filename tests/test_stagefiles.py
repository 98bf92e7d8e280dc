"""Issue 18: the files the staging system is asked about (those of the unstaged, staging and
staged tasks) are kept from the tasks the daemon changes (daemon/stagefiles.StagingFiles)
instead of picked out of every live task each round; over random sequences of changes they
are the files a fresh look finds."""

import random

import pytest

from batchman.core import states as S
from batchman.core.model import Segment, Task
from batchman.daemon.stagefiles import StagingFiles

from keeper_helpers import rounds


def task(rng: random.Random, run: int) -> Task:
    t = Task(run=run)
    change(rng, t)
    return t


def change(rng: random.Random, t: Task) -> None:
    """What a decision may change: the state, the segments (found for a new task)."""
    t.state = rng.choice(S.ALL)
    if rng.random() < 0.4:
        t.segments = [Segment(f"/d/{t.run}.{i}.{rng.randint(0, 9)}", rng.random() < 0.5) for i in range(rng.randint(0, 3))]


def fresh(tasks: list[Task]) -> list[str]:
    """What observe asked about before: picked out of every task, in file order."""
    return [s.path for t in tasks if t.state in (S.UNSTAGED, S.STAGING, S.STAGED) for s in t.segments]


@pytest.mark.parametrize("seed", range(300))
def test_the_files_kept_from_the_changes_are_those_found_afresh(seed):
    for tasks, kept in rounds(seed, StagingFiles, task, change):
        assert sorted(kept.files()) == sorted(fresh(tasks))
        assert kept.of == StagingFiles(tasks).of


def test_a_task_staged_and_submitted_no_longer_has_its_files_asked_about():
    t = Task(run=1, state=S.STAGED, segments=[Segment("/d/1.0"), Segment("/d/1.1")])
    kept = StagingFiles([t, Task(run=2, state=S.RUNNING, segments=[Segment("/d/2.0")])])
    assert kept.files() == ["/d/1.0", "/d/1.1"]
    kept.deciding([t])
    t.state = S.SUBMITTING
    kept.changed()
    assert kept.files() == []


@pytest.mark.parametrize("seed", range(200))
def test_the_files_found_afresh_are_those_kept_task_by_task(seed):
    """StagingFiles(tasks) (_files written out) keeps what keep() keeps of each task."""
    rng = random.Random(seed)
    tasks = [task(rng, r) for r in range(rng.randint(0, 60))]
    one_by_one = StagingFiles()
    one_by_one.keep(tasks)
    assert StagingFiles(tasks).of == one_by_one.of and list(StagingFiles(tasks).of) == list(one_by_one.of)
