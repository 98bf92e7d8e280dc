"""The task list's orders and its text search over one status, each made once (issue 18).

At 1,000,000 tasks a sort with a Python key takes ~0.5 s and building a string per task ~0.7 s,
while a sort with a C-level key (``operator.attrgetter``) of a list already nearly in order
takes ~50 ms. So the list is sorted by run once (stable: by job, then by run), the other orders
are stable sorts of that one by a single key (ties stay in run order, as the sort promises),
every order is kept for the status it was made for, and a text search looks through one string
of all the tasks with ``str.find`` (made in pieces, ahead by a thread or at the first search).

The cache belongs to one status object: a status whose tasks were added, removed or changed
state is a new object (the store decodes or copies one); the one change made in place, a
queued request (``Store._overlay``), touches only the text search (``requests_changed``).
"""

from __future__ import annotations

import threading
from collections import Counter
from operator import attrgetter, indexOf

from batchman.core import states as S
from batchman.core.model import Task

SORTS = ("run", "state", "time")
_STATE_ORDER = {s: i for i, s in enumerate(S.ALL)}
_RUN, _JOB, _STATE, _SINCE = attrgetter("run"), attrgetter("job"), attrgetter("state"), attrgetter("since")
SEP = "\0"        # between two tasks in the search text; nothing typed contains it
CHUNK = 20_000    # tasks per piece of the search text (~10 ms to make at 1M tasks)


def search_text(t: Task) -> str:
    """What a text filter looks in (lowered by the caller)."""
    return f"{t.run} {t.job} {t.state} {t.request} {t.job_id} {t.error} {t.reason}"


def by_run(tasks: list[Task]) -> list[Task]:
    return sorted(sorted(tasks, key=_JOB), key=_RUN)


def by_state(run_ordered: list[Task], counts: Counter | None = None) -> list[Task]:
    """Tasks given in run order, by state (in ``states.ALL``'s order), each state's in run
    order: one sort by the state's name with a C-level key, then its blocks (sized by
    ``counts``) put in that order; a state batchman does not know goes last, by run."""
    alpha = sorted(run_ordered, key=_STATE)
    counts = counts if counts is not None else Counter(map(_STATE, run_ordered))
    blocks, at = {}, 0
    for state in sorted(counts):
        blocks[state] = alpha[at:at + counts[state]]
        at += counts[state]
    out = [t for s in S.ALL for t in blocks.pop(s, ())]
    return out + by_run([t for b in blocks.values() for t in b]) if blocks else out


def resort(run_ordered: list[Task], sort: str, counts: Counter | None = None) -> list[Task]:
    """Tasks given in run order, in ``sort``'s order (ties in run order)."""
    if sort == "run":
        return run_ordered
    if sort == "state":
        return by_state(run_ordered, counts)
    if sort == "time":       # longest in its state first
        return sorted(run_ordered, key=_SINCE)
    raise ValueError(f"sort by one of {', '.join(SORTS)}")


def split_key(key: str) -> tuple[int, str]:
    """'1000.reco' -> (1000, 'reco') (``model.task_key`` backwards: a job name has no dot)."""
    run, job = key.split(".", 1)
    return int(run), job


def find_run(order: list[Task], run: int, job: str | None = None, start: int = 0) -> int | None:
    """The first position at or after ``start`` of ``run`` (and ``job``, if given) in ``order``."""
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


def find_key(order: list[Task], key: str) -> int | None:
    run, job = split_key(key)
    return find_run(order, run, job)


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

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks
        self._sorted: dict[str, list[Task]] = {}
        self._counts: Counter | None = None
        self._text: list[str] = []          # piece i: tasks [i * CHUNK, (i + 1) * CHUNK) of the run order
        self._lock = threading.Lock()
        self._dropped = False
        self.made = 0                       # sorted orders made (for tests)

    def by(self, sort: str) -> list[Task]:
        with self._lock:
            return self._by(sort)

    def _by(self, sort: str) -> list[Task]:
        order = self._sorted.get(sort)
        if order is None:
            order = by_run(self.tasks) if sort == "run" else resort(self._by("run"), sort, self.counts())
            self._sorted[sort] = order
            self.made += 1
        return order

    def counts(self) -> Counter:
        """Tasks by state."""
        if self._counts is None:
            self._counts = Counter(t.state for t in self.tasks)
        return self._counts

    def requests_changed(self) -> None:
        """A request was queued in place: the search text (which shows requests) is stale."""
        with self._lock:
            self._text = []

    def drop(self) -> None:
        """A newer status replaced this one: ``prepare`` stops."""
        self._dropped = True

    def _text_step(self) -> bool:
        """Make the next piece of the search text; False once it is whole."""
        run = self._by("run")
        i = len(self._text) * CHUNK
        if i >= len(run):
            return False
        self._text.append(SEP.join([search_text(t) for t in run[i:i + CHUNK]]).lower())
        return True

    def needs_text(self) -> bool:
        """Whether the search text is not whole yet (a guess: without the lock)."""
        return len(self._text) * CHUNK < len(self.tasks)

    def prepare(self) -> None:
        """Make the whole search text, a piece at a time (for a thread of its own: a key
        waits at most for one piece)."""
        while not self._dropped:
            with self._lock:
                if not self._text_step():
                    return

    def matching(self, needle: str) -> list[Task]:
        """The tasks whose search text holds ``needle`` (lower case), in run order."""
        needle = needle.replace(SEP, "")
        with self._lock:
            run = self._by("run")
            if not needle:
                return run
            while self._text_step():
                pass
            pieces = list(self._text)
        out: list[Task] = []
        for i, text in enumerate(pieces):
            _find_all(needle, text, run[i * CHUNK:(i + 1) * CHUNK], out)
        return out
