"""Some tasks of a status file, without decoding the others (issue 18: at 1,000,000 tasks decoding
every task is most of the time of ``batchman list --state S --json``, of ``show RUN`` and ``kill
RUN``).

What is wanted is a ``Pick``: byte strings one of which a wanted task's JSON holds (``needles``),
and a test of the decoded task (``keep``). A task in state S holds the JSON string ``"S"``, quotes
included (a string that merely contains the word is another string: its quotes would be
escaped); a task of run N begins with ``{"run":N,``. The needles may sit elsewhere too (a past
attempt's state, a counter), so each task holding one is decoded and tested.

In a line of the snapshot's tasks (snapshot.py: 20,000 a line) marked by its writer, every
``{"run":`` begins a task, so the task a needle falls in is found around it (``marked``); another
line is decoded as raw JSON values (``msgspec.Raw``: where each task begins and ends, nothing
built). Then the change log is replayed over what was chosen, as every reader replays it
(follow.py), decoding only its tasks that hold a needle: a logged task replaces its older
version, kept or dropped by ``keep``; a purged key leaves. Last, the queued requests
(``<file>.requests``) are applied to the chosen tasks, as Store.read applies them to all.

The result holds the same tasks as the full read followed by the same selection; their order is
the file's, then those the log brought in (callers sort by run). More than MOST_RUNS runs are
found by every task's run instead (``choose_runs``: a regex pass over the file, ~0.3 s at
1,000,000 tasks, not two scans a run). ``new`` cannot be chosen so (it is the default state,
omitted from the file); a file of the old layout (one line), one whose lines do not decode or a
log that does not follow the file: ``read`` says None, and the caller reads the file whole,
which also names what is wrong. ``queue`` queues a person's request from such a read, or from
the command's own read of the tasks it names.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from itertools import accumulate
from operator import add
from typing import Callable, NamedTuple

import msgspec

from batchman.core import states as S
from batchman.core.model import Status, Task, task_key
from batchman.store import guard, log, requests, snapshot
from batchman.store.errors import CorruptStatus
from batchman.store.lines import Lines

_raw = msgspec.json.Decoder(list[msgspec.Raw])
_tasks = msgspec.json.Decoder(list[Task])


class _Again(Exception):
    """The file was compacted or replaced while it was read: read it again."""


def needles(states) -> list[bytes] | None:
    """The JSON strings whose presence lets a task be in ``states``; None when a state cannot be
    told so (``new``: the default, left out of the file) or none is given."""
    if not states or S.NEW in states:
        return None
    return [msgspec.json.encode(s) for s in sorted(set(states))]


def hits(array: bytes | bytearray, wanted: list[bytes], start: int = 0, end: int | None = None) -> list[int]:
    """Every position in ``array[start:end]`` where one of ``wanted`` begins (in ``array``)."""
    end = len(array) if end is None else end
    out = []
    for w in wanted:
        i = array.find(w, start, end)
        while i >= 0:
            out.append(i)
            i = array.find(w, i + 1, end)
    return out


def candidates(array: bytes | bytearray, wanted: list[bytes], start: int = 0, end: int | None = None) -> list[msgspec.Raw]:
    """The raw tasks of the JSON array of tasks ``array[start:end]`` that hold one of ``wanted``,
    in their order (views of ``array``: gone before it changes).

    msgspec writes the array with one comma between its tasks, so the task a position falls in
    follows from the tasks' lengths; an array written otherwise has each task looked into."""
    end = len(array) if end is None else end
    at = hits(array, wanted, start, end)
    if not at:
        return []
    raws = _raw.decode(memoryview(array)[start:end])
    ends = list(map(add, accumulate(map(len, raws)), range(start + 1, start + len(raws) + 1)))   # where each task ends
    if not raws or ends[-1] != end - 1:
        return [r for r in raws if any(w in bytes(r) for w in wanted)]
    return [raws[i] for i in sorted({bisect_right(ends, p) for p in at})]


def marked(array: bytes | bytearray, wanted: list[bytes], start: int, end: int) -> list[bytes] | None:
    """``candidates`` of a line of tasks written with snapshot.MARK (``array[start:end]`` is
    ``[ {"run":...},...]``): each ``{"run":`` in it begins a task, so the task a position falls in
    is found around it, the line not parsed."""
    out, last = [], -1
    for p in sorted(hits(array, wanted, start, end)):
        if p < last:
            continue                    # (in the task taken last)
        a = array.rfind(snapshot.TASK_BEGIN, start, p + len(snapshot.TASK_BEGIN))   # (a needle may be a task's beginning)
        if a < 0:
            return None                 # (not a line of tasks after all: it is parsed)
        last = array.find(snapshot.TASK_START, p, end) + 1 or end - 1
        out.append(array[a:last])
    return out


