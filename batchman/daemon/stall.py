"""A round that could not be written because the disk or the quota is full, or because another
process held the status file's lock past ``daemon.lock_timeout``: the daemon waits, then starts
afresh, rather than ending and leaving a production unattended for the night.

A daemon runs for days on a shared filesystem, where a quota fills up (the outputs, somebody
else's files on the same disk) and a hung NFS client can hold a lock. Such a round is treated as
a crash of this process at that point, which the crash protocol already survives (design.md:
intents are on disk before any job is submitted; a job submitted but not recorded is found again
by its name): the daemon says what happened, waits, and replaces itself with a new process of the
same command line and pid (``os.execv``), which reads the file afresh. Nothing of the round that
failed is kept in memory, so nothing it believed and did not write can mislead the next one.

The wait is ``daemon.delay`` (at least 1 s), doubled after each failed start in a row, at most
:data:`WAIT_MAX` (or ``daemon.delay`` when longer). Other errors (a status file that is corrupt,
lost, read-only or not ours to read) still end the daemon: a person must act on them.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

from batchman.store.errors import LockTimeout, NoSpace, disk_full

WAIT_MAX = 600.0            # seconds: a full disk freed is noticed within 10 minutes at worst
FAILURES = "BATCHMAN_DAEMON_FAILED_STARTS"   # (environment) failed starts in a row, for the next process


def wait_before_again(err: BaseException, failures: int, delay: float) -> float | None:
    """Seconds to wait before starting afresh after ``err``, the ``failures``-th failed start in
    a row (1: the first); None when it is an error a person must act on (the daemon ends)."""
    if not (isinstance(err, (LockTimeout, NoSpace)) or disk_full(err)):
        return None
    first = max(delay, 1.0)
    return min(first * 2 ** max(0, failures - 1), max(WAIT_MAX, first))


def failures_before() -> int:
    """The failed starts in a row before this process (from the process it replaced); taken out
    of the environment, so that the jobs this daemon submits do not inherit it."""
    try:
        return max(0, int(os.environ.pop(FAILURES, "0")))
    except ValueError:
        return 0


def wait(seconds: float, stop: list, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Sleep ``seconds`` unless ``stop`` (a signal's flag) is set first; True if it was not."""
    end = time.monotonic() + seconds
    while not stop:
        left = end - time.monotonic()
        if left <= 0:
            return True
        sleep(min(0.2, left))
    return False


def program(argv0: str) -> list[str]:
    """How to start this daemon again: its own script when it was started by it (``ps`` and
    ``pgrep batchman-daemon`` keep finding it), else ``python -m batchman.daemon``."""
    if os.path.basename(argv0).startswith("batchman-daemon") and os.path.isfile(argv0):
        return [sys.executable, argv0]
    return [sys.executable, "-m", "batchman.daemon"]


def start_afresh(argv: list[str], failures: int) -> None:
    """Replace this process by this daemon's program with ``argv`` (same pid, environment and
    directory), telling it how many starts in a row failed. Does not return."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    os.environ[FAILURES] = str(failures)
    os.execv(sys.executable, [*program(sys.argv[0] if sys.argv else ""), *argv])
