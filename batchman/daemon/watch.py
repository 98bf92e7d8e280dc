"""Finished jobs seen within seconds, at no cost to the batch system.

Every job script, when it ends (its command exited, it could not start, or the batch system
sent TERM), drops an empty file named after the job into one shared directory,
``<daemon.temp_dir>/done/`` (``Paths.done``), after writing its ``exit`` or ``killed`` marker.
The daemon lists that one directory every ``daemon.watch_interval`` seconds and compares with
the last listing: one READDIR per check whatever the number of jobs, never a ``stat`` per job
(the experiment directory may be on NFS or Lustre, where thousands of stats a second hurt
everyone). A done file is only a wake-up hint: the truth stays the attempt's ``exit`` marker
and the batch system's account. The daemon removes a done file once the task's end is recorded
(:meth:`DoneWatcher.forget`), so the directory holds only what is not yet handled; after a
restart every file left there is reported again, which is harmless.

Chosen over inotify: inotify sees only writes made through this host's kernel, and a batch
job on another node writing to NFS or Lustre is exactly the case to serve; a listing sees
both. On NFS the client's directory attribute cache (``acdirmin``, 30 s by default) can
delay what a listing shows; sites that want seconds there mount with a smaller ``acdirmin``.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterable

TICK = 0.05    # seconds between two looks at the stop flag (and the files a person changes) while waiting


class DoneWatcher:
    """New names in the done directory since the last listing."""

    def __init__(self, directory: str):
        self.directory = directory
        self.seen: set[str] = set()
        self.listings = 0            # how many times the directory was listed (tests, benchmarks)

    def ensure(self) -> None:
        """Create the directory (the daemon does it at start; job scripts also mkdir -p)."""
        os.makedirs(self.directory, exist_ok=True)

    def check(self) -> list[str]:
        """List the directory once; the names not in the last listing, sorted. A missing or
        unreadable directory lists as empty (the batch queries still find every end)."""
        self.listings += 1
        try:
            names = {n for n in os.listdir(self.directory) if not n.startswith(".")}
        except OSError:
            names = set()
        new = names - self.seen
        self.seen = names
        return sorted(new)

    def forget(self, names: Iterable[str]) -> None:
        """The ends of these jobs are recorded: remove their done files."""
        for n in names:
            self.seen.discard(n)
            try:
                os.unlink(os.path.join(self.directory, n))
            except FileNotFoundError:
                pass

    def wait(self, until: float, interval: float, *, stop: Callable[[], bool] = lambda: False,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> list[str]:
        """Sleep until ``until`` (a ``clock`` time), a listing shows new names, or ``stop()``;
        return the new names ([] on timeout or stop). ``interval`` 0: no listing while waiting."""
        next_list = clock()
        while True:
            now = clock()
            if interval > 0 and now >= next_list:
                new = self.check()
                if new:
                    return new
                next_list = now + interval
            if stop() or now >= until:
                return []
            wake = min(until, next_list) if interval > 0 else until
            sleep(max(0.0, min(TICK, wake - now)))
