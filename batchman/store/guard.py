"""The rules that keep a status file from being replaced by less than it held, and a process
from believing a write that did not land (:func:`writing`).

A store remembers what it last read or wrote (its store id, generation, task count and
purge count). A file that then vanishes, comes back with another store id, or holds far
fewer tasks than that without a purge explaining it, is not "no tasks": it is refused with
:class:`StatusLost`, and the process's last good copy is kept beside the file. A file is
created only where none has ever been (no journal, no backup, no attempt directories).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from typing import Iterator

import msgspec

from batchman.core.model import READS, SCHEMA, Status
from batchman.store.errors import NoSpace, cannot_write, disk_full
from batchman.util.files import atomic_write

SHRINK_MIN = 20          # below this many tasks, any shrink is allowed
SHRINK_KEEP = 0.9        # a write must keep this share of the tasks not purged on purpose


@dataclass(frozen=True)
class Seen:
    """What a store last read or wrote: enough to recognise the same file later."""
    store_id: str
    generation: int
    tasks: int
    purged_total: int

    @classmethod
    def of(cls, status: Status) -> "Seen":
        return cls(status.store_id, status.generation, len(status.tasks), status.purged_total)


class _Count(msgspec.Struct):
    """The few fields of a status file the guard needs (a cheap partial decode)."""
    tasks: list[msgspec.Raw] = []
    purged_total: int = 0
    generation: int = 0


def generation_of(path: str) -> int:
    """The generation a status file (perhaps damaged) says it has; 0 if it cannot tell."""
    try:
        with open(path, "rb") as f:
            return msgspec.json.decode(f.read(), type=_Count).generation
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return 0


def shrunk_too_far(before: int, after: int, purged: int) -> bool:
    """True when going from ``before`` to ``after`` tasks loses more than the purges explain."""
    return before >= SHRINK_MIN and after < (before - purged) * SHRINK_KEEP


def missing_fields(status: Status) -> list[str]:
    """What a complete status file has and this one lacks (a file of ``{}`` lacks all)."""
    out = []
    if status.schema not in READS:
        out.append("the schema version")
    if not status.store_id:
        out.append("the store id")
    if status.generation < 1:
        out.append("the generation")
    return out


def stamp(status: Status) -> None:
    """Make a status complete before it is written."""
    status.schema = SCHEMA


def replaced(seen: Seen, now: Status) -> str:
    """Why the file now on disk is not the successor of the one this process saw ("" if it is)."""
    if now.store_id != seen.store_id:
        return (f"it was replaced by another status file (store id {now.store_id}, generation {now.generation}; "
                f"this process worked on store id {seen.store_id}, generation {seen.generation})")
    if now.generation < seen.generation:
        return (f"it went back from generation {seen.generation} to {now.generation} "
                f"(an older copy was put in its place while this process was using it)")
    purged = max(0, now.purged_total - seen.purged_total)
    if shrunk_too_far(seen.tasks, len(now.tasks), purged):
        return (f"it now holds {len(now.tasks)} tasks where this process saw {seen.tasks} "
                f"(generation {seen.generation} -> {now.generation}) and no purge explains it")
    return ""


def backup_counts(backup_path: str) -> tuple[int, int] | None:
    """(tasks, purged_total) of the backup file, None when there is no readable one."""
    try:
        with open(backup_path, "rb") as f:
            bak = msgspec.json.decode(f.read(), type=_Count)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return len(bak.tasks), bak.purged_total


def has_history(paths: list[str]) -> list[str]:
    """Which traces of a past status file exist: files, or directories with something in them."""
    out = []
    for p in paths:
        if not p:
            continue
        if os.path.isdir(p):
            try:
                if os.listdir(p):
                    out.append(p)
            except OSError:
                pass
        elif os.path.exists(p):
            out.append(p)
    return out


def keep_last_good(path: str, status: Status | None, what: str, encode) -> str:
    """Write this process's last good copy and a note saying what happened; returns the note's text."""
    base = f"{path}.daemon-{socket.gethostname()}-{os.getpid()}"
    saved = ""
    if status is not None:
        stamp(status)
        atomic_write(base + ".last", encode(status))
        saved = (f" The last good copy this process had (generation {status.generation}, "
                 f"{len(status.tasks)} tasks) is {base}.last.")
    text = (f"the status file {path}: {what}. This process did not write a new one and stopped acting.{saved} "
            f"Run `batchman recover` to rebuild it from the journal, the attempt directories and the batch system")
    atomic_write(base + ".txt", time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")
    return text


def safety_copy(path: str) -> str:
    """A dated copy of the file at ``path`` (a hard link: instant, and untouched by later writes)."""
    dest = f"{path}.safety-{time.strftime('%Y%m%d-%H%M%S')}"
    with contextlib.suppress(FileExistsError):
        os.link(path, dest)
    return dest


def page_header(status: Status) -> str:
    return f"<!-- batchman generation {status.generation} store {status.store_id} -->\n"


def html_generation(path: str) -> tuple[str, int]:
    """(store id, generation) a page was rendered from (its first line); ("", -1) if none."""
    try:
        with open(path, "rb") as f:
            first = f.readline(200)
    except OSError:
        return "", -1
    parts = first.decode("ascii", "replace").split()
    if not first.startswith(b"<!-- batchman generation"):
        return "", -1
    try:
        gen = int(parts[3])
    except (IndexError, ValueError):
        return "", -1
    sid = parts[5] if len(parts) > 6 and parts[4] == "store" else ""
    return sid, gen


@contextlib.contextmanager
def writing(store) -> Iterator[None]:
    """A write of ``store`` (store.Store): the file, its change log, journal or requests queue.
    If it fails, the store's copy, which already holds the write's changes, is dropped: the next
    read takes the file as it is, so nothing the write did not land is shown as done, nor
    written later by another transaction. A full disk or quota becomes :class:`NoSpace`, a
    StoreError saying where (every face shows those as a message)."""
    try:
        yield
    except OSError as e:
        store._snap = None
        if disk_full(e):
            raise NoSpace(cannot_write(e, store.path)) from e
        raise


@contextlib.contextmanager
def page_written(renderer) -> Iterator[None]:
    """The writing of a page ``renderer`` made: if it fails (a full disk), the renderer is told
    (``unwritten()``, batchman.page.live), so that it does not skip the next page as one showing
    what it believes is on disk already."""
    try:
        yield
    except BaseException:
        forget = getattr(renderer, "unwritten", None)
        if forget is not None:
            forget()
        raise
