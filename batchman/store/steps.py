"""``Store.read`` in steps, for a reader with other work between them (the TUI at 1,000,000
tasks: its first screen and its keys while the rest of the file is decoded; issue 18)."""

from __future__ import annotations

from batchman.core.model import Status
from batchman.store import follow


def due(store) -> bool:
    """Whether ``store.read()`` would decode the status file whole now: another file than the one
    it follows, and not a compaction of it (another writer rewrote it, ``recover``, a schema
    upgrade). A reader with keys to answer (the TUI) then reads it with ``read_steps`` instead."""
    sig = store._sig()
    if sig is None or (store._snap is not None and store._snap.sig == sig):
        return False
    return store._snap is None or not follow.compaction_of(store._snap, store.path, sig)


def read_steps(store):
    """A generator yielding (bytes read, the file's size, the status decoded so far) a line of
    tasks at a time, whose value is ``store.read()``'s status: the file decoded so becomes the
    one the store follows (its change log and queued requests applied by ``read``, as always).
    A file replaced meanwhile is read in steps again (twice at most), then followed as ``read``
    follows any (a compaction of what was decoded is taken as it is, another file read whole)."""
    for _ in range(3):          # a file replaced again while it was read: read in steps again
        if not due(store):
            break
        sig = store._sig()
        copy = yield from follow.load_steps(store.path, store.backup, sig)
        if store._snap is None or store._snap.sig != sig:
            store._snap = copy
    status: Status = store.read()
    return status
