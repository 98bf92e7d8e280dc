"""What can go wrong with the status file; every message says what to do."""

from __future__ import annotations

import errno
import os

# A disk or a quota that is full: the errors a write of the status file, its log, journal,
# requests or page meets when there is no room where the status file is.
FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class StoreError(Exception):
    """A problem with the status file a person must act on; the message says what to do."""


class LockTimeout(StoreError):
    pass


class CorruptStatus(StoreError):
    pass


class ShrinkRefused(StoreError):
    pass


class NoSpace(StoreError):
    """A write found the disk or the quota full where the status file is: it did not land (a
    reader skips what a torn write left), and the process that tried reads the file afresh."""


class StatusLost(CorruptStatus):
    """The status file this process worked on vanished or was replaced by another: it must not
    write a new one. A daemon stops acting; ``batchman recover`` rebuilds the file."""


def disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in FULL


def cannot_write(err: OSError, status_path: str) -> str:
    """A full disk or quota in a person's words: the file, or else the status file's directory
    (where batchman writes its files; a write's error names none), and what to do."""
    where = err.filename if err.filename else f"in {os.path.dirname(os.path.abspath(status_path))}"
    quota = " (or raise the quota)" if err.errno == errno.EDQUOT else ""
    return f"{err.strerror}: cannot write {where}; free space there{quota}"    # (the cause first: a narrow screen cuts the end)


def in_words(err: BaseException, status_path: str | None = None) -> str:
    """An error as a person reads it: a full disk or quota with where and what to do (the file,
    else ``status_path``'s directory, when known: cannot_write); another OSError as its reason and
    file; anything else as its own message."""
    if disk_full(err) and status_path:
        return cannot_write(err, status_path)
    if isinstance(err, OSError):
        return f"{err.strerror or err}" + (f" ({err.filename})" if err.filename else "")
    return str(err)
