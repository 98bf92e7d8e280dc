"""Two small containers the page's tally keeps up to date one task at a time.

``SortedBag``: sorted values with repeats, in blocks (the shape of sortedcontainers'
SortedList), so adding or removing one of a million values moves at most a block, never
the whole list. ``RunSet``: the runs that have tasks in one state, with their ranges
text ('10-19,25') rebuilt only for the blocks of runs that changed.

Pure: no clock, no files, no HTML.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter, defaultdict
from itertools import chain
from operator import itemgetter

BLOCK = 1000        # SortedBag: values per block before it is split in two


class SortedBag:
    """Sorted values, repeats allowed; add, remove, count from a bound, quantile, largest.
    ``presorted``: the values come sorted already (``by_fields`` sorts tuples fast)."""

    def __init__(self, values=(), presorted: bool = False) -> None:
        v = list(values) if presorted else sorted(values)
        self._blocks = [v[i:i + BLOCK] for i in range(0, len(v), BLOCK)]
        self._maxes = [b[-1] for b in self._blocks]
        self._len = len(v)

    def __len__(self) -> int:
        return self._len

    def add(self, x) -> None:
        self._len += 1
        if not self._blocks:
            self._blocks.append([x])
            self._maxes.append(x)
            return
        i = min(bisect_left(self._maxes, x), len(self._blocks) - 1)
        b = self._blocks[i]
        insort(b, x)
        self._maxes[i] = b[-1]
        if len(b) > 2 * BLOCK:
            self._blocks[i:i + 1] = [b[:BLOCK], b[BLOCK:]]
            self._maxes[i:i + 1] = [b[BLOCK - 1], b[-1]]

    def remove(self, x) -> None:
        """Remove one ``x``; a value not held is ignored."""
        i = bisect_left(self._maxes, x)
        if i == len(self._blocks):
            return
        b = self._blocks[i]
        j = bisect_left(b, x)
        if j == len(b) or b[j] != x:
            return
        del b[j]
        self._len -= 1
        if b:
            self._maxes[i] = b[-1]
        else:
            del self._blocks[i], self._maxes[i]

    def count_from(self, lo) -> int:
        """How many values are >= ``lo``."""
        i = bisect_left(self._maxes, lo)
        if i == len(self._blocks):
            return 0
        return len(self._blocks[i]) - bisect_left(self._blocks[i], lo) + sum(map(len, self._blocks[i + 1:]))

    def first_from(self, lo):
        """The smallest value >= ``lo``, or None."""
        i = bisect_left(self._maxes, lo)
        return None if i == len(self._blocks) else self._blocks[i][bisect_left(self._blocks[i], lo)]

    def __getitem__(self, k: int):
        if k < 0:
            k += self._len
        for b in self._blocks:
            if k < len(b):
                return b[k]
            k -= len(b)
        raise IndexError(k)

    def head(self, n: int) -> list:
        """The ``n`` smallest values, smallest first."""
        out: list = []
        for b in self._blocks:
            if len(out) >= n:
                break
            out += b[:n - len(out)]
        return out

    def largest(self, n: int) -> list:
        """The ``n`` largest values, largest first."""
        out: list = []
        for b in reversed(self._blocks):
            out += reversed(b[-(n - len(out)):])
            if len(out) >= n:
                break
        return out

    def __iter__(self):
        return chain.from_iterable(self._blocks)


def by_fields(rows: list[tuple]) -> list[tuple]:
    """``rows`` sorted as tuples, in place: one stable sort per field from the last, each on a
    C-speed key (several times faster than comparing tuples for a large list)."""
    for k in reversed(range(len(rows[0]) if rows else 0)):
        rows.sort(key=itemgetter(k))
    return rows


RUN_BLOCK = 10      # RunSet: runs >> RUN_BLOCK share a block (1024 runs)


def _intervals(runs: list[int]) -> list[tuple[int, int]]:
    """[(first, last), ...] of sorted runs without repeats."""
    if not runs:
        return []
    starts = [0] + [i for i, (a, b) in enumerate(zip(runs, runs[1:]), 1) if b != a + 1]
    return [(runs[i], runs[j - 1]) for i, j in zip(starts, starts[1:] + [len(runs)])]


def _fmt(iv: tuple[int, int]) -> str:
    return str(iv[0]) if iv[0] == iv[1] else f"{iv[0]}-{iv[1]}"


class _Blocks(dict):
    """Block -> the set of its runs. A set counted at once (RunSet.counted) keeps its blocks as
    spans of its sorted runs until one is asked for: a million runs made into sets were most of
    taking a saved tally (~0.3 s at 1,000,000 tasks), and most blocks are only laid out, from
    their span (sorted already), or not even that (the saved tally has their layouts)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[int] = []                       # sorted; the spans are slices of it
        self.spans: dict[int, tuple[int, int]] = {}     # block -> (first, end) in runs, no set yet

    def __missing__(self, b: int) -> set[int]:
        i, j = self.spans.pop(b, (0, 0))
        made = self[b] = set(self.runs[i:j])
        if not self.spans:
            self.runs = []
        return made

    def ids(self) -> set[int]:
        """Every block's number, its set made or not."""
        return self.keys() | self.spans.keys()

    def sorted_runs(self, b: int) -> list[int]:
        span = self.spans.get(b)
        return self.runs[span[0]:span[1]] if span else sorted(self[b])


