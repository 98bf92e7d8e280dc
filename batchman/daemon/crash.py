"""Test hook: the SIGKILL tests set BATCHMAN_CRASH_AT=<point> to die at that point."""

from __future__ import annotations

import os
import signal

CRASH_POINTS = ("after-observe", "after-intent", "before-submit", "after-submit", "before-record", "after-record")


def crash_point(name: str) -> None:
    if os.environ.get("BATCHMAN_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
