"""The daemon's loop and the report it prints of each iteration."""

from __future__ import annotations

import time
from typing import Callable

from batchman.daemon.work import IterationReport


def loop(engine, delay: float, forever: bool, verbose: bool, say: Callable[[str], None],
         stop: list) -> int:
    """Iterate until nothing is left (or forever), sleeping ``delay`` between iterations."""
    while not stop:
        rep = engine.run_once()
        if verbose:
            print_report(rep, say)
        if engine.iterations % 10 == 1:
            engine.update_unknown()
        if not rep.work_left and not forever:
            say("nothing left to track: the daemon stops (use --forever to keep it running)")
            break
        t_end = time.monotonic() + delay
        while not stop and time.monotonic() < t_end:
            time.sleep(min(0.2, max(0.0, t_end - time.monotonic())))
    return 0


def print_report(rep: IterationReport, say: Callable[[str], None]) -> None:
    stamp = time.strftime("%H:%M:%S")
    for line in rep.transitions:
        say(f"{stamp}  {line}")
    for line in rep.actions:
        say(f"{stamp}  {line}")
    for line in rep.errors:
        say(f"{stamp}  problem: {line}")
    say(f"{stamp}  iteration done: {len(rep.transitions)} change(s), {rep.commands} batch command(s), "
        f"{rep.seconds_own * 1000:.0f} ms in batchman, lock held at most {rep.lock_max * 1000:.0f} ms")
