"""When a daemon counts as alive: the one rule, used by the daemon (whose intents may be
taken over) and by the faces (the status line, "is a daemon running?").

Pure: ``now`` comes in, and so does the process check (``pid_alive``), which only the
caller can make.
"""

from __future__ import annotations

from typing import Callable

from batchman.core.model import Daemon


def daemon_alive(d: Daemon, now: float, stale_after: float, here: str = "",
                 pid_alive: Callable[[int], bool] | None = None) -> bool:
    """A heartbeat at most ``stale_after`` s old and, for a daemon on this host (``here``)
    when ``pid_alive`` is given, a process that still exists (a SIGKILLed daemon's
    heartbeat stays fresh for a while; its process does not)."""
    if now - d.heartbeat > stale_after:
        return False
    if pid_alive is not None and here and d.host == here and not pid_alive(d.pid):
        return False
    return True
