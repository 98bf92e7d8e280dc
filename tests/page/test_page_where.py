"""Finding the positions of the tasks a write changed, by run, without a pass over the list.

A position is found only where the very task sits, in a list whose runs go up and in one
with tasks appended out of order after it; anything not found makes the caller compare.
"""

from __future__ import annotations

import random
from bisect import bisect_left

import pytest

from batchman.core.model import Task
from batchman.page import where as W


def runs_of(tasks):
    return [t.run for t in tasks]


@pytest.mark.parametrize("near", [64, 1, 3])
@pytest.mark.parametrize("seed", range(8))
def test_the_positions_found_are_those_of_the_tasks_and_only_them(seed, near, monkeypatch):
    monkeypatch.setattr(W, "NEAR", near)        # (small: the windows that double are gone through)
    rnd = random.Random(seed)
    tasks = [Task(run=r, job=j, seg=s) for r in range(0, 300, rnd.choice([1, 2]))
             for j in ("reco", "hist") for s in (None, 1, 2)[:rnd.randint(1, 3)]]
    tasks += [Task(run=rnd.randint(0, 300), job="late", seg=k) for k in range(rnd.randint(0, 30))]   # out of order
    old = len(tasks) - rnd.randint(0, 5)            # the last ones appended since the tally's look
    runs = runs_of(tasks)[:old]
    upto = W.sorted_upto(runs)
    touched = rnd.sample(tasks, rnd.randint(0, 60))
    touched += rnd.sample(touched, len(touched) // 3)         # some written twice: found twice
    found = W.positions(tasks, runs, upto, old, touched)
    assert sorted(found) == sorted(i for x in touched for i, t in enumerate(tasks) if i < old and t is x)


@pytest.mark.parametrize("near", [1, 2, 5, 64])
def test_the_search_from_the_last_place_finds_what_a_bisection_does(near, monkeypatch):
    monkeypatch.setattr(W, "NEAR", near)
    rnd = random.Random(near)
    for _ in range(300):
        runs = sorted(rnd.choices(range(40), k=rnd.randint(0, 80)))
        upto = rnd.randint(0, len(runs))
        lo = rnd.randint(0, upto)
        for r in range(-1, 42):
            assert W._gallop(runs, r, lo, upto) == bisect_left(runs, r, lo, upto), (runs, r, lo, upto)


def test_the_sorted_part_ends_where_the_runs_first_go_down():
    assert W.sorted_upto([]) == 0 and W.sorted_upto([5]) == 1
    assert W.sorted_upto([1, 1, 2, 7, 3, 9]) == 4 and W.sorted_upto([1, 2, 2]) == 3


def test_a_task_not_in_the_list_or_an_equal_copy_is_not_found():
    tasks = [Task(run=r) for r in range(10)]
    runs = runs_of(tasks)
    assert W.positions(tasks, runs, 10, 10, [Task(run=3)]) is None        # equal, not the same object
    assert W.positions(tasks, runs, 10, 10, [tasks[3], Task(run=99)]) is None
    assert sorted(W.positions(tasks, runs, 10, 10, [tasks[3], tasks[9], tasks[0]])) == [0, 3, 9]


def test_a_long_tail_out_of_order_is_not_looked_through(monkeypatch):
    monkeypatch.setattr(W, "TAIL", 5)
    tasks = [Task(run=r) for r in range(10)] + [Task(run=r) for r in range(9, -1, -1)]
    runs = runs_of(tasks)
    upto = W.sorted_upto(runs)
    assert upto == 11 and W.positions(tasks, runs, upto, 20, [tasks[12]]) is None
    assert W.positions(tasks, runs, upto, 20, [tasks[4]]) == [4]           # the sorted part still is


@pytest.mark.parametrize("seed", range(40))
def test_the_ids_of_the_places_find_the_same_positions_and_are_corrected_where_they_are_stale(seed):
    """With the ids of the tasks last seen at each place (the tally keeps them: a run of 200
    segment tasks is looked through as contiguous numbers, not task by task), the positions
    are those found without; a place whose task is another object since (another writer's
    version) or whose id is any other number is looked through as without, and its id put right."""
    rnd = random.Random(seed)
    tasks = [Task(run=r, job="reco", seg=s) for r in range(0, 60) for s in range(rnd.randint(1, 12))]
    tasks += [Task(run=rnd.randint(0, 60), job="late", seg=k) for k in range(rnd.randint(0, 10))]
    ids = W.ids_of(tasks)
    for i in rnd.sample(range(len(tasks)), len(tasks) // 5):       # replaced since the ids were taken
        tasks[i] = Task(run=tasks[i].run, job=tasks[i].job, seg=tasks[i].seg)
    for i in rnd.sample(range(len(tasks)), len(tasks) // 10):      # any other number
        ids[i] = rnd.choice([0, ids[rnd.randrange(len(ids))], id(tasks[rnd.randrange(len(tasks))])])
    old = len(tasks) - rnd.randint(0, 3)
    runs = runs_of(tasks)[:old]
    upto = W.sorted_upto(runs)
    touched = rnd.sample(tasks, rnd.randint(0, 40))
    touched += rnd.sample(touched, len(touched) // 3)
    found = W.positions(tasks, runs, upto, old, touched, ids)
    assert found == W.positions(tasks, runs, upto, old, touched)
    assert sorted(found) == sorted(i for x in touched for i, t in enumerate(tasks) if i < old and t is x)
    assert all(ids[i] == id(tasks[i]) for i in found if i < upto)
    assert W.positions(tasks, runs, upto, old, [Task(run=3, job="reco", seg=0)], ids) is None   # equal, not it


def test_the_ids_of_the_places_are_made_at_the_second_look_and_kept(monkeypatch):
    """A pass over every task makes them: a process that finds written tasks once (a oneshot)
    is spared it; one that goes on (the daemon) makes them once and keeps them current."""
    from batchman.core import states as S
    from batchman.page.tally import Tally
    made = []
    ids_of = W.ids_of
    monkeypatch.setattr(W, "ids_of", lambda tasks: made.append(len(tasks)) or ids_of(tasks))
    monkeypatch.setattr(W, "COST", 1)
    tasks = [Task(run=r // 5, job="reco", seg=r % 5) for r in range(100)]
    tally = Tally(tasks)
    for k in range(4):
        tasks[10 * k + 3].state = S.COMPLETED
        tally.sync(tasks, touched=[tasks[10 * k + 3]])
        assert made == ([] if k == 0 else [100])
        assert tally.counts[S.COMPLETED] == k + 1
    assert list(tally._ids) == [id(t) for t in tasks]


def test_stretches_begin_where_the_runs_go_down_up_to_a_number_of_them():
    assert W.stretches([]) == ([0], 0) and W.stretches([4]) == ([0], 1)
    assert W.stretches([1, 2, 3, 1, 2, 0]) == ([0, 3, 5], 6)
    assert W.stretches([1, 2, 3, 1, 2, 0], most=2) == ([0, 3], 5)
    assert W.stretches([1, 2, 3, 1, 2, 0], most=1) == ([0], 3)       # (as sorted_upto)
    assert W.stretches([9, 1, 2, 0, 5], start=1) == ([1, 3], 5)


@pytest.mark.parametrize("seed", range(30))
def test_in_the_order_batchman_makes_a_per_file_list_the_positions_are_found_by_run(seed, monkeypatch):
    """`batchman add` puts every run's merge step, the daemon's split then appends each run's
    segment tasks; a later add and split do it again: a few stretches whose runs go up. The
    tasks written are found in them (a per-file daemon's round compared every task's state
    instead, and made the ids again at each round: ~0.15 s at 1,000,000 tasks), with the ids
    or without, and a tail after the last stretch is looked through as before."""
    monkeypatch.setattr(W, "NEAR", random.Random(seed).choice([1, 4, 64]))
    rnd = random.Random(seed)
    tasks = []
    for first in range(0, rnd.randint(1, 4) * 40, 40):          # each add: merges, then segments
        runs = range(first, first + 40, rnd.choice([1, 3]))
        tasks += [Task(run=r, job="merge") for r in runs]
        tasks += [Task(run=r, job="reco", seg=s) for r in runs for s in range(rnd.randint(1, 6))]
    tasks += [Task(run=rnd.randint(0, 160), job="late", seg=k) for k in range(rnd.randint(0, 8))]
    old = len(tasks) - rnd.randint(0, 3)
    runs = runs_of(tasks)[:old]
    starts, upto = W.stretches(runs, most=rnd.choice([2, 3, 16]))
    touched = rnd.sample(tasks, rnd.randint(0, 50))
    touched += rnd.sample(touched, len(touched) // 3)
    truth = sorted(i for x in touched for i, t in enumerate(tasks) if i < old and t is x)
    assert sorted(W.positions(tasks, runs, upto, old, touched, starts=starts)) == truth
    ids = W.ids_of(tasks[:old])
    assert sorted(W.positions(tasks, runs, upto, old, touched, ids, starts)) == truth


def test_a_tally_finds_the_tasks_of_a_per_file_list_by_run_and_keeps_its_ids(monkeypatch):
    from batchman.core import states as S
    from batchman.page.tally import Tally
    monkeypatch.setattr(W, "COST", 1)
    made = []
    ids_of, passes = W.ids_of, []
    monkeypatch.setattr(W, "ids_of", lambda tasks: made.append(len(tasks)) or ids_of(tasks))
    monkeypatch.setattr(Tally, "behind", lambda self, tasks: passes.append(1) or [])
    tasks = [Task(run=r, job="merge") for r in range(20)] + [Task(run=r, job="reco", seg=s) for r in range(20) for s in range(5)]
    tally = Tally(tasks)
    for k in range(4):
        t = tasks[20 + 7 * k + 3]
        t.state = S.COMPLETED
        tally.sync(tasks, touched=[t])
        assert tally.counts[S.COMPLETED] == k + 1
    assert tally._starts == [0, 20] and made == [120] and not passes
    tasks += [Task(run=r, job="merge") for r in (20, 21)] + [Task(run=r, job="reco", seg=0) for r in (20, 21)]
    tally.sync(tasks, touched=tasks[-4:])              # a later add and split: a stretch more
    assert tally._starts == [0, 20, 122] and tally.n == 124     # (merges 20, 21 go on from run 19)
    tasks[-1].state = S.RUNNING
    tally.sync(tasks, touched=[tasks[-1]])
    assert tally.counts[S.RUNNING] == 1 and made == [120, 4]      # (extended by the 4 appended, not made again)