def choose(array: bytes | bytearray, wanted: list[bytes], keep: Callable[[Task], bool], start: int = 0,
           end: int | None = None) -> list[Task]:
    """The tasks of the JSON array of tasks ``array[start:end]`` that hold one of ``wanted`` and
    that ``keep`` keeps, only those decoded."""
    end = len(array) if end is None else end
    raws = marked(array, wanted, start, end) if array[start + 1:start + 2] == snapshot.MARK else None
    if raws is None:
        raws = candidates(array, wanted, start, end)
    if not raws:
        return []
    return [t for t in _tasks.decode(b"[" + b",".join(raws) + b"]") if keep(t)]


_RUN_AT = re.compile(rb'\{"run":(-?\d+)[,}]')     # a task's beginning and its run (snapshot.TASK_BEGIN)


def run_of(task_json: bytes) -> int | None:
    """The run of a task's JSON (its first field), None if it does not begin so."""
    m = _RUN_AT.match(task_json)
    return int(m.group(1)) if m else None


def choose_runs(array: bytes | bytearray, runs: frozenset, keep: Callable[[Task], bool], start: int = 0,
                end: int | None = None) -> list[Task]:
    """``choose`` for many runs: the tasks of ``runs`` in the JSON array of tasks ``array[start:end]``.
    Every run in it is read at once by a regex: a line that holds none of them is left there
    (every task begins so; an object in a counter may too, which only costs a closer look). In
    a marked line the tasks of those runs are then cut out around their beginning; another is
    parsed into its raw tasks, each of which begins with its run."""
    end = len(array) if end is None else end
    if not any(map(runs.__contains__, map(int, _RUN_AT.findall(array, start, end)))):
        return []
    if array[start + 1:start + 2] == snapshot.MARK:
        raws = []
        for m in _RUN_AT.finditer(array, start, end):
            if int(m.group(1)) in runs:
                a = m.start()
                raws.append(array[a:array.find(snapshot.TASK_START, a, end) + 1 or end - 1])
    else:
        raws = [r for r in _raw.decode(memoryview(array)[start:end]) if run_of(bytes(r)) in runs]
    if not raws:
        return []
    return [t for t in _tasks.decode(b"[" + b",".join(raws) + b"]") if keep(t)]


class _Sparse(msgspec.Struct):
    """A change log record with its tasks left undecoded (a record of a daemon round at
    1,000,000 tasks holds ~10,000: a log grown to a quarter of the file, ~250,000)."""
    g: int
    s: str
    head: Status
    put: list[msgspec.Raw] = []
    gone: list[str] = []


class _Key(msgspec.Struct):
    """A task's key fields alone (the rest of its JSON is skipped, not decoded)."""
    run: int
    job: str = "analysis"
    seg: int | None = None


_sparse = msgspec.json.Decoder(_Sparse)
_task, _key = msgspec.json.Decoder(Task), msgspec.json.Decoder(_Key)


def replay(head: Status, chosen: dict[str, Task], lines: list[bytes], pick: Pick) -> Status:
    """The status's own fields after the log's ``lines`` (the whole lines after its first), with
    ``chosen`` (key -> task ``pick`` picks) brought up to date in place: a task of a record is
    decoded only when it holds one of the needles; of the others, only their key, when some
    task is chosen. Raises _Again when a line does not follow the generation before it,
    msgspec errors for a damaged one."""
    for line in lines:
        rec = _sparse.decode(line)
        if rec.g <= head.generation:
            continue
        if rec.s != head.store_id or rec.g != head.generation + 1:
            raise _Again()
        for k in rec.gone:
            chosen.pop(k, None)
        for raw in rec.put if pick.needles or pick.many else ():
            data = bytes(raw)
            maybe = run_of(data) in pick.runs if pick.many else any(w in data for w in pick.needles)
            t = _task.decode(data) if maybe else None
            if t is not None and pick.keep(t):
                chosen[t.key] = t
            elif chosen:
                k = t or _key.decode(data)
                chosen.pop(task_key(k.run, k.job, k.seg), None)
        head = rec.head
    return head


class Pick(NamedTuple):
    """Which tasks a partial read keeps: those that hold one of ``needles`` in their JSON and
    that ``keep`` keeps once decoded."""
    needles: list[bytes]
    keep: Callable[[Task], bool]
    runs: frozenset = frozenset()       # by_runs: the runs (a read of them is kept for queue)
    many: bool = False                  # by_runs of more than MOST_RUNS: every task's run is read


