"""The long operations on a Store from outside (its copy, its lock, its paths): folding the
change log into a new status file, putting a rebuilt file in place (recover), and the tests'
check of every write. store.py keeps the rules of reading and writing."""

from __future__ import annotations

import contextlib
import os

import msgspec

from batchman.core import model
from batchman.core.model import Status
from batchman.store import changes, guard, log, snapshot
from batchman.store.follow import Copy
from batchman.store.guard import html_generation
from batchman.util import files


def crash_point(name: str) -> None:
    """(tests) Die here, as a SIGKILL would, when BATCHMAN_STORE_CRASH names this point."""
    if os.environ.get("BATCHMAN_STORE_CRASH") == name:
        os.kill(os.getpid(), 9)


def compact(store) -> bool:
    """Write the status file anew with the change log's lines folded in, and start a new log.

    The long part (writing the file) happens without the lock; under the lock only the log's
    lines written meanwhile are carried to the new log and both files are renamed into place:
    first the file (a reader then skips the old log's lines it already has), then the log.
    A crash at any point leaves a file and a log that together hold every write."""
    status = store.read()
    copy = store._snap
    if copy is None or copy.log_ino is None or not store.exists():
        return False
    start, sig = copy.log_off, copy.sig
    tmp = snapshot.write_temp(store.path, status)
    crash_point("compact-written")
    try:
        with store.locked("batchman compact"):
            store.read()
            if store._snap is not copy or copy.sig != sig:
                return False        # another process compacted or rewrote the file meanwhile
            tail = log.read_range(store.log_path, start, copy.log_off)
            keep = store._keep_backup((len(status.tasks), status.purged_total))
            files.put_in_place(tmp, store.path, store.backup if keep else None)
            tmp = ""
            crash_point("compact-file-renamed")
            copy.log_off = log.create(store.log_path, status.store_id, status.generation, tail)
            copy.log_ino, copy.sig, copy.base = os.stat(store.log_path).st_ino, store._sig(), status.generation
        return True
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def check_write(store, rec: changes.Record, status: Status) -> None:
    """(BATCHMAN_STORE_CHECK, set by the tests) The file as it is on disk, with this write's
    record applied, must be what this process is writing: a change the record misses (a list of
    a task changed in place without ``model.touch``) fails here instead of being lost."""
    if not store.exists():
        return
    disk = type(store)(store.path)
    before = disk.read()
    after = changes.apply(before, changes.decode(changes.encode(rec)), before.index())
    want = msgspec.json.decode(model.encode(status), type=Status)     # as a reader decodes it
    if model.encode(after) != model.encode(want):
        mine = {t.key: model.encode(t) for t in want.tasks}
        theirs = {t.key: model.encode(t) for t in after.tasks}
        diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))[:5]
        raise AssertionError(f"the write of generation {status.generation} misses changes of tasks {diff} "
                             f"(same order: {list(mine) == list(theirs)}); a list or dict of a task was "
                             f"changed in place without model.touch(task)")


def replace_with(store, status: Status) -> None:
    """Put a rebuilt status in place of a lost or unreadable file (``batchman recover``; the
    caller holds the lock and has kept the originals). The generation continues after the
    journal's; the old backup and change log are removed, since they would mislead."""
    status.generation = _next_generation(store, status.store_id)
    guard.stamp(status)
    snapshot.write(store.path, status)
    log.remove(store.log_path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(store.backup)
    store._backup_seen = None
    store._remember(Copy(store._sig(), status, base=status.generation, layout=True))


def _next_generation(store, store_id: str) -> int:
    """A generation above any this store id has had: in the journal, the files, the page
    (so no reader or page takes the rebuilt file for one it has already seen)."""
    gens = [e.get("g", 0) for e in store.history()]
    gens += [guard.generation_of(p) for p in (store.path, store.backup)]
    if store._seen is not None:
        gens.append(store._seen.generation)
    if store.html_path:
        sid, gen = html_generation(store.html_path)
        gens.append(gen if sid == store_id else 0)
    return max(gens, default=0) + 1
