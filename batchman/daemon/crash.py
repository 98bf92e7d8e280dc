"""Test hooks at the points of an iteration where a daemon may die.

The SIGKILL tests set BATCHMAN_CRASH_AT=<point> to die there; in-process tests put callables in
HOOKS[point], run with the engine that reached it (to interleave several daemons, issue 15).
"""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

CRASH_POINTS = ("after-observe", "after-intent", "before-submit", "after-submit", "before-record", "after-record")
HOOKS: dict[str, list[Callable[[Any], None]]] = {}


def crash_point(name: str, engine: Any = None) -> None:
    for fn in HOOKS.get(name, ()):
        fn(engine)
    if os.environ.get("BATCHMAN_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