def by_states(states) -> Pick | None:
    """The tasks in ``states``; None when they cannot be told from the bytes (``needles``)."""
    wanted, chosen = needles(states), frozenset(states)
    return None if wanted is None else Pick(wanted, lambda t: t.state in chosen)


MOST_RUNS = 4       # by needles: two scans of the file a run (~0.15 s each at 1,000,000 tasks here)


def by_runs(runs) -> Pick | None:
    """The tasks of ``runs`` (a task's JSON begins with its run): up to MOST_RUNS found by needles,
    more by every task's run (``many``); None for no run."""
    runs = frozenset(runs or ())
    if not runs:
        return None
    if len(runs) > MOST_RUNS:
        return Pick([], lambda t: t.run in runs, runs, many=True)
    return Pick([b'{"run":%d%s' % (r, end) for r in sorted(runs) for end in (b",", b"}")],
                lambda t: t.run in runs, runs)


# The last read of runs or states in this process, by status file: (``seen`` before it, its runs,
# the status). A command reads the runs it names (or the tasks in the states it names) to choose
# its tasks; ``queue`` then starts from that read instead of a second one (~0.5 s at 1,000,000
# tasks for a few runs, ~4 s for the 50,000 runs of a state), if nothing changed since.
_LAST: dict[str, tuple[tuple, frozenset, Status]] = {}


HEAD = Pick([], lambda t: False)        # no task: the status's own fields (its daemons, generation)


def read(store, pick: Pick | None) -> Status | None:
    """The status with only the tasks ``pick`` picks (see the module's doc), the change log and
    the queued requests applied; None when it must be read whole."""
    if pick is None:
        return None
    for _ in range(3):
        before = seen(store)
        try:
            status = _read_once(store.path, store.log_path, pick)
        except _Again:
            continue
        except (OSError, CorruptStatus, msgspec.DecodeError, msgspec.ValidationError, snapshot.Cut):
            return None
        if status is not None and status.tasks and requests.signature(store.requests_path) is not None:
            requests.apply_requests(status, requests.read_lines(store.requests_path), status.index())
        if status is not None and (pick.runs or pick.needles):
            _LAST[store.path] = (before, pick.runs, status)
        return status
    return None


def _read_once(path: str, log_path: str, pick: Pick) -> Status | None:
    with open(path, "rb", buffering=0) as f:
        lines = Lines(f)
        head = snapshot.head(lines)
        if head is None or guard.missing_fields(head):
            return None
        chosen = {}
        for buf, a, b in snapshot.task_spans(lines) if pick.needles or pick.many else ():
            for t in (choose_runs(buf, pick.runs, pick.keep, a, b) if pick.many
                      else choose(buf, pick.needles, pick.keep, a, b)):
                chosen[t.key] = t
    tail = log.read_from(log_path, 0, None)
    if tail is not None and tail.header is not None and tail.header.s == head.store_id:
        if tail.header.base > head.generation:
            raise _Again()          # compacted past the file read: read the new one
        head = replay(head, chosen, tail.lines, pick)
    return msgspec.structs.replace(head, tasks=list(chosen.values()))


def seen(store) -> tuple:
    """What a partial read depends on, as it is now: the status file, its change log and the
    queued requests (each file's inode, size and time; None when absent)."""
    out = []
    for path in (store.path, store.log_path, store.requests_path):
        try:
            st = os.stat(path)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def queue(store, keys: set[str], field: str, value, allowed, command: str) -> int | None:
    """``Store.queue_requests`` for the tasks of a few runs, from a partial read instead of the
    whole file (`batchman kill 1234` at 1,000,000 tasks); None when it must read whole: more
    runs, a file that cannot be read so, other writers writing at each try.

    The file is read without the lock (or the command's read of these runs is taken: ``_LAST``);
    under it the line is appended only if the status file, its log and the queue are as they
    were before that read (``seen``), so the states checked and the generation the line names
    are those of now. The lock is held for the append."""
    runs = {k.split(".", 1)[0] for k in keys}
    if not all(r.isdigit() for r in runs):
        return None
    pick = by_runs(map(int, runs))
    last = _LAST.pop(store.path, None)
    for _ in range(2):
        if last is not None and pick is not None and (last[1] >= pick.runs or keys <= {t.key for t in last[2].tasks}):
            (before, _, status), last = last, None      # (the command's own read of these runs, or of these tasks)
        else:
            before, status = seen(store), read(store, pick)
        if status is None:
            return None
        with store.locked(command):
            if seen(store) != before:
                continue
            idx = {t.key: t for t in status.tasks}
            chosen = sorted(k for k in keys if k in idx and (allowed is None or idx[k].state in allowed))
            if chosen:
                requests.append(store.requests_path, status.generation, field, value, chosen, command)
        return len(chosen)
    return None
