"""The status file: read it, change it in a transaction, write it crash-safely, publish the page.

``with store.transaction(who) as status:`` reads the status (follow.py: the file once, then
the change log's new lines), takes the lock (lock.py), catches up with what was written
meanwhile, yields it, and unless the body called ``store.abort()`` writes what changed: the
transitions to the journal first (journal.py), then one line to the change log (log.py,
changes.py) or, for a small file, the whole file (snapshot.py) with the current one
hard-linked to ``<file>.bak``. The HTML page is rendered after the lock is released, under a
lock of its own. The rules that keep a file from being replaced by less than it held (a
vanished or replaced file, ``{}``, a shrink) are in guard.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from typing import Callable, Iterator

import msgspec

from batchman.core import model
from batchman.core.model import Status
from batchman.store import ahead, changes, compact, follow, guard, journal, log, partial, replays, requests, snapshot, touched
from batchman.store.errors import (  # noqa: F401 - re-exported: callers import them from here
    CorruptStatus, LockTimeout, ShrinkRefused, StatusLost, StoreError)
from batchman.store.guard import html_generation  # noqa: F401
from batchman.store.journal import Transition
from batchman.store.lock import Lock, check_locking, page_lock, whoami  # noqa: F401
from batchman.store.requests import QUEUEABLE, apply_requests  # noqa: F401
from batchman.util.files import atomic_write


# A status file this big (bytes) gets its changes appended to a log instead of being rewritten
# (about 20,000 tasks); the log is folded into a new file once it is a quarter of the file.
LOG_FROM = int(os.environ.get("BATCHMAN_STORE_LOG_FROM", 8 << 20))
COMPACT_MIN = int(os.environ.get("BATCHMAN_STORE_COMPACT_MIN", 4 << 20))
CHECK = bool(os.environ.get("BATCHMAN_STORE_CHECK"))


def new_store_id() -> str:
    return secrets.token_hex(3)


class Store:
    """``traces``: paths whose existence shows a status file has been here (e.g. the attempt
    directories); with the journal and the backup, they forbid creating a new file."""

    def __init__(self, path: str, lock_timeout: float = 30.0,
                 html: Callable[[Status], str] | None = None, html_path: str = "", traces: tuple = ()):
        self.path = os.path.abspath(path)
        self.backup = self.path + ".bak"
        self.journal_path = self.path + ".journal"
        self.requests_path = self.path + ".requests"
        self.log_path = self.path + ".log"
        self.lock_timeout = lock_timeout
        self.render_html, self.html_path = html, html_path
        self.traces = list(traces)
        self._lock = Lock(self.path, lock_timeout)
        self.lock_path, self.who_path = self._lock.path, self._lock.who_path
        self._snap: follow.Copy | None = None
        self.progress = None            # told how far a read of the whole file has come (util/progress.py)
        self._seen: guard.Seen | None = None      # the file as this process last read or wrote it
        self._good: Status | None = None          # ... and its content, kept if the file is lost
        self._backup_seen: tuple | None = None    # (signature, tasks, purged_total) of the backup
        self._lost_note: tuple[str, str] | None = None    # (what happened, the message) once lost
        self._pending: list[Transition] = []
        self._before: tuple | None = None     # (tasks, their list, their index) when the transaction began
        self._abort = False
        self._purged = 0
        self.hooks_before_write: list[Callable[[Status, Status | None], None]] = []
        # Interactive writers (the TUI) set this: the page is then written by flush_html(),
        # called when the screen is idle, instead of before the action returns.
        self.defer_html = False
        self._html_due: Status | None = None
        self._touched = touched.Touched(self)   # the tasks written since the last page, for a page that takes them
        self.replays = replays.Replays(self._touched)   # what another writer's records replaced (store/replays.py)

    @property
    def last_lock_seconds(self) -> float:
        """How long the last transaction held the lock."""
        return self._lock.last_seconds

    @property
    def max_lock_seconds(self) -> float:
        """The longest hold so far (set it to 0 to start measuring again)."""
        return self._lock.max_seconds

    @max_lock_seconds.setter
    def max_lock_seconds(self, value: float) -> None:
        self._lock.max_seconds = value

    # ---- reading -------------------------------------------------------------------
    @staticmethod
    def _sig_of(path: str) -> tuple | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _sig(self) -> tuple | None:
        return self._sig_of(self.path)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def read(self) -> Status:
        """The current status, without the lock: the status file (decoded again only when it is
        not the one this process follows) and the change log's lines appended since."""
        for _ in range(3):
            sig = self._sig()
            if sig is None:
                return self._absent()
            try:
                if self._snap is None or self._snap.sig != sig:
                    self._follow_file(sig)
                follow.follow_log(self._snap, self.log_path, self.replays)
                break
            except follow.Reload:
                self._snap = None
            except follow.LogMissing:
                raise self._lost(f"its change log {self.log_path} is missing: the changes after generation "
                                 f"{self._snap.base} are only in this process") from None
        else:
            raise CorruptStatus(f"the status file {self.path} and its change log {self.log_path} keep "
                                f"changing under this process; try again")
        why = guard.replaced(self._seen, self._snap.status) if self._seen is not None else ""
        if why:
            raise self._lost(why)
        self._remember(self._snap)
        self._overlay(self._snap)
        return self._snap.status

    def _follow_file(self, sig: tuple) -> None:
        """Another file than the one followed: a compaction of this copy taken as it is, else read whole."""
        if self._snap is not None and follow.compaction_of(self._snap, self.path, sig):
            return
        try:
            self._snap = follow.load(self.path, self.backup, sig, self.progress)
        except CorruptStatus as e:
            if self._seen is None:
                raise
            raise self._lost(f"it became unreadable under this process ({e})") from None
        self._touched.follow(self._snap.status)      # (from the file's own generation: touched.py)

    def _remember(self, snap: follow.Copy) -> None:
        self._snap, self._good, self._seen = snap, snap.status, guard.Seen.of(snap.status)
        changes.forget_stale()
        self._touched.follow(snap.status)

    def _absent(self) -> Status:
        """No file: a new, empty status only where none has ever been."""
        if self._seen is not None:
            raise self._lost("it is missing (deleted while this process was using it)")
        if os.path.exists(self.backup):
            raise CorruptStatus(
                f"the status file {self.path} is missing but its backup {self.backup} exists; "
                f"if the backup is right, restore it: cp {self.backup} {self.path}")
        traces = guard.has_history([self.journal_path, self.log_path] + self.traces)
        if traces:
            raise StatusLost(
                f"the status file {self.path} is missing, but {', '.join(traces)} show(s) that one has been "
                f"here; nothing was written. Run `batchman recover` to rebuild it from the journal, "
                f"the attempt directories and the batch system")
        return Status(store_id=new_store_id(), created=time.time())

    def _lost(self, what: str) -> StatusLost:
        """The error for a file lost under this process; its last good copy is kept beside the file
        (once per loss: a process that keeps polling, like the TUI, does not rewrite it)."""
        if self._lost_note is None or self._lost_note[0] != what:
            self._lost_note = (what, guard.keep_last_good(self.path, self._good, what, model.encode))
        return StatusLost(self._lost_note[1])

    def _overlay(self, snap: follow.Copy) -> None:
        """Apply queued requests (``<file>.requests``) to a snapshot, once per change of either."""
        rsig = requests.signature(self.requests_path)
        if rsig is None or snap.requests_sig == rsig:
            return
        self.replays.merged(snap.status.tasks, apply_requests(snap.status, requests.read_lines(self.requests_path)))
        snap.requests_sig = rsig

    def queue_requests(self, keys: set[str], field: str, value, allowed_states=None, command: str = "") -> int:
        """Queue a change of ``request`` or ``priority`` on tasks with a short append: the lock is
        held to append one line (the status file is not rewritten); every reader sees it at once
        and the next writer merges it into the file. Each line carries the generation it was queued
        against, so a line already merged is never applied twice, even after a crash between the
        merge and the truncation. A process that has not read the file whole reads only the tasks'
        runs, or takes its own read of these tasks (partial.queue)."""
        if field not in QUEUEABLE:
            raise ValueError(field)
        if self._snap is None:
            with guard.writing(self):
                n = partial.queue(self, keys, field, value, allowed_states, command)
            if n is not None:
                return n
        self.read()                     # outside the lock: the lock waits only for what changed since
        with self.locked(command):
            status = self.read()
            idx = requests.by_key(status, keys)
            chosen = sorted(k for k in keys if k in idx and (allowed_states is None or idx[k].state in allowed_states))
            if chosen:
                with guard.writing(self):
                    requests.queue(self.requests_path, self._snap, field, value, chosen, command, idx)
        return len(chosen)

    def generation(self) -> int:
        """The generation of the file on disk (cheap when unchanged since last read)."""
        return self.read().generation

    # ---- the lock ------------------------------------------------------------------
    def holder(self) -> str:
        """Who holds the lock, as the holder wrote it (may be stale if nobody holds it)."""
        return self._lock.holder()

    def is_locked(self) -> bool:
        """True if some other process holds the lock right now (does not wait)."""
        return self._lock.is_locked()

    def locked(self, command: str = "", timeout: float | None = None):
        """``with store.locked(who):`` hold the status file's lock (a transaction does it for you)."""
        return self._lock.held(command, timeout)

    # ---- writing -------------------------------------------------------------------
    def record(self, task: str, old: str, new: str, why: str, by: str, at: float | None = None) -> None:
        """Note a transition made in the current transaction (written to the journal)."""
        self._pending.append(Transition(task, old, new, why, time.time() if at is None else at, by))

    def purged(self, n: int) -> None:
        """Declare ``n`` tasks removed on purpose in this transaction (the shrink guard allows them)."""
        self._purged += n

    def abort(self) -> None:
        """Leave the file as it is at the end of the current transaction."""
        self._abort = True

    @contextlib.contextmanager
    def transaction(self, command: str = "", timeout: float | None = None,
                    allow_shrink: bool = False) -> Iterator[Status]:
        """Lock, read, yield the status to change, write it back (unless aborted), unlock.

        The status file is read before the lock is taken, so the lock waits only for the change
        log's lines written since. An exception inside the body leaves the file untouched.
        """
        written: Status | None = None
        if self.exists():
            self.read()          # outside the lock: what takes long (decoding, the index) happens here
            if self._snap is not None:
                self._snap.index()
        with self.locked(command, timeout):
            status = self.read()
            before = len(status.tasks) if self.exists() else 0
            work = self._begin(status)
            try:
                yield work
            except BaseException:
                self._forget_unless_untouched(work)
                raise
            if self._abort:
                self._forget_unless_untouched(work)
                return
            for hook in self.hooks_before_write:
                hook(work, status if before else None)
            if not allow_shrink and guard.shrunk_too_far(before, len(work.tasks), self._purged):
                self._snap = None
                copy = guard.safety_copy(self.path)
                raise ShrinkRefused(
                    f"refused to write {self.path}: it would go from {before} to {len(work.tasks)} tasks "
                    f"without an explicit purge; nothing was changed (a safety copy of the file is in {copy})")
            with guard.writing(self):
                self.write(work, (before, status.purged_total) if before else None)
            written = work
        if written is not None:
            self.html_after(written)

    def _begin(self, status: Status) -> Status:
        """What a transaction's body changes: the tasks in place (this process's copy), the
        status's own fields in a copy (an abort leaves them as they were)."""
        work = msgspec.structs.replace(status, tasks=status.tasks)
        work.set_index(status.index())
        self._before = (len(status.tasks), status.tasks, status.index())
        self._pending, self._abort, self._purged = [], False, 0
        return work

    def html_after(self, written: Status) -> None:
        """The page of a write: now, or by flush_html() when deferred."""
        if self.defer_html:
            self._html_due = written
        else:
            self.publish_html(written)

    def _forget_unless_untouched(self, work: Status) -> None:
        """After an abort or an error: keep this process's copy if the body changed no task in it,
        else read the file again next time."""
        put, gone = changes.collect(*self._before, work)
        if put or gone:
            self._snap = None

    def flush_html(self) -> None:
        """Write the page of the last deferred transaction, if any."""
        due, self._html_due = self._html_due, None
        if due is not None:
            self.publish_html(due)

    def _keep_backup(self, current: tuple[int, int] | None) -> bool:
        """Whether the file on disk (``current``: its tasks and purges) may replace the backup:
        never when it holds far fewer tasks than the backup, beyond what purges explain."""
        if current is None:
            return True
        sig, cur = self._sig_of(self.backup), self._sig()
        if sig is None:
            return True
        if self._backup_seen is None or self._backup_seen[0] != sig:
            if cur is not None and cur[1] >= sig[1] * guard.SHRINK_KEEP:
                return True       # not smaller than the backup: no need to count its tasks
            counts = guard.backup_counts(self.backup)
            if counts is None:
                return True
            self._backup_seen = (sig, *counts)
        _, bak_tasks, bak_purged = self._backup_seen
        return not guard.shrunk_too_far(bak_tasks, current[0], max(0, current[1] - bak_purged))

    def write(self, status: Status, current: tuple[int, int] | None = None) -> None:
        """Write under the lock (callers use transaction()). ``current``: (tasks, purged_total)
        of the file being replaced, which becomes the backup unless it shrank too far. A big
        file that this process follows gets one line appended to its change log (what the
        transaction changed); a small one, or one of the old layout, is rewritten whole."""
        if self._seen is not None and not self.exists():
            raise self._lost("it is missing (deleted while this process was using it)")
        rec = self.next_record(status)
        if CHECK:
            compact.check_write(self, rec, status)
        journal.append(self.journal_path, journal.lines(self._pending, status.generation, status.store_id))
        self._pending = []
        if self._log_mode(self._snap, status):
            return ahead.append(self, self._snap, status, changes.encode(rec), b"")
        keep = self._keep_backup(current)
        snapshot.write(self.path, status, backup=self.backup if keep else None)
        log.remove(self.log_path)
        if keep and current is not None:
            self._backup_seen = (self._sig_of(self.backup), *current)
        requests.forget(self.requests_path)   # read() applied them: they are in the file now
        self._remember(follow.Copy(self._sig(), status, base=status.generation, layout=True))

    def next_record(self, status: Status) -> changes.Record:
        """Stamp the next generation on ``status`` and collect what the transaction changed."""
        status.generation += 1
        status.store_id = status.store_id or new_store_id()
        status.purged_total += self._purged
        guard.stamp(status)
        before, self._before = self._before, None
        put, gone = changes.collect(*before, status) if before else (list(status.tasks), [])
        self._touched.add(put)
        return changes.Record(status.generation, status.store_id, changes.head_of(status), put, gone)

    def _log_mode(self, snap: follow.Copy | None, status: Status) -> bool:
        """Append to the change log (instead of rewriting the file): the file is big, has the
        snapshot layout, and is the one this process follows."""
        return (snap is not None and snap.layout and snap.sig == self._sig() and snap.sig[1] >= LOG_FROM
                and snap.status.store_id == status.store_id)

    def compact_due(self) -> bool:
        """The change log has grown to a quarter of the status file (and at least COMPACT_MIN)."""
        snap = self._snap
        return snap is not None and snap.log_ino is not None and snap.log_off >= max(COMPACT_MIN, snap.sig[1] // 4)

    def compact(self) -> bool:
        """Fold the change log into a new status file (compact.py); False if there was nothing
        to fold or another process did it meanwhile."""
        with guard.writing(self):
            return compact.compact(self)

    def replace_with(self, status: Status) -> None:
        """Put a rebuilt status in place of a lost or unreadable file (``batchman recover``)."""
        compact.replace_with(self, status)

    def publish_html(self, status: Status) -> None:
        """Write the page for exactly this generation, right after the status file.

        Rendering a large page takes a while, so it happens after the status file's lock is
        released, under a lock of the page's own; a page never replaces a newer one of the
        same file (the store id and generation it shows are on its first line). The renderer
        returns the page as text or in pieces (streamed to the file as they come), or None
        when the page on disk already shows all of it (batchman.page.live: it stays honest).
        """
        ok = self.render_html and self.html_path
        page = self.render_html(status, **self._touched.hand_over(status)) if ok else None
        if page is None:
            return
        with page_lock(self.html_path, max(self.lock_timeout, 10)), guard.page_written(self.render_html):
            sid, gen = html_generation(self.html_path)
            if sid == status.store_id and gen >= status.generation:
                return
            atomic_write(self.html_path, [guard.page_header(status), *([page] if isinstance(page, str) else page)])

    def history(self, keys: set[str] | None = None, upto: int | None = None) -> list[dict]:
        """Journal entries (optionally of some tasks), skipping any of a write that never landed."""
        return journal.read(self.journal_path, keys, upto)
