"""The task list's orders and its text search over one status, each made once (issue 18).

At 1,000,000 tasks a sort with a Python key takes ~0.5 s and building a string per task ~0.5 s,
while a sort with a C-level key (``operator.attrgetter``) of a list already nearly in order
takes ~50 ms. So the list is sorted by run once (stable: by job, then by run), the other orders
are stable sorts of that one by a single key (ties stay in run order, as the sort promises),
every order is kept for the status it was made for, and a text search looks through one string
of all the tasks (made at the first search) with ``str.find``.

The cache belongs to one status object: a status whose tasks were added, removed or changed
state is a new object (the store decodes or copies one); the one change made in place, a
queued request (``Store._overlay``), touches only the text search (``requests_changed``).
"""

from __future__ import annotations

from operator import attrgetter, indexOf

from batchman.core import states as S
from batchman.core.model import Task

SORTS = ("run", "state", "time")
_STATE_ORDER = {s: i for i, s in enumerate(S.ALL)}
_RUN, _JOB, _SINCE = attrgetter("run"), attrgetter("job"), attrgetter("since")
SEP = "\0"        # between two tasks in the search text; nothing typed contains it


def search_text(t: Task) -> str:
    """What a text filter looks in (lowered by the caller)."""
    return f"{t.run} {t.job} {t.state} {t.request} {t.job_id} {t.error} {t.reason}"


def by_run(tasks: list[Task]) -> list[Task]:
    return sorted(sorted(tasks, key=_JOB), key=_RUN)


def resort(run_ordered: list[Task], sort: str) -> list[Task]:
    """Tasks given in run order, in ``sort``'s order (ties in run order)."""
    if sort == "run":
        return run_ordered
    if sort == "state":
        return sorted(run_ordered, key=lambda t: _STATE_ORDER.get(t.state, 99))
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


class Orders:
    """The orders of one status's tasks and its search text, each made when first asked for."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks
        self._sorted: dict[str, list[Task]] = {}
        self._text: str | None = None
        self.made = 0           # orders and search texts made (for tests)

    def by(self, sort: str) -> list[Task]:
        order = self._sorted.get(sort)
        if order is None:
            order = by_run(self.tasks) if sort == "run" else resort(self.by("run"), sort)
            self._sorted[sort] = order
            self.made += 1
        return order

    def requests_changed(self) -> None:
        """A request was queued in place: the search text (which shows requests) is stale."""
        self._text = None

    def _search_text(self) -> str:
        if self._text is None:
            self._text = SEP.join([search_text(t) for t in self.by("run")]).lower()
            self.made += 1
        return self._text

    def matching(self, needle: str) -> list[Task]:
        """The tasks whose search text holds ``needle`` (lower case), in run order."""
        needle = needle.replace(SEP, "")
        if not needle:
            return self.by("run")
        text, run = self._search_text(), self.by("run")
        find, count = text.find, text.count
        out: list[Task] = []
        k = at = 0                  # task k's text starts at ``at``
        while True:
            i = find(needle, at)
            if i < 0:
                return out
            k += count(SEP, at, i)
            out.append(run[k])
            at = find(SEP, i + len(needle))
            if at < 0:
                return out
            k, at = k + 1, at + 1