class RunSet:
    """Runs with a count of tasks each; ``ranges()`` is summary.ranges of the sorted runs."""

    def __init__(self) -> None:
        self.tasks: dict[int, int] = {}
        self._blocks = _Blocks()
        self._cache: dict[int, tuple[list[tuple[int, int]], str]] = {}
        self._text: str | None = ""

    def __len__(self) -> int:
        return len(self.tasks)

    @classmethod
    def of(cls, runs) -> "RunSet":
        """The set of these runs (one per task), built at once."""
        return cls.counted(Counter(runs))

    @classmethod
    def counted(cls, tasks: dict[int, int]) -> "RunSet":
        """The set of these runs, given their tasks per run (which it keeps)."""
        rs = cls()
        rs.tasks = tasks
        keys = rs._blocks.runs = sorted(tasks)
        i = 0
        while i < len(keys):            # a block at a time (~1000 at 1,000,000 runs), not a run
            b = keys[i] >> RUN_BLOCK
            j = bisect_left(keys, (b + 1) << RUN_BLOCK, i)
            rs._blocks.spans[b] = (i, j)
            i = j
        rs._text = None
        return rs

    def add(self, run: int) -> None:
        n = self.tasks.get(run, 0)
        self.tasks[run] = n + 1
        if not n:
            b = run >> RUN_BLOCK
            self._blocks[b].add(run)
            self._cache.pop(b, None)
            self._text = None

    def remove(self, run: int) -> None:
        n = self.tasks.get(run, 0)
        if n > 1:
            self.tasks[run] = n - 1
        elif n == 1:
            del self.tasks[run]
            b = run >> RUN_BLOCK
            self._blocks[b].discard(run)
            if not self._blocks[b]:
                del self._blocks[b]
            self._cache.pop(b, None)
            self._text = None

    def without(self, runs: Counter) -> tuple[int, str]:
        """(runs, ranges) of this set less one task of a run for each time it is in ``runs``
        (the tasks listed one by one); the set itself is left as it is, and only the blocks
        those runs are in are laid out again (they sit near the start: few blocks)."""
        gone: dict[int, set[int]] = defaultdict(set)
        for r, n in runs.items():
            if 0 < self.tasks.get(r, 0) <= n:
                gone[r >> RUN_BLOCK].add(r)
        instead = {b: _layout(sorted(self._blocks[b] - g)) for b, g in gone.items()}
        return len(self.tasks) - sum(map(len, gone.values())), self._join(instead)

    def _block(self, b: int) -> tuple[list[tuple[int, int]], str]:
        c = self._cache.get(b)
        if c is None:
            c = self._cache[b] = _layout(self._blocks.sorted_runs(b))
        return c

    def ranges(self) -> str:
        """'1-3,5': only the blocks whose runs changed since the last call are looked at again."""
        if self._text is None:
            self._text = self._join({})
        return self._text

    def _join(self, instead: dict) -> str:
        """The blocks' ranges joined, merging a range that goes on into the next block;
        ``instead``: layouts to use for some blocks in place of theirs."""
        parts: list[str] = []
        cur = None
        for b in sorted(self._blocks.ids()):
            ivs, inner = instead[b] if b in instead else self._block(b)
            if not ivs:
                continue
            first = ivs[0]
            if cur is not None and first[0] == cur[1] + 1:
                cur = (cur[0], first[1])
            else:
                if cur is not None:
                    parts.append(_fmt(cur))
                cur = first
            if len(ivs) > 1:
                parts.append(_fmt(cur))
                if inner:
                    parts.append(inner)
                cur = ivs[-1]
        if cur is not None:
            parts.append(_fmt(cur))
        return ",".join(parts)


def _layout(runs: list[int]) -> tuple[list[tuple[int, int]], str]:
    """A block's ranges, and the text of all but its first and last (which may merge)."""
    ivs = _intervals(runs)
    return ivs, ",".join(map(_fmt, ivs[1:-1]))
