"""The status file's lock: a kernel ``flock`` (``filelock.FileLock``) that dies with its holder,
so a crash never leaves a stale lock; beside it, ``<file>.lock.who`` says who holds it.

The store is the only package that imports filelock (tests/test_layers.py checks it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from typing import Iterator

import filelock

from batchman.store.errors import LockTimeout, NoSpace, cannot_write, disk_full
from batchman.util.files import atomic_write


def whoami(command: str = "") -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "command": command or os.path.basename(sys.argv[0]) or "python", "since": time.time()}


class Lock:
    """The lock of one status file, with who holds it and how long it was held."""

    def __init__(self, status_path: str, timeout: float):
        self.status_path = status_path
        self.path = status_path + ".lock"
        self.who_path = self.path + ".who"
        self.timeout = timeout
        self._lock = filelock.FileLock(self.path, timeout=timeout)
        self.last_seconds = 0.0
        self.max_seconds = 0.0

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
        probe = filelock.FileLock(self.path, timeout=0)
        try:
            probe.acquire(timeout=0)
        except filelock.Timeout:
            return True
        probe.release()
        return False

    @contextlib.contextmanager
    def held(self, command: str = "", timeout: float | None = None) -> Iterator[None]:
        t = self.timeout if timeout is None else timeout
        os.makedirs(os.path.dirname(self.status_path), exist_ok=True)
        try:
            self._lock.acquire(timeout=t)
        except filelock.Timeout:
            raise LockTimeout(
                f"the status file {self.status_path} is locked by {self.holder()}; waited {t:g} s. "
                f"Nothing was changed; try again (a daemon holds it only for a moment)") from None
        t0 = time.monotonic()
        try:
            try:
                atomic_write(self.who_path, json.dumps(whoami(command)), sync=False)
            except OSError as e:        # (the first write under the lock: nothing else will fit either)
                if disk_full(e):
                    raise NoSpace(cannot_write(e, self.status_path)) from e
                raise
            yield
        finally:
            self._lock.release()
            self.last_seconds = time.monotonic() - t0
            self.max_seconds = max(self.max_seconds, self.last_seconds)


@contextlib.contextmanager
def page_lock(html_path: str, timeout: float) -> Iterator[None]:
    """The page's own lock: rendering happens after the status file's lock is released."""
    with filelock.FileLock(html_path + ".lock", timeout=timeout):
        yield


# A side file's own kernel lock (the alerts outbox beside the status file): never the status lock.
SideLockBusy = filelock.Timeout


def side_lock(path: str, timeout: float) -> filelock.FileLock:
    """A kernel lock on ``path`` (dies with its holder); ``SideLockBusy`` when not had in time."""
    return filelock.FileLock(path, timeout=timeout)


def check_locking(path: str) -> str | None:
    """None if POSIX locks on ``path``'s filesystem really exclude another process.

    Takes the lock here, then asks a child process to take it without waiting: if the
    child gets it, locking silently does nothing on this filesystem (some NFS mounts).
    """
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
