"""The status file: the only code that takes the lock and writes it.

``with store.transaction(who) as status:`` takes the lock, reads the file (or reuses the
copy this process wrote last, when the file has not changed since), yields it, and if
the body changed its mind about nothing (``store.abort()``) writes it back atomically:
temp file beside it, fsync, the current file hard-linked to ``<file>.bak``, rename, fsync
of the directory. The HTML page is rendered and written in the same transaction and the
transitions recorded go to an append-only journal (``<file>.journal``) first, each line
tagged with the generation it belongs to.

The lock is ``filelock.FileLock``: a kernel ``flock`` that dies with its holder, so a
crash never leaves a stale lock. Beside it, ``<file>.lock.who`` says who holds it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import filelock
import msgspec

from batchman.core import model
from batchman.core.model import Status
from batchman.util.files import atomic_write


class StoreError(Exception):
    """A problem with the status file a person must act on; the message says what to do."""


class LockTimeout(StoreError):
    pass


class CorruptStatus(StoreError):
    pass


class ShrinkRefused(StoreError):
    pass


@dataclass
class Transition:
    """One change of a task's state, for the journal."""
    task: str
    old: str
    new: str
    why: str
    at: float
    by: str


@dataclass
class _Snapshot:
    sig: tuple
    status: Status
    requests_sig: tuple | None = None     # the requests file as last applied to ``status``
    _index: dict | None = None

    def index(self) -> dict:
        """Task key -> task of this snapshot (built once)."""
        if self._index is None or len(self._index) != len(self.status.tasks):
            self._index = {t.key: t for t in self.status.tasks}
        return self._index


def whoami(command: str = "") -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "command": command or os.path.basename(sys.argv[0]) or "python", "since": time.time()}


