"""A transaction made ready before the lock is taken (issue 18: the lock held under 100 ms).

    result = ahead.update(store, who, body, touches)

``body(status)`` changes the status as inside ``store.transaction`` and returns a result. It
runs first without the lock, on this process's copy; the record of what it changed and its
journal lines are encoded then too. Under the lock only a look at whether anybody wrote since
the copy was read (the status file, its change log, the requests queue) and the two appends
(journal, then change log, each fsynced) remain. If somebody did write, the body's changes
are undone and it runs again inside ``store.transaction``, the lock held throughout, as any
transaction: nothing of the first run reaches the file, so a reader never sees half of it,
and intents are on disk before the lock is released, as before.

``touches``: the tasks the body may change in place (it may also append tasks); what they
were before is kept to undo the body. ``intents``: tasks of which it may only replace the
intent (the daemon's done intents cleared): only that is kept, not a copy of each. When it
changed any other task an undo is impossible: then the copy is dropped and read again. A
small status file (rewritten whole, not logged) is written under the lock as ever.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, TypeVar

import msgspec

from batchman.core import model
from batchman.core.model import Status, Task
from batchman.store import changes, compact, guard, journal, log, requests

R = TypeVar("R")


def update(store, command: str, body: Callable[[Status], R], touches: Iterable[Task],
           timeout: float | None = None, intents: Iterable[Task] = ()) -> R:
    from batchman.store import store as store_mod      # (its CHECK: the tests set it)
    status = store.read() if store.exists() else None
    snap = store._snap
    if status is None or not store._log_mode(snap, status):
        return locked(store, command, body, timeout)
    undo = Undo(status, touches, intents)
    work = store._begin(status)
    try:
        result = body(work)
    except BaseException:
        undo.run(store)
        raise
    undo.ran()
    if store._abort or guard.shrunk_too_far(undo.n, len(work.tasks), store._purged):
        undo.run(store)
        return result if store._abort else locked(store, command, body, timeout)   # refused there
    for hook in store.hooks_before_write:
        hook(work, status)
    rec = store.next_record(work)
    lines = journal.lines(store._pending, work.generation, work.store_id)
    line = changes.encode(rec)
    with store.locked(command, timeout):
        done = unchanged(store, snap)
        if done:
            if store_mod.CHECK:
                compact.check_write(store, rec, work)
            with guard.writing(store):
                append(store, snap, work, line, lines)
    if not done:
        undo.run(store)
        return locked(store, command, body, timeout)
    store.html_after(work)
    return result


def locked(store, command: str, body: Callable[[Status], R], timeout: float | None = None) -> R:
    """``body`` in an ordinary transaction (the lock held throughout)."""
    with store.transaction(command, timeout) as st:
        return body(st)


def unchanged(store, snap) -> bool:
    """Nobody wrote since ``snap`` was read: the same status file, the change log as long as
    what was applied of it, no request queued since the last merge."""
    if store._sig() != snap.sig:
        return False
    try:
        st = os.stat(store.log_path)
        if snap.log_ino is None or (st.st_ino, st.st_size) != (snap.log_ino, snap.log_off):
            return False
    except FileNotFoundError:
        if snap.log_ino is not None:
            return False
    rsig = requests.signature(store.requests_path)
    return rsig is None or rsig == snap.requests_sig


def append(store, snap, status: Status, line: bytes, lines: bytes) -> None:
    """Under the lock: the journal lines, then the write's line in the change log (the write
    counts from then on); this process's copy ``snap`` becomes ``status``."""
    journal.append(store.journal_path, lines)
    store._pending = []
    if snap.log_ino is None or snap.log_sid != status.store_id:
        snap.log_off = log.create(store.log_path, status.store_id, snap.base)
        snap.log_sid = status.store_id
    snap.log_off = log.append(store.log_path, line, snap.log_off)
    snap.log_ino = os.stat(store.log_path).st_ino
    snap.status = status
    requests.forget(store.requests_path)   # read() applied them: they are in the file now
    store._remember(snap)


def _copy(t: Task) -> Task:
    """A task as it is now, kept apart from what changes it in place (its segments' flags,
    its intent's actions)."""
    return msgspec.structs.replace(
        t, segments=[msgspec.structs.replace(s) for s in t.segments] if t.segments else t.segments,
        intent=None if t.intent is None else msgspec.structs.replace(t.intent, actions=list(t.intent.actions)))


class Undo:
    """What a body run ahead of the lock changed, and how to put it back."""

    def __init__(self, status: Status, touches: Iterable[Task], intents: Iterable[Task] = ()):
        self.tasks, self.n, self.idx = status.tasks, len(status.tasks), status.index()
        self.saved = {id(t): (t, _copy(t)) for t in touches}
        self.intents = {id(t): (t, t.intent) for t in intents if id(t) not in self.saved}
        # Changes made before the body (not written yet; any store's copy in this process) are
        # set aside, so that model.CHANGED shows what the body changes; they stay changes.
        self.pre = dict(model.CHANGED)
        model.CHANGED.clear()
        self.changed: list[Task] | None = None

    def ran(self) -> None:
        """The body is done: note what it changed, and put the changes of before back."""
        self.changed = list(model.CHANGED.values())
        model.CHANGED.update(self.pre)

    def run(self, store) -> None:
        """Put the copy back as it was before the body; drop it if that cannot be done."""
        store._before, store._pending = None, []
        changed = list(model.CHANGED.values()) if self.changed is None else self.changed
        appended = {id(t) for t in self.tasks[self.n:]}
        if any(id(t) not in self.saved and id(t) not in self.intents and id(t) not in appended for t in changed):
            store._snap = None        # it changed a task it did not declare: read the file again
        for t, old in self.saved.values():
            for f in Task.__struct_fields__:
                msgspec.Struct.__setattr__(t, f, getattr(old, f))
            model.changed_in_place(t)
        for t, intent in self.intents.values():
            msgspec.Struct.__setattr__(t, "intent", intent)
            model.changed_in_place(t)
        for t in self.tasks[self.n:]:
            if self.idx.of(t) is t:
                del self.idx[t.key]
        del self.tasks[self.n:]
        model.CHANGED.clear()
        model.CHANGED.update(self.pre)
