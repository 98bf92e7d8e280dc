"""Task key -> task, as a dict of key strings, held by numbers (issue 18).

Every process that reads a status file whole and writes makes the index of its tasks by key
(``Status.index``): at 1,000,000 tasks a dict of key strings took ~0.55 s, most of it the
strings made and their hashes scattered over a table of 40 MB (a look-up far away each). A
task's (run, job, segment) is a number instead: the run in the low 32 bits, the job's code above
it, the segment number + 1 above that. Consecutive runs are consecutive numbers: the table is
filled in order, and made at ~0.2 s (a per-file campaign's too: see SEG).

It behaves as the dict of key strings would, by key string (``idx["2120.reco.17"]``,
``key in idx``, ``idx.get``, iteration over the keys, ...): a key string is read back into
its parts, and one that does not read back to itself ("0012.reco", "+1.reco") is no task's
key. A task whose key cannot be a number (a run beyond 32 bits or below 0, a job name with a
dot, a segment number below 0, more than 4,096 job names: none that batchman makes) turns the
whole index into a dict of key strings, as it was. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    from batchman.core.model import Task

RUNS = 1 << 32          # runs 0 .. 2**32 - 1 in the low bits
JOBS = 1 << 12          # job codes above them
# The segment number + 1 times SEG above those (0: a run's task). SEG is above every run and job
# code, so a number still reads back into its parts; its low bits are not 0, so that a run's
# segment tasks do not all start at the table's same slot (the table's slot is a number's low
# bits: with SEG = 2**44 exactly, the 199 segment tasks of a run collided in one chain, and the
# first index of a per-file campaign of 1,000,000 tasks took ~0.37 s against ~0.24 s with this
# one, which also does as well in other shapes: benchmarks/bench_taskindex.py).
SEG = RUNS * JOBS + 1_000_003


def _key(run: int, job: str, seg: int | None) -> str:      # (model.task_key: model imports this module)
    return f"{run}.{job}" if seg is None else f"{run}.{job}.{seg}"


class _Odd(Exception):
    """A task whose key cannot be a number."""


def _odd():
    raise _Odd


class _Segs(dict):
    """Segment number (or None) -> its part of a number, made once (_Odd below 0): a look-up
    instead of a multiplication and an addition of numbers beyond 2**30 for each of a million
    segment tasks (~0.06 s of ~0.46 s in a campaign of one task per raw file)."""

    def __missing__(self, seg) -> int:
        if seg is not None and not seg >= 0:
            raise _Odd
        part = self[seg] = 0 if seg is None else (seg + 1) * SEG
        return part


_SEGS = _Segs()


class _Codes(dict):
    """Job name -> its code times RUNS, a new name given the next code as it is asked for (_Odd
    for a name that cannot have one)."""

    def __init__(self, jobs: list[str]):
        super().__init__()
        self.jobs = jobs

    def __missing__(self, job: str) -> int:
        if not isinstance(job, str) or "." in job or len(self.jobs) >= JOBS:
            raise _Odd
        code = self[job] = len(self.jobs) * RUNS
        self.jobs.append(job)
        return code


class TaskIndex(MutableMapping):
    """Task key -> task (see the module text)."""

    __slots__ = ("_by", "_codes", "_jobs", "_plain")

    def __init__(self, tasks: list[Task] = ()):
        self._by: dict = {}                 # number -> task (key string -> task when plain)
        self._jobs: list[str] = []          # the job names by code
        self._codes = _Codes(self._jobs)    # job name -> its code times RUNS (made when first asked)
        self._plain = False
        self.add(tasks)

    # ---- by task (no key string made) --------------------------------------------------
    def add(self, tasks: list[Task]) -> None:
        """``idx[t.key] = t`` for each task, in order. One pass over the tasks, which checks each
        number as it makes it (a pass more over 1,000,000 scattered tasks costs ~50 ms)."""
        if not tasks:
            return
        if self._plain:
            self._put({t.key: t for t in tasks})
            return
        codes, segs = self._codes, _SEGS
        try:
            self._put({(codes[t.job] + segs[t.seg] + r) if 0 <= (r := t.run) < RUNS else _odd(): t for t in tasks})
        except _Odd:
            self._to_plain(tasks)

    def _put(self, more: dict) -> None:
        """Add ``more`` (made for that): an empty index takes the dict itself, as a new process's
        first index of every task does: its update would copy the table (~50 MB of fresh memory
        at 1,000,000 tasks, the dict made beside it freed at once)."""
        if self._by:
            self._by.update(more)
        else:
            self._by = more

    def of(self, task: Task) -> Task | None:
        """The task of ``task``'s key (``idx.get(task.key)``; ``task``: anything with a run, a job
        and a seg, as the daemon's Work)."""
        return self._by.get(self._number(task.run, task.job, task.seg))

    def _code(self, job: str) -> int | None:
        """The code of a job name not seen yet (None: it cannot have one)."""
        try:
            return self._codes[job]
        except _Odd:
            return None

    def _number(self, run: int, job: str, seg: int | None, add: bool = False):
        if self._plain:
            return _key(run, job, seg)
        code = self._codes.get(job)
        if code is None and add:
            code = self._code(job)
        if code is None or not 0 <= run < RUNS or (seg is not None and seg < 0):
            return None
        return run + code + (0 if seg is None else (seg + 1) * SEG)

    def _key_of(self, n: int) -> str:
        seg, rest = divmod(n, SEG)
        code, run = divmod(rest, RUNS)
        return _key(run, self._jobs[code], seg - 1 if seg else None)

    def _to_plain(self, more: Iterable[Task] = ()) -> None:
        if not self._plain:
            self._by = {self._key_of(n): t for n, t in self._by.items()}
            self._plain = True
        self._by.update({t.key: t for t in more})

    # ---- by key string (what a dict of them does) ---------------------------------------
    def _of_key(self, key, add: bool = False):
        """The number of a key string; None when no task of this index can have it (one that does
        not read back to itself)."""
        if self._plain:
            return key
        try:
            run_s, job, *more = key.split(".")
            run, seg = int(run_s), int(more[0]) if more else None
        except (AttributeError, TypeError, ValueError):
            return None
        if (f"{run}.{job}" if seg is None else f"{run}.{job}.{seg}") != key:
            return None
        return self._number(run, job, seg, add)

    def __getitem__(self, key: str) -> Task:
        try:
            return self._by[self._of_key(key)]     # (None, nobody's key, is no number held)
        except KeyError:
            raise KeyError(key) from None

    def get(self, key: str, default=None):
        n = self._of_key(key)
        return default if n is None else self._by.get(n, default)

    def __contains__(self, key) -> bool:
        n = self._of_key(key)
        return n is not None and n in self._by

    def __setitem__(self, key: str, task: Task) -> None:
        n = self._of_key(key, add=True)
        if n is None:
            self._to_plain()
            n = key
        self._by[n] = task

    def __delitem__(self, key: str) -> None:
        n = self._of_key(key)
        if n is None or n not in self._by:
            raise KeyError(key)
        del self._by[n]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by) if self._plain else map(self._key_of, self._by)

    def __len__(self) -> int:
        return len(self._by)

    def values(self):
        return self._by.values()

    def __repr__(self) -> str:
        return f"TaskIndex({len(self)} tasks)"
