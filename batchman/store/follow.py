"""A process's copy of the status, kept current: the status file read whole once, then the
change log's new lines applied (changes.apply), and a compaction of what it already has taken
without decoding anything. No lock here: the file is replaced atomically and the log is
appended to, so a reader needs none."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Callable

import msgspec

from batchman.core import model
from batchman.core.model import Status
from batchman.store import changes, guard, log, snapshot
from batchman.store.errors import CorruptStatus
from batchman.store.replays import Replays


@dataclass
class Copy:
    """This process's copy of the status: the status file it follows (``sig``, ``base``: the
    file's own generation) plus the change log's whole lines applied after it."""
    sig: tuple
    status: Status
    base: int = 0
    log_ino: int | None = None      # the change log followed (None: none yet)
    log_off: int = 0                # bytes of it applied (whole lines only)
    log_sid: str = ""               # the store id its first line names
    layout: bool = False            # the file has the snapshot layout (its first line alone)
    requests_sig: tuple | None = None     # the requests file as last applied to ``status``

    def index(self) -> dict:
        """Task key -> task of this copy (kept current as changes are applied)."""
        return self.status.index()


class Reload(Exception):
    """The change log starts after what this process has: read the status file again."""


class LogMissing(Exception):
    """The change log is gone while this process has changes after the file's generation."""


def compaction_of(copy: Copy, path: str, sig: tuple) -> bool:
    """Whether the file now at ``path`` is a compaction of what ``copy`` already has (same
    store, a generation between the file it follows and its own); if so ``copy`` follows it."""
    head = snapshot.peek(path)
    if (head is not None and head.store_id == copy.status.store_id
            and copy.base <= head.generation <= copy.status.generation):
        copy.sig, copy.base, copy.layout = sig, head.generation, True
        return True
    return False


def load(path: str, backup: str, sig: tuple, progress: Callable[[int, int], None] | None = None) -> Copy:
    """Read the status file whole (CorruptStatus, saying what to do, when it cannot be);
    ``progress``: snapshot.read_stream's."""
    rebuild = ("`batchman recover` rebuilds it from the journal, the attempt directories and the batch "
               "system (keeping this file)")
    hint = (f"The previous good copy is {backup}: inspect it and, if right, restore it with "
            f"cp {backup} {path}; or {rebuild}") if os.path.exists(backup) else \
        f"There is no backup copy: {rebuild}"
    try:
        status, layout = _decode_untracked(path, hint, progress)
    except OSError as e:
        raise CorruptStatus(f"cannot read the status file {path}: {e.strerror}") from None
    lacks = guard.missing_fields(status)
    if lacks:
        raise CorruptStatus(f"the status file {path} is unreadable: it lacks {' and '.join(lacks)}; "
                            f"it was left as it is. {hint}")
    return Copy(sig, status, base=status.generation, layout=layout)


def follow_log(copy: Copy, log_path: str, replays: Replays | None = None) -> None:
    """Apply the change log's whole lines not applied yet (``replays``: told what each did)."""
    tail = log.read_from(log_path, copy.log_off, copy.log_ino)
    status = copy.status
    if tail is None:
        if status.generation > copy.base:
            raise LogMissing()
        copy.log_ino, copy.log_off, copy.log_sid = None, 0, ""
        return
    if tail.header is not None:
        if tail.header.s != status.store_id:       # a log left by another status file: not ours
            copy.log_ino, copy.log_off, copy.log_sid = tail.ino, tail.offset, tail.header.s
            return
        if tail.header.base > status.generation:
            raise Reload()          # compacted past what we have since we looked at the file
        copy.log_sid = tail.header.s
    elif copy.log_sid != status.store_id:
        copy.log_ino, copy.log_off = tail.ino, tail.offset
        return
    for line in tail.lines:
        try:
            rec = changes.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise CorruptStatus(f"the change log {log_path} has a damaged line ({e}); it was left as "
                                f"it is. `batchman recover` rebuilds the status from the journal") from None
        if rec.g <= status.generation:
            continue
        if rec.s != status.store_id or rec.g != status.generation + 1:
            raise Reload()
        idx, before = status.index(), status.tasks
        swapped = [(o, t) for t in rec.put if (o := idx.of(t)) is not None] if replays is not None and replays.wanted() else []
        status = changes.apply(status, rec, idx)
        if replays is not None:
            replays.note(before, status.tasks, swapped, bool(rec.gone))
    copy.status, copy.log_ino, copy.log_off = status, tail.ino, tail.offset


def _decode_untracked(path: str, hint: str, progress: Callable[[int, int], None] | None = None) -> tuple[Status, bool]:
    """Decode a status file without the cyclic garbage collector ever walking it.

    A status of 100,000 tasks is about a million small objects and none of them is in a
    reference cycle (plain data: reference counting frees them). The tasks and their segments
    are structs the collector does not track at all (``gc=False``); what remains (their lists
    and dicts) is decoded with the collector off and moved to its permanent generation
    (``gc.freeze``). Before that one full collection empties what is there now, so no garbage
    cycle of before is frozen with it for ever. A file of the snapshot layout is decoded a line
    at a time (the second value says so); any other, or one whose lines do not decode, whole,
    which names what is wrong.
    """
    gc_was = gc.isenabled()
    if gc_was:
        gc.collect()
    gc.disable()
    try:
        status = snapshot.read_stream(path, progress)
        if status is not None and status.schema in model.READS:
            return status, True
        with open(path, "rb") as f:
            data = f.read()
        return model.decode(data), False
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise CorruptStatus(f"the status file {path} is unreadable ({e}); it was left as it is. {hint}") from None
    finally:
        if gc_was:
            gc.freeze()
            gc.enable()


def load_steps(path: str, backup: str, sig: tuple):
    """``load`` a line of tasks at a time (snapshot.read_steps: a generator yielding its progress,
    whose value is the Copy). The collector stays off between the steps, as in one decode
    (``_decode_untracked``); a file of another layout, or one that does not decode, is then read
    whole by ``load``, which names what is wrong."""
    gc_was = gc.isenabled()
    if gc_was:
        gc.collect()
    gc.disable()
    try:
        status = yield from snapshot.read_steps(path)
    except OSError:
        status = None
    finally:
        if gc_was:
            gc.freeze()
            gc.enable()
    if status is None or status.schema not in model.READS or guard.missing_fields(status):
        return load(path, backup, sig)
    return Copy(sig, status, base=status.generation, layout=True)
