"""The task list's orders and its text search over one status, each made once (issue 18).

At 1,000,000 tasks a sort with a Python key takes ~0.5 s and building a string per task ~0.7 s,
while a sort with a C-level key (``operator.attrgetter``) of a list already nearly in order
takes ~50 ms. So the list is sorted by run once (core/segview.by_run: by job in batchman.yaml's
order, then by run, as `batchman list`); the tasks of each
state are kept in that order (blocks: a state filter takes its blocks, the order by state puts
them one after the other); the order by time is a stable sort of the run order by one key (ties
stay in run order, as the sort promises); every order is kept for the status it was made for;
and a text search looks through one string of all the tasks with ``str.find``. The blocks and
the search text are made in pieces, ahead by a thread (``prepare``) or when first needed.

The cache belongs to one status object: a status whose tasks were added, removed or changed
state is a new object (the store decodes or copies one); the one change made in place, a
queued request (``Store._overlay``), touches only the text search (``requests_changed``).
"""

from __future__ import annotations

import heapq
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from itertools import compress, islice
from operator import attrgetter, indexOf, lt

from batchman.core import states as S
from batchman.core.model import Task
from batchman.core.segview import by_run     # (the run order: `batchman list`'s too)

SORTS = ("run", "state", "time")
_STATE_ORDER = {s: i for i, s in enumerate(S.ALL)}
_RUN, _STATE, _SINCE = map(attrgetter, ("run", "state", "since"))
_SEARCHED = [attrgetter(f) for f in ("job", "state", "request", "job_id", "error", "reason")]
_REQUEST = _SEARCHED[2]
SEP = "\0"        # between two tasks in the search text; nothing typed contains it
CHUNK = 20_000    # tasks per piece of the search text (~10 ms to make at 1M tasks)
QUIET = 1.0       # seconds without a new screen before the blocks by state are made


def search_text(t: Task) -> str:
    """What a text filter looks in (lowered by the caller)."""
    return f"{t.run} {t.job} {t.state} {t.request} {t.job_id} {t.error} {t.reason}"


def search_piece(tasks: list[Task]) -> str:
    """The search texts of ``tasks`` joined by SEP, lowered: made a column at a time with C-level
    maps (a Python call per task, as ``search_text``, costs ~3 times more)."""
    columns = [map(str, map(_RUN, tasks))] + [map(f, tasks) for f in _SEARCHED]
    return SEP.join(map(" ".join, zip(*columns))).lower()


def blocks_of(run_ordered: list[Task], into: dict[str, list[Task]] | None = None) -> dict[str, list[Task]]:
    """Each state's tasks in the order given (added to ``into``'s): one sort by the state's name
    with a C-level key, then a slice per state (its end found by bisection)."""
    into = {} if into is None else into
    alpha = sorted(run_ordered, key=_STATE)
    names = list(map(_STATE, alpha))
    i = 0
    while i < len(alpha):
        j = bisect_right(names, names[i], i)
        into.setdefault(names[i], []).extend(alpha[i:j])
        i = j
    return into


def in_state_order(blocks: dict[str, list[Task]], states=None, job_order: tuple[str, ...] = ()) -> list[Task]:
    """``blocks`` (of ``states``, or all) one after the other in ``states.ALL``'s order; a state
    batchman does not know goes last, by run."""
    out: list[Task] = []
    for s in S.ALL:
        if states is None or s in states:
            out += blocks.get(s, ())
    odd = [t for s, b in blocks.items() if s not in _STATE_ORDER and (states is None or s in states) for t in b]
    return out + by_run(odd, job_order) if odd else out


def resort(run_ordered: list[Task], sort: str) -> list[Task]:
    """Tasks given in run order, in ``sort``'s order (ties in run order)."""
    if sort == "run":
        return run_ordered
    if sort == "state":
        return in_state_order(blocks_of(run_ordered))
    if sort == "time":       # longest in its state first
        return sorted(run_ordered, key=_SINCE)
    raise ValueError(f"sort by one of {', '.join(SORTS)}")


