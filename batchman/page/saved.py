"""The page's tally saved (beside the status file), so that a new process need not count every task.

A process that writes the status file renders the page, and a new process has no tally: at
1,000,000 tasks counting them all takes ~3.5 s (``Tally._build``: a pass over scattered task
objects per field, a million runs per state hashed and sorted), most of a `batchman-daemon
oneshot` or of any writing command. What it would count is what the last process counted,
moved by the tasks changed since. So a process saves its tally (``dump``) and the next one
takes it (``load``) and brings it up to date with the same comparison a process's own tally
makes after the status file was read again (state, since, run, job and segment, position by
position: ``Tally.sync``).

The saved tally names the status it was made from: the store id and the generation. It is
used only for the same store and a generation not after the current one (a restored or
foreign status file, or a newer tally than the status, is counted afresh). LivePage's
periodic recount goes on across processes (an edit that keeps a task's state and ``since`` is
found then, as in a living daemon): a tally counted afresh or compared in full with every
task longer than ``max_age`` ago is not
``recent``, and the process that takes it compares it with every task in every field it counts
by (``Tally.unlike``: ~0.4 s at 1,000,000 tasks, where counting afresh and saving again took
~2.7 s of every writing command and oneshot a quarter of an hour apart). Anything that does
not decode is counted afresh; the file is a cache, never a source of truth (written with a
rename, not fsynced: a power cut loses it, never tears it).

Layout: one JSON line (the identity, read alone to decide), then the tally in msgpack. The
per-position strings are numbers into a table (one shared string each once loaded).

Pure: bytes in, a Tally out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterator

import msgspec

from batchman.page.bags import RunSet, SortedBag
from batchman.page.tally import Tally

FORM = 5        # changes when the tally's layout or its problem groups do: an older file is counted afresh


class Head(msgspec.Struct):
    form: int
    store_id: str
    generation: int
    built: float        # when the tally was last counted afresh or compared in full (LivePage's recount clock)
    n: int


class Body(msgspec.Struct, array_like=True):
    version: int
    names: list[str]                       # state, job and dataset names; below, numbers into it
    state: list[int]
    job: list[int]
    ds: list[int]
    since: list[float]
    run: list[int]
    seg: list[int | None]
    end: list[float | None]
    time: list[tuple[float, int] | None]
    counts: dict[str, int]
    by_job: dict[str, dict[str, int]]
    by_dataset: dict[str, dict[str, int]]
    members: dict[str, list[int]]
    runs: dict[str, dict[int, int]]
    layouts: dict[str, tuple[dict[int, tuple[list[tuple[int, int]], str]], str | None]]   # RunSet caches
    ordered: dict[str, list[int]]          # positions, in the bag's order
    groups: list[tuple[tuple[str, str, str], list[int]]]
    retried: list[int]
    ends_ok: list[float]
    ends_bad: list[float]
    times: list[tuple[float, int]]
    segmented: list[tuple[int, str, dict[str, int]]]   # (run, job) of segment tasks -> their states
    held: list[int]                        # positions of the tasks a person holds


_head = msgspec.json.Decoder(Head)
_body = msgspec.msgpack.Decoder(Body)


def dump(tally: Tally, store_id: str, generation: int, built: float) -> bytes:
    """The tally (in step with the tasks of that generation) as the saved file's bytes."""
    return b"".join(pieces(tally, store_id, generation, built))


def pieces(tally: Tally, store_id: str, generation: int, built: float) -> Iterator[bytes]:
    """``dump``'s bytes in pieces, each field of the body encoded when it is written (msgpack's
    array of them, as one Body makes): the lists a field is made of are not all held at once
    with the encoded whole (~110 MB above a daemon's memory at 1,000,000 tasks when it saved)."""
    yield msgspec.json.encode(Head(FORM, store_id, generation, built, tally.n)) + b"\n"
    yield _ARRAY
    for value in _fields(tally):
        yield _encode(value)


def _fields(t: Tally) -> Iterator:
    """Body's fields, in its order, each made when the one before was written."""
    names = sorted({*t._state, *t._job, *t._ds})
    num = {s: i for i, s in enumerate(names)}.__getitem__
    yield t.version
    yield names
    yield list(map(num, t._state))
    yield list(map(num, t._job))
    yield list(map(num, t._ds))
    yield from (t._since, t._run, t._seg, t._end, t._time)
    yield dict(t.counts)
    yield {s: dict(c) for s, c in t.by_job.items()}
    yield {s: dict(c) for s, c in t.by_dataset.items()}
    yield {s: sorted(m) for s, m in t.members.items()}
    yield {s: r.tasks for s, r in t.runs.items()}
    yield {s: (r._cache, r._text) for s, r in t.runs.items()}
    yield {s: [i for _, _, i in bag] for s, bag in t.ordered.items()}
    yield [(k, [i for _, _, i in bag]) for k, bag in t.groups.items()]
    yield sorted(t.retried)
    yield from (list(t.ends_ok), list(t.ends_bad), list(t.times))
    yield [(r, j, +c) for (r, j), c in t.segmented.items() if +c]
    yield sorted(t.held)


