"""Where the tasks a writer changed sit in the task list, found without a pass over the list.

The store hands the page the tasks its writes changed in place or appended: objects, not
positions (a task does not know its place, and a map from every task to its position would
cost ~70 MB at 1,000,000 tasks). The tally keeps the run it counted at each position; tasks
are added run after run, so those runs go up in a few long stretches (one; in a per-file
campaign the merge steps of an add, then the segment tasks its split appended, run after run),
and each stretch is searched by run, the tasks taken in the order of their runs, each from
where the last was found on (when they are few: see COST). A task is taken to be at a
position only if it is the very object there (``is``), so a position found is certain. Tasks
after the stretches (one appended out of run order, a late segment's task, or more than
STRETCHES of them) are looked up by identity in that tail when it is short. A task not found
anywhere: None, and the caller compares every task.

Pure: lists in, positions out.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import compress, islice
from operator import attrgetter, gt

TAIL = 50_000       # at most this many positions after the sorted part are looked through
# A task found from where the last one was costs a few reads close together (the tasks written
# by a round are in the list's order, mostly: a daemon decides them so), ~1.7 us at 1,000,000
# tasks on this machine; a task compared in a pass over the list about one read the processor
# overlaps with the next, ~90 ns: more tasks written than the list's length over COST, and the
# pass is cheaper (19,000 tasks written in a steady iteration of the benchmark at 1,000,000
# tasks: 33 ms found so, 86 ms for the pass; 50,000: 121 ms against the same pass).
COST = 32
NEAR = 64       # positions looked through first, from where the last run's tasks begin
STRETCHES = 16  # stretches of runs that go up looked through by run (a per-file campaign: 2, and one a later add)
_RUN = attrgetter("run")


def sorted_upto(runs: list) -> int:
    """How many of ``runs``, from the first, do not go down (the first of their stretches)."""
    return stretches(runs, most=1)[1]


def positions(tasks: list, runs: list, upto: int, old: int, touched, ids: array | None = None,
              starts: list[int] | tuple = (0,)) -> list[int] | None:
    """The positions before ``old`` of the ``touched`` tasks in ``tasks`` (those at ``old`` or
    after, appended, are left out; a task touched twice, twice), or None when one is not in
    ``tasks``. ``runs``: the run at each position before ``old``; ``starts``: where stretches of
    them that do not go down begin (the first at 0), the last ending at ``upto`` (:func:`stretches`:
    in a per-file campaign every merge step comes first, then the segment tasks run by run).

    The tasks are looked for in the order of their runs, in each stretch from where the one
    before was found on (:func:`_gallop`): at 1 % of 1,000,000 tasks changed, ~6 reads each,
    mostly near the last, instead of a bisection of the whole sorted part each (~20 reads, far
    apart).

    ``ids``: the id of the task last seen at each position before ``old``, a hint: a task is
    looked for among its run's by id in that array (contiguous numbers), not by a look at each
    task of its run (a read far away each: a run of 200 segment tasks took ~4.6 us a task
    found); a position whose id is not the task's (another object there since) is looked
    through as without it, and its id corrected."""
    out: list[int] = []
    tail: dict[int, int] | None = None
    bounds = list(zip(starts, [*starts[1:], upto]))
    los = list(starts)      # in each stretch, where the last run's tasks begin: the next run's are not before
    for t in sorted(touched, key=_RUN):
        r = t.run
        for k, (_, end) in enumerate(bounds):
            p = los[k] = _gallop(runs, r, los[k], end)
            if p >= end or runs[p] != r:
                continue
            if (ids is not None and not tasks[p] is t        # (its run's first: the look below, at once)
                    and (i := _by_id(ids, id(t), p, _gallop(runs, r + 1, p, end))) >= 0 and tasks[i] is t):
                out.append(i)
                break
            while p < end and runs[p] == r:
                if tasks[p] is t:
                    out.append(p)
                    if ids is not None:
                        ids[p] = id(t)
                    break
                p += 1
            else:
                continue
            break
        else:
            if tail is None:
                if len(tasks) - upto > TAIL:
                    return None
                tail = {id(x): p for p, x in enumerate(islice(tasks, upto, None), upto)}
            p = tail.get(id(t), -1)         # (ids of the list's tasks: alive, so unique)
            if p < 0:
                return None
            if p < old:
                out.append(p)
    return out


def stretches(runs: list, start: int = 0, most: int = STRETCHES) -> tuple[list[int], int]:
    """Where the stretches of ``runs[start:]`` that do not go down begin, at most ``most`` of
    them, and where the last of those ends (the tail after it is looked through by id)."""
    down = list(islice(compress(range(start + 1, len(runs)), map(gt, islice(runs, start, None),
                                                              islice(runs, start + 1, None))), most))
    begins = [start, *down]
    if len(begins) > most:
        return begins[:most], begins[most]
    return begins, len(runs)


def _by_id(ids: array, i: int, lo: int, hi: int) -> int:
    """Where ``i`` is in ``ids[lo:hi]`` (-1: not there)."""
    try:
        return ids.index(i, lo, hi)
    except ValueError:
        return -1


def ids_of(tasks) -> array:
    """The ids of ``tasks``, for :func:`positions`."""
    return array("Q", map(id, tasks))


def _gallop(runs: list, r: int, lo: int, upto: int) -> int:
    """bisect_left(runs, r, lo, upto), searched first in the ``NEAR`` positions from ``lo`` on
    (where it mostly is when the runs sought go up in small steps: a few reads close together),
    then from there on in windows that double."""
    near = NEAR
    while True:
        hi = lo + near
        if hi >= upto or runs[hi] >= r:
            return bisect_left(runs, r, lo, min(hi, upto))
        lo, near = hi + 1, near * 2
