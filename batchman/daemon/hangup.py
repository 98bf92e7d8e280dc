"""The terminal a daemon was started from goes away: it goes on.

`batchman-daemon &` in an ssh session, then the session drops (a laptop lid closed, the network
gone, the window closed): the shell passes the terminal's hangup (SIGHUP) to its jobs, and a
process that does not handle it ends there, leaving the production standing until somebody
notices. The daemon takes it as "nobody reads my output any more": from then on its output
goes to ``<daemon.log_dir>/daemon-<host>-<time>.log`` (where the terminal UI starts daemons too)
and its input is /dev/null; its work is untouched. A hangup already ignored when it starts
(``nohup``, a service manager) stays ignored: its output is already taken care of.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Callable


def keep_going(log: Callable[[], str]) -> bool:
    """Handle SIGHUP by :func:`detach` to ``log()``; False when it is ignored already."""
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        return False
    signal.signal(signal.SIGHUP, lambda signum, frame: detach(log()))
    return True


def detach(path: str) -> str | None:
    """Standard output and error to ``path`` (appended; its directory made), standard input from
    /dev/null; returns the path, or None when it could not be opened (output then dropped)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass                # (the terminal is gone: what it did not take goes to the log)
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        fd, path = os.open(os.devnull, os.O_WRONLY), None
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        print(f"{time.strftime('%H:%M:%S')}  the terminal closed (SIGHUP): batchman-daemon {os.getpid()} goes on; "
              f"its output comes here", flush=True)
    except OSError:
        pass
    return path