_encode = msgspec.msgpack.Encoder().encode
_N = len(Body.__struct_fields__)
_ARRAY = _encode([None] * _N)[:-_N]      # msgpack's array header for Body's fields (it is array_like)


def head_of(data: bytes) -> Head | None:
    """The identity line, or None when it is not one of this form."""
    try:
        head = _head.decode(data[:data.index(b"\n")])
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return head if head.form == FORM else None


def usable(head: Head | None, store_id: str, generation: int, tasks: int) -> bool:
    """Whether a saved tally may be brought up to date for this status of ``tasks`` tasks (see
    the module text; fewer tasks than it counted: a purge, counted afresh anyway)."""
    return head is not None and head.store_id == store_id and head.generation <= generation and head.n <= tasks


def recent(head: Head, now: float, max_age: float) -> bool:
    """Whether it was counted afresh (or checked in full) within ``max_age``: if not, the
    periodic recount is due, and the tally is compared with every task in full instead."""
    return abs(now - head.built) <= max_age


def load(box: list[bytes]) -> Tally | None:
    """The tally saved in the file's bytes, the one item of ``box`` (as it was, for
    ``Tally.sync`` to bring up to date: it takes a task list it has not seen for a file read
    again), or None if it does not decode. ``box`` is emptied, so that the bytes (40 MB at
    1,000,000 tasks) are freed once decoded, not held beside the tally."""
    try:
        whole = box.pop()
        body = memoryview(whole)[whole.index(b"\n") + 1:]
        del whole
        b = _body.decode(body)
        del body
        return _rebuilt(b)
    except (ValueError, IndexError, KeyError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def _rebuilt(b: Body) -> Tally:
    t = Tally()
    name = b.names.__getitem__
    t.n, t.version = len(b.state), b.version
    t._state, t._job, t._ds = list(map(name, b.state)), list(map(name, b.job)), list(map(name, b.ds))
    if not len(b.since) == len(b.run) == len(b.seg) == len(b.end) == len(b.time) == t.n == len(t._job) == len(t._ds):
        raise ValueError("the saved lists differ in length")
    t._since, t._run, t._seg, t._end, t._time = b.since, b.run, b.seg, b.end, b.time
    t.counts = Counter(b.counts)
    t.by_job = defaultdict(Counter, {s: Counter(c) for s, c in b.by_job.items()})
    t.by_dataset = defaultdict(Counter, {s: Counter(c) for s, c in b.by_dataset.items()})
    t.members = defaultdict(set, {s: set(m) for s, m in b.members.items()})
    t.runs = defaultdict(RunSet, {s: RunSet.counted(r) for s, r in b.runs.items()})
    for s, (cache, text) in b.layouts.items():      # the ranges texts made when it was saved
        t.runs[s]._cache, t.runs[s]._text = cache, text
    rows = _rows(t)
    t.ordered = defaultdict(SortedBag, {s: SortedBag(rows(pos), presorted=True) for s, pos in b.ordered.items()})
    for k, pos in b.groups:
        t.groups[k] = SortedBag(rows(pos), presorted=True)
        t.group_runs[k] = RunSet.of(map(t._run.__getitem__, pos))
        t._pkey.update(dict.fromkeys(pos, k))
    t.retried, t.held = set(b.retried), set(b.held)
    # (saved, not counted again from the states: a pass over a million segment tasks, ~0.3 s)
    t.segmented = defaultdict(Counter, {(r, j): Counter(c) for r, j, c in b.segmented})
    t.ends_ok, t.ends_bad = SortedBag(b.ends_ok, presorted=True), SortedBag(b.ends_bad, presorted=True)
    t.times = SortedBag(b.times, presorted=True)
    return t


def _rows(t: Tally):
    """Positions -> the (run, job, position) rows of the tally's bags, sharing its objects."""
    run, job = t._run.__getitem__, t._job.__getitem__
    return lambda pos: list(zip(map(run, pos), map(job, pos), pos))