def split_key(key: str) -> tuple[int, str]:
    """'1000.reco' (or segment 17's '1000.reco.17') -> (1000, 'reco') (``model.task_key``
    backwards: a job name has no dot)."""
    run, job = key.split(".", 1)
    return int(run), job.split(".", 1)[0]


def find_run(order: list[Task], run: int, job: str | None = None, start: int = 0,
             run_sorted: bool = False) -> int | None:
    """The first position at or after ``start`` of ``run`` (and ``job``, if given) in ``order``;
    by bisection when ``order`` is sorted by run, else with one C-level pass."""
    if run_sorted:
        pos = bisect_left(order, run, lo=start, key=_RUN)
        while pos < len(order) and order[pos].run == run:
            if job is None or order[pos].job == job:
                return pos
            pos += 1
        return None
    runs = map(_RUN, order[start:] if start else order)
    pos = start
    while True:
        try:
            pos += indexOf(runs, run)
        except ValueError:
            return None
        if job is None or order[pos].job == job:
            return pos
        pos += 1


def find_key(order: list[Task], key: str, run_sorted: bool = False) -> int | None:
    """The position of the task (or folded run of segment tasks) of ``key`` in ``order``."""
    run, job = split_key(key)
    pos = find_run(order, run, job, run_sorted=run_sorted)
    while pos is not None and order[pos].key != key:
        pos = find_run(order, run, job, pos + 1, run_sorted)
    return pos


def find_task(order: list, t, sort: str) -> int | None:
    """The position of task ``t`` (by key) in ``order`` sorted by state or time, by bisection
    on its state's rank or its time (a task that changed either since is not found: None, as is
    anything in another order; the caller then looks with ``find_key``)."""
    if not isinstance(t, Task) or sort not in ("state", "time"):
        return None
    if sort == "state":
        if t.state not in _STATE_ORDER:
            return None
        rank = _STATE_ORDER[t.state]
        lo = bisect_left(order, rank, key=lambda x: _STATE_ORDER.get(x.state, len(_STATE_ORDER)))
        hi = bisect_right(order, rank, lo, key=lambda x: _STATE_ORDER.get(x.state, len(_STATE_ORDER)))
        pos = find_run(order[lo:hi], t.run, t.job, run_sorted=True)
        pos = None if pos is None else lo + pos
    else:
        pos = bisect_left(order, t.since, key=_SINCE)
    key = t.key
    while pos is not None and pos < len(order) and order[pos].key != key:
        nxt = order[pos + 1] if pos + 1 < len(order) else None
        pos = pos + 1 if nxt is not None and (nxt.run == t.run if sort == "state" else nxt.since == t.since) else None
    return pos if pos is not None and pos < len(order) else None


def _find_all(needle: str, text: str, tasks: list[Task], out: list[Task]) -> None:
    """Append the tasks (``text``'s pieces, in order) whose piece holds ``needle``."""
    find, count = text.find, text.count
    k = at = 0                  # task k's piece starts at ``at``
    while True:
        i = find(needle, at)
        if i < 0:
            return
        k += count(SEP, at, i)
        out.append(tasks[k])
        at = find(SEP, i + len(needle))
        if at < 0:
            return
        k, at = k + 1, at + 1