class Store:
    def __init__(self, path: str, lock_timeout: float = 30.0,
                 html: Callable[[Status], str] | None = None, html_path: str = ""):
        self.path = os.path.abspath(path)
        self.backup = self.path + ".bak"
        self.journal_path = self.path + ".journal"
        self.requests_path = self.path + ".requests"
        self.lock_path = self.path + ".lock"
        self.who_path = self.lock_path + ".who"
        self.lock_timeout = lock_timeout
        self.render_html = html
        self.html_path = html_path
        self._lock = filelock.FileLock(self.lock_path, timeout=lock_timeout)
        self._snap: _Snapshot | None = None
        self._pending: list[Transition] = []
        self._abort = False
        self.last_lock_seconds = 0.0      # how long the last transaction held the lock
        self.max_lock_seconds = 0.0
        self.hooks_before_write: list[Callable[[Status, Status | None], None]] = []
        # Interactive writers (the TUI) set this: the page is then written by flush_html(),
        # called when the screen is idle, instead of before the action returns.
        self.defer_html = False
        self._html_due: Status | None = None

    # ---- reading -------------------------------------------------------------------
    def _sig(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def read(self) -> Status:
        """The current status, without the lock (the file is replaced atomically)."""
        sig = self._sig()
        if sig is None:
            if os.path.exists(self.backup):
                raise CorruptStatus(
                    f"the status file {self.path} is missing but its backup {self.backup} exists; "
                    f"if the backup is right, restore it: cp {self.backup} {self.path}")
            return Status(store_id=new_store_id(), created=time.time())
        if self._snap is None or self._snap.sig != sig:
            self._snap = _Snapshot(sig, self._load(self.path))
        self._overlay(self._snap)
        return self._snap.status

    # ---- requests: kill / restart / purge / priority without rewriting the file -------
    def _overlay(self, snap: _Snapshot) -> None:
        """Apply queued requests (``<file>.requests``) to a snapshot, once per change of either."""
        try:
            st = os.stat(self.requests_path)
            rsig = (st.st_ino, st.st_size, st.st_mtime_ns) if st.st_size else None
        except FileNotFoundError:
            rsig = None
        if rsig is None or snap.requests_sig == rsig:
            return
        apply_requests(snap.status, self._request_lines(), snap.index())
        snap.requests_sig = rsig

    def _request_lines(self) -> list[dict]:
        out = []
        try:
            with open(self.requests_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue   # a torn last line after a crash
        except FileNotFoundError:
            pass
        return out

    def queue_requests(self, keys: set[str], field: str, value, allowed_states=None, command: str = "") -> int:
        """Queue a change of ``request`` or ``priority`` on tasks with a short append.

        The lock is held only to append one line (the status file is not rewritten); every
        reader sees it at once and the next writer merges it into the file. Each line
        carries the generation it was queued against, so a line already merged is never
        applied twice, even after a crash between the merge and the truncation.
        """
        if field not in QUEUEABLE:
            raise ValueError(field)
        self.read()
        if self._snap is not None:
            self._snap.index()          # built outside the lock; reused inside if nothing changed
        with self.locked(command):
            status = self.read()
            idx = self._snap.index() if self._snap is not None else {t.key: t for t in status.tasks}
            chosen = sorted(k for k in keys if k in idx and (allowed_states is None or idx[k].state in allowed_states))
            if chosen:
                line = json.dumps({"g": status.generation, "field": field, "value": value, "keys": chosen,
                                   "by": command, "t": round(time.time(), 3)}) + "\n"
                with open(self.requests_path, "a", encoding="utf-8") as f:
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
        return len(chosen)

    def _load(self, path: str) -> Status:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise CorruptStatus(f"cannot read the status file {path}: {e.strerror}") from None
        gc_was = gc.isenabled()
        gc.disable()  # millions of small objects: the collector would double the parse time
        try:
            return model.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            hint = (f"the previous good copy is {self.backup}; inspect it and, if right, restore it with "
                    f"cp {self.backup} {path}") if os.path.exists(self.backup) else "there is no backup copy"
            raise CorruptStatus(f"the status file {path} is unreadable ({e}); it was left as it is. {hint}") from None
        finally:
            if gc_was:
                gc.enable()

    def generation(self) -> int:
        """The generation of the file on disk (cheap when unchanged since last read)."""
        return self.read().generation

    # ---- the lock ------------------------------------------------------------------
    def holder(self) -> str:
        """Who holds the lock, as the holder wrote it (may be stale if nobody holds it)."""
        try:
            with open(self.who_path, encoding="utf-8") as f:
                who = json.load(f)
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(who["since"]))
            return f"{who['command']} (pid {who['pid']} on {who['host']}, since {since})"
        except (OSError, ValueError, KeyError):
            return "an unknown process"

    def is_locked(self) -> bool:
        """True if some other process holds the lock right now (does not wait)."""
        probe = filelock.FileLock(self.lock_path, timeout=0)
        try:
            probe.acquire(timeout=0)
        except filelock.Timeout:
            return True
        probe.release()
        return False

    @contextlib.contextmanager
    def locked(self, command: str = "", timeout: float | None = None) -> Iterator[None]:
        t = self.lock_timeout if timeout is None else timeout
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            self._lock.acquire(timeout=t)
        except filelock.Timeout:
            raise LockTimeout(
                f"the status file {self.path} is locked by {self.holder()}; waited {t:g} s. "
                f"Nothing was changed; try again (a daemon holds it only for a moment)") from None
        t0 = time.monotonic()
        try:
            atomic_write(self.who_path, json.dumps(whoami(command)), sync=False)
            yield
        finally:
            self._lock.release()
            self.last_lock_seconds = time.monotonic() - t0
            self.max_lock_seconds = max(self.max_lock_seconds, self.last_lock_seconds)

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

        An exception inside the body leaves the file untouched.
        """
        written: Status | None = None
        with self.locked(command, timeout):
            status = self.read()
            before = len(status.tasks) if self.exists() else 0
            # Work on a private copy so an exception in the body leaves our cache clean.
            work = msgspec.structs.replace(status, tasks=status.tasks)
            self._pending = []
            self._abort = False
            self._purged = 0
            try:
                yield work
            except BaseException:
                self._snap = None   # tasks may have been mutated in place: re-read next time
                raise
            if self._abort:
                self._snap = None
                return
            for hook in self.hooks_before_write:
                hook(work, status if before else None)
            if not allow_shrink and before >= 20 and len(work.tasks) < (before - self._purged) * 0.9:
                self._snap = None
                copy = self.safety_copy()
                raise ShrinkRefused(
                    f"refused to write {self.path}: it would go from {before} to {len(work.tasks)} tasks "
                    f"without an explicit purge; nothing was changed (a safety copy of the file is in {copy})")
            self.write(work)
            written = work
        if written is not None:
            if self.defer_html:
                self._html_due = written
            else:
                self.publish_html(written)

    def flush_html(self) -> None:
        """Write the page of the last deferred transaction, if any."""
        due, self._html_due = self._html_due, None
        if due is not None:
            self.publish_html(due)

    def safety_copy(self) -> str:
        """A dated copy of the current file (a hard link: instant, and untouched by later writes)."""
        dest = f"{self.path}.safety-{time.strftime('%Y%m%d-%H%M%S')}"
        with contextlib.suppress(FileExistsError):
            os.link(self.path, dest)
        return dest

    def write(self, status: Status) -> None:
        """Write under the lock (callers use transaction())."""
        status.generation += 1
        if not status.store_id:
            status.store_id = new_store_id()
        if self._pending:
            lines = "".join(
                json.dumps({"g": status.generation, "t": round(t.at, 3), "task": t.task, "from": t.old,
                            "to": t.new, "why": t.why, "by": t.by, "s": status.store_id}) + "\n"
                for t in self._pending)
            with open(self.journal_path, "a", encoding="utf-8") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
            self._pending = []
        data = model.encode(status)
        atomic_write(self.path, data, backup=self.backup)
        # The queued requests are in the file now (read() applied them): forget them.
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(self.requests_path):
                os.truncate(self.requests_path, 0)
        self._snap = _Snapshot(self._sig(), status)

    def publish_html(self, status: Status) -> None:
        """Write the page for exactly this generation, right after the status file.

        Rendering a large page takes a while, so it happens after the status file's lock is
        released, under a lock of the page's own; a page never replaces a newer one (the
        generation it shows is on its first line).
        """
        if not (self.render_html and self.html_path):
            return
        text = self.render_html(status)
        with filelock.FileLock(self.html_path + ".lock", timeout=max(self.lock_timeout, 10)):
            if html_generation(self.html_path) >= status.generation:
                return
            atomic_write(self.html_path, f"<!-- batchman generation {status.generation} -->\n{text}".encode("utf-8"))

    # ---- the journal ---------------------------------------------------------------
    def history(self, keys: set[str] | None = None, upto: int | None = None) -> list[dict]:
        """Journal entries (optionally of some tasks), skipping any of a write that never landed."""
        out = []
        try:
            f = open(self.journal_path, encoding="utf-8")
        except FileNotFoundError:
            return out
        with f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue    # a torn last line after a crash
                if keys is not None and e.get("task") not in keys:
                    continue
                if upto is not None and e.get("g", 0) > upto:
                    continue
                out.append(e)
        return out


# Task fields a person may change with a queued line instead of a rewrite.
QUEUEABLE = ("request", "priority", "held", "note")


def apply_requests(status: Status, lines: list[dict], idx: dict | None = None) -> None:
    """Set the queued fields on the tasks they name (only lines not yet merged)."""
    from batchman.core import states as S
    todo = [ln for ln in lines if ln.get("g", -1) >= status.generation and ln.get("field") in QUEUEABLE]
    if not todo:
        return
    if idx is None:
        idx = {t.key: t for t in status.tasks}
    for ln in todo:
        for k in ln.get("keys", ()):
            t = idx.get(k)
            if t is None:
                continue
            f = ln["field"]
            if f == "priority":
                t.priority = int(ln["value"])
            elif f == "held":
                t.held = bool(ln["value"])
            elif f == "note":
                t.note = str(ln["value"])
            elif ln["value"] != "kill" or t.state in S.ACTIVE:
                t.request = str(ln["value"])


def html_generation(path: str) -> int:
    """The generation a page was rendered from (its first line), -1 if none."""
    try:
        with open(path, "rb") as f:
            first = f.readline(100)
    except OSError:
        return -1
    parts = first.split()
    try:
        return int(parts[3]) if first.startswith(b"<!-- batchman generation") else -1
    except (IndexError, ValueError):
        return -1


def new_store_id() -> str:
    return secrets.token_hex(3)


def check_locking(path: str) -> str | None:
    """None if POSIX locks on ``path``'s filesystem really exclude another process.

    Takes the lock here, then asks a child process to take it without waiting: if the
    child gets it, locking silently does nothing on this filesystem (some NFS mounts).
    """
    import subprocess
    lock = filelock.FileLock(path + ".lock", timeout=5)
    with lock:
        code = ("import filelock,sys\n"
                f"l=filelock.FileLock({path + '.lock'!r}, timeout=0)\n"
                "try:\n l.acquire(timeout=0)\nexcept filelock.Timeout:\n sys.exit(0)\nsys.exit(3)\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    if r.returncode == 3:
        return (f"file locks do not work on the filesystem of {path}: another process could take the lock "
                f"while this one held it. Put the status file on local disk, NFSv4 or Lustre mounted with flock")
    if r.returncode != 0:
        return f"could not check file locking on {path}: {r.stderr.decode(errors='replace').strip()}"
    return None
