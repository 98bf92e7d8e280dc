"""Where the tasks a writer changed sit in the task list, found without a pass over the list.

The store hands the page the tasks its writes changed in place or appended: objects, not
positions (a task does not know its place, and a map from every task to its position would
cost ~70 MB at 1,000,000 tasks). The tally keeps the run it counted at each position; tasks
are added run after run, so those runs mostly do not go down, and that sorted part is
searched by run with a bisection (when they are few: see COST). A task is taken to be at a position only if it is the very
object there (``is``), so a position found is certain. Tasks after the sorted part (one
appended out of run order, a late segment's task) are looked up by identity in that tail
when it is short. A task not found anywhere: None, and the caller compares every task.

Pure: lists in, positions out.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import compress, islice
from operator import gt

TAIL = 50_000       # at most this many positions after the sorted part are looked through
# A task found by bisection costs ~20 reads one after the other in a large list (each likely
# a cache miss, ~2-7 us at 1,000,000 tasks on this machine), a task compared in a pass over the
# list about one read the processor overlaps with the next (~50-100 ns): more tasks written
# than the list's length over COST, and the pass is cheaper (19,000 in a steady iteration of the
# benchmark at 1,000,000 tasks: the pass; a command's write of a few: the bisection).
COST = 64


def sorted_upto(runs: list) -> int:
    """How many of ``runs``, from the first, do not go down (a pass at C speed)."""
    down = next(compress(range(1, len(runs)), map(gt, runs, islice(runs, 1, None))), None)
    return len(runs) if down is None else down


def positions(tasks: list, runs: list, upto: int, old: int, touched) -> list[int] | None:
    """The positions before ``old`` of the ``touched`` tasks in ``tasks`` (those at ``old`` or
    after, appended, are left out), or None when one is not in ``tasks``. ``runs``: the run
    at each position before ``old``, not going down before ``upto``."""
    out: list[int] = []
    tail: dict[int, int] | None = None
    for t in touched:
        r = t.run
        lo = bisect_left(runs, r, 0, upto)
        for p in range(lo, bisect_right(runs, r, lo, upto)):
            if tasks[p] is t:
                out.append(p)
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