class Orders:
    """The orders of one status's tasks, their counts by state and their search text, each
    made when first asked for. The search text can also be made ahead by another thread
    (``prepare``), a piece at a time under the lock."""

    def __init__(self, tasks: list[Task], job_order: tuple[str, ...] = ()) -> None:
        self.tasks = tasks
        self.job_order = job_order          # batchman.yaml's jobs: the order of a run's tasks
        self._sorted: dict[str, list[Task]] = {}
        self._counts: Counter | None = None
        self._text: list[str] = []          # piece i: tasks [i * CHUNK, (i + 1) * CHUNK) of the run order
        self._asked: list[str] = []         # piece i's tasks' requests when it was made
        self._requests_stale = False        # requests were queued since: some pieces may be stale
        self._blocks: dict[str, list[Task]] = {}    # each state's tasks in run order, of the first
        self._blocked = 0                           # ``_blocked`` tasks of the run order
        self._lock = threading.Lock()
        self._dropped = False
        self._quiet_at = 0.0                # the blocks wait till then (``busy``)
        self.made = 0                       # sorted orders made (for tests)
        self.stepping = False               # the main loop makes the search text (``steps``)
        self._timed: list[list[Task]] | None = None     # pieces of the run order sorted by time (``steps``),
        self._merged: list[Task] = []                   # their merge so far
        self._merging = None

    def by(self, sort: str) -> list[Task]:
        with self._lock:
            return self._by(sort)

    def _by(self, sort: str) -> list[Task]:
        order = self._sorted.get(sort)
        if order is None:
            if sort == "run":
                order = by_run(self.tasks, self.job_order)
            elif sort == "state":
                order = in_state_order(self._all_blocks(), job_order=self.job_order)
            else:
                order = resort(self._by("run"), sort)
            self._sorted[sort] = order
            self.made += 1
        return order

    def warm(self, piece: int = CHUNK):
        """Count the states and tell whether the tasks are in run order already, ``piece`` tasks
        at a time (a generator: the TUI's reading steps, so that the first list of a new status
        costs no ~0.4 s pass at 1M tasks in one go); what ``counts`` and ``by("run")`` then take."""
        counts: Counter = Counter()
        in_order, last = True, None
        for i in range(0, len(self.tasks), piece):
            part = self.tasks[i:i + piece]
            counts.update(map(_STATE, part))
            if in_order:
                runs = list(map(_RUN, part))
                in_order = (last is None or last < runs[0]) and all(map(lt, runs, islice(runs, 1, None)))
                last = runs[-1]
            yield
        with self._lock:
            self._counts = counts
            if in_order and "run" not in self._sorted:
                self._sorted["run"] = list(self.tasks)
                self.made += 1

    def counts(self) -> Counter:
        """Tasks by state."""
        if self._counts is None:
            self._counts = Counter(map(_STATE, self.tasks))
        return self._counts

    def _block_step(self) -> bool:
        """Sort the next piece of the run order into the blocks by state; False once all are."""
        run = self._by("run")
        if self._blocked >= len(run):
            return False
        blocks_of(run[self._blocked:self._blocked + CHUNK], self._blocks)
        self._blocked += CHUNK
        return True

    def _all_blocks(self) -> dict[str, list[Task]]:
        while self._block_step():
            pass
        return self._blocks

    def of_states(self, states, sort: str = "run") -> list[Task]:
        """The tasks in ``states``, in run order (by state with ``sort`` "state"); before the
        blocks are whole, in run order by one C-level pass (~70 ms at 1M tasks, not ~0.5 s)."""
        with self._lock:
            if sort != "state" and self._blocked < len(self.tasks):
                run = self._by("run")
                return list(compress(run, map(frozenset(states).__contains__, map(_STATE, run))))
            blocks = self._all_blocks()
            if sort == "state":
                return in_state_order(blocks, states)
            chosen = [s for s in states if blocks.get(s)]
            return list(blocks[chosen[0]]) if len(chosen) == 1 else by_run(in_state_order(blocks, states), self.job_order)

    def requests_changed(self) -> None:
        """A request was queued in place: the pieces of the search text (which shows requests)
        whose tasks' requests changed are made again at the next search."""
        with self._lock:
            self._requests_stale = True

    def _requests_step(self) -> None:
        """Make again the pieces whose tasks' requests are not those they were made with (one
        C-level pass over the requests: ~40 ms at 1M tasks; the whole text: ~0.4 s)."""
        if not self._requests_stale:
            return
        run = self._by("run")
        for i, asked in enumerate(self._asked):
            now = SEP.join(map(_REQUEST, run[i * CHUNK:(i + 1) * CHUNK]))
            if now != asked:
                self._text[i], self._asked[i] = search_piece(run[i * CHUNK:(i + 1) * CHUNK]), now
        self._requests_stale = False

    def drop(self) -> None:
        """A newer status replaced this one: ``prepare`` stops."""
        self._dropped = True

    def _text_step(self) -> bool:
        """Make the next piece of the search text; False once it is whole."""
        run = self._by("run")
        i = len(self._text) * CHUNK
        if i >= len(run):
            return False
        self._text.append(search_piece(run[i:i + CHUNK]))
        self._asked.append(SEP.join(map(_REQUEST, run[i:i + CHUNK])))
        return True

    def needs_text(self) -> bool:
        """Whether the blocks by state or the search text are not whole yet (a guess: without the lock)."""
        return min(self._blocked, len(self._text) * CHUNK) < len(self.tasks)

    def busy(self, seconds: float | None = None) -> None:
        """The screen was just drawn: ``prepare`` makes no block by state for ``seconds`` (QUIET)."""
        self._quiet_at = time.monotonic() + (QUIET if seconds is None else seconds)

    def _wait_quiet(self) -> None:
        while not self._dropped and (wait := self._quiet_at - time.monotonic()) > 0:
            time.sleep(min(wait, 0.25))

    def prepare(self) -> bool:
        """Make the whole search text, then the blocks by state, a piece at a time (for a thread
        of its own: a key waits at most for one piece). The blocks only speed up the order by
        state, so they wait for a quiet screen (``busy``): a thread that holds the interpreter
        half the time makes every key twice as slow. False when a newer status replaced this one."""
        while not self._dropped:
            with self._lock:
                if not self._text_step():
                    break
        while not self._dropped:
            self._wait_quiet()
            with self._lock:
                if not self._block_step():
                    break
        return not self._dropped

    def steps(self):
        """``prepare``'s work for the main loop rather than a thread (the TUI's first status:
        a generator yielding after each piece of the search text, then of the blocks by state);
        ``stepping`` meanwhile, so that no thread does the same."""
        self.stepping = True
        try:
            for make in (self._text_step, self._block_step, self._state_order, self._time_step):
                while not self._dropped:
                    with self._lock:
                        if not make():
                            break
                    yield
        finally:
            self.stepping = False

    def _state_order(self) -> bool:
        """The order by state, from the blocks (~20-30 ms at 1M tasks: a step of its own)."""
        self._by("state")
        return False

    def _time_step(self) -> bool:
        """The next step of the order by time: sort a piece of the run order by time, or once
        all are, take the next CHUNK tasks of their merge (``heapq.merge``: a step of ~20 ms at
        1M tasks, where one sort of the whole holds the screen for 0.2-0.3 s). Its ties stay in
        run order: each sort is stable, and the merge takes ties from the earlier piece first."""
        if "time" in self._sorted:
            return False
        run = self._by("run")
        if self._timed is None:
            self._timed, self._merged, self._merging = [], [], None
        done = sum(map(len, self._timed))
        if done < len(run):
            self._timed.append(sorted(run[done:done + CHUNK], key=_SINCE))
            return True
        if self._merging is None:
            self._merging = heapq.merge(*self._timed, key=_SINCE)
        n = len(self._merged)
        self._merged += islice(self._merging, CHUNK)
        if len(self._merged) - n == CHUNK:
            return True
        self._sorted["time"], self._timed, self._merging = self._merged, None, None
        self.made += 1
        return False

    def matching(self, needle: str) -> list[Task]:
        """The tasks whose search text holds ``needle`` (lower case), in run order."""
        needle = needle.replace(SEP, "")
        with self._lock:
            run = self._by("run")
            if not needle:
                return run
            self._requests_step()
            while self._text_step():
                pass
            pieces = list(self._text)
        out: list[Task] = []
        for i, text in enumerate(pieces):
            _find_all(needle, text, run[i * CHUNK:(i + 1) * CHUNK], out)
        return out
