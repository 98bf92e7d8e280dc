"""What one write changed, as a record of the change log, and how a reader applies it. No I/O.

A record holds the status's own fields (everything but the tasks: small), the tasks added or
changed (whole), and the keys of the tasks removed. Which tasks changed is known without
comparing them: setting a field of a Task puts it in ``model.CHANGED`` (see model.py).
"""

from __future__ import annotations

import msgspec

from batchman.core import model
from batchman.core.model import Status, Task
from batchman.core.taskindex import TaskIndex


class Record(msgspec.Struct, omit_defaults=True):
    """One write in the change log (one line of ``<file>.log``)."""
    g: int                                   # the generation this write made
    s: str                                   # the store id
    head: Status                             # the status's own fields (its tasks are not here)
    put: list[Task] = []                     # tasks added or changed, whole
    gone: list[str] = []                     # keys of tasks removed (purged)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def encode(rec: Record) -> bytes:
    return _encoder.encode(rec) + b"\n"


def decode(line: bytes) -> Record:
    """Raises msgspec.DecodeError / ValidationError for a damaged line."""
    return _decoder.decode(line)


def head_of(status: Status) -> Status:
    """The status without its tasks (a shallow copy: the fields are shared, not copied)."""
    return msgspec.structs.replace(status, tasks=[])


def collect(before_n: int, before_list: list[Task], before: TaskIndex,
            work: Status) -> tuple[list[Task], list[str]]:
    """The tasks ``work`` adds or changes since a transaction began (with ``before_n`` tasks,
    the list ``before_list`` and the index ``before``), and the keys it removes; takes them out
    of ``model.CHANGED``.

    Appending to the same list and setting fields cost what changed; a new list (a purge) is
    compared key by key, which visits every task once.
    """
    tasks = work.tasks
    put: dict[str, Task] = {}
    gone: list[str] = []
    if tasks is before_list and len(tasks) >= before_n:
        for t in tasks[before_n:]:
            put[t.key] = t
    else:
        now = work.index()
        gone = [t.key for t in before.values() if now.of(t) is None]
        put.update((t.key, t) for t in now.values() if before.of(t) is not t)
    if model.CHANGED:
        idx = work.index()
        for i, t in list(model.CHANGED.items()):
            if idx.of(t) is t:
                put.setdefault(t.key, t)
                del model.CHANGED[i]
    return list(put.values()), gone


def forget_stale(limit: int = 100_000) -> None:
    """Drop tasks from ``model.CHANGED`` that nothing else holds any more (a replaced copy of a
    task, a status thrown away after an error), once there are many of them."""
    import sys
    if len(model.CHANGED) <= limit:
        return
    for i, t in list(model.CHANGED.items()):
        if sys.getrefcount(t) <= 3:         # the dict's reference, ``t`` and the call's argument
            del model.CHANGED[i]


def apply(status: Status, rec: Record, idx: TaskIndex) -> Status:
    """The status after ``rec``: a new Status object with a new task list (so a holder of the old
    one sees that something changed), sharing the unchanged tasks.

    ``idx`` (key -> task of ``status``, in the order of its list) is updated in place and given
    to the new status: a changed task keeps its place, a new one goes last, as in the writer's
    list. Rebuilding the list from it is one pass over references (~10 ms at 1M tasks).
    """
    for k in rec.gone:
        idx.pop(k, None)
    idx.add(rec.put)
    new = msgspec.structs.replace(rec.head, tasks=list(idx.values()))
    new.set_index(idx)
    return new
