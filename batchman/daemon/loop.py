"""The daemon's loop and the report it prints of each iteration.

Between iterations the loop sleeps until the earliest of (``Engine.next_wakeup``): a token back
for work its bucket held, the next allowed batch query while jobs are in the batch system, a
short look again after an iteration that changed something (a restart, a task a trigger made),
and ``delay``, the longest sleep. While it sleeps it lists the done directory every
``daemon.watch_interval`` s (a job's end wakes it, daemon/watch.py) and notices a person's
change to the status file, its change log or its queued requests (``batchman add``, a kill from
the TUI). Before it sleeps, it folds a grown change log into the status file (Store.compact)
and, every ten minutes, compares the page's tally with every task (LivePage.tend).

A daemon given a ``desk`` (daemon/asks.py: one not restricted to some runs) listens for the
asks of `batchman-daemon oneshot`: an ask wakes it, it takes the asks waiting before a round and
answers them with that round's report.
"""

from __future__ import annotations

import time
from typing import Callable

from batchman.core import pacing as PC
from batchman.daemon import asks as A
from batchman.daemon.reload import signature
from batchman.daemon.work import IterationReport


def loop(engine, delay: float, forever: bool, verbose: bool, say: Callable[[str], None],
         stop: list, desk: A.Desk | None = None) -> int:
    """Iterate until nothing is left (or forever), sleeping at most ``delay`` between iterations."""
    engine.watcher.ensure()
    ended = set(engine.watcher.check())       # ends left from before this daemon: read them now
    if hasattr(engine.store.render_html, "between_rounds"):
        engine.store.render_html.between_rounds = True      # (its periodic recount: engine.tend_page)
    listening = listen(desk, say)
    try:
        while not stop:
            if desk is not None and not listening:      # (its directory could not be made: tried each round)
                listening = listen(desk, say, again=True)
            engine.pacing.every = PC.query_interval(engine.params["batch.min_query_interval"], delay)
            asked = desk.take() if listening else []
            if asked:                           # as a oneshot of its own would: the batch system asked now
                engine.pacing.hurry(engine.clock())
            rep = engine.run_once(ended)
            if verbose:
                print_report(rep, say)
            if engine.iterations % 10 == 1 or asked:
                unknown = engine.update_unknown()
                if asked:
                    desk.answer(asked, answer_of(rep, engine.me, unknown))
            if not rep.work_left and not forever:
                say("nothing left to track: the daemon stops (use --forever to keep it running)")
                break
            engine.compact_store()
            engine.tend_page()
            ended = _sleep(engine, delay, rep, stop, desk if listening else None)
    finally:
        if listening:
            desk.close()
    return 0


def listen(desk: A.Desk | None, say: Callable[[str], None], again: bool = False) -> bool:
    """Open ``desk``; whether it listens now. The daemon's work does not depend on it: when the
    asks directory cannot be made (a full disk, a file in its place) it says so once and goes on,
    and the loop tries again before each round, saying when it listens after all."""
    if desk is None:
        return False
    try:
        desk.open()
    except OSError as err:
        if not again:
            say(f"not listening for `batchman-daemon oneshot` (each does its own round; tried again at "
                f"each round): {err}")
        return False
    if again:
        say("listening for `batchman-daemon oneshot` now")
    return True


def answer_of(rep: IterationReport, me: str, unknown) -> A.Answer:
    """What a oneshot that asked for this round prints (print_round)."""
    return A.Answer(by=me, transitions=rep.transitions, actions=rep.actions, errors=rep.errors,
                    commands=rep.commands, seconds_own=rep.seconds_own, lock_max=rep.lock_max,
                    unknown=unknown)


def seconds_to_sleep(engine, delay: float, rep: IterationReport) -> float:
    """How long to sleep after an iteration that reported ``rep``, unless an event comes first."""
    watch = engine.params["daemon.watch_interval"]
    seconds = engine.next_wakeup(delay).at - engine.clock()
    if rep.transitions and watch > 0:
        seconds = min(seconds, watch)         # something moved: the next step may be ready soon
    return max(0.0, seconds)


def _sleep(engine, delay: float, rep: IterationReport, stop: list, desk: A.Desk | None = None) -> set[str]:
    """Wait for the next iteration; returns the names of the jobs whose end was seen meanwhile."""
    watch = engine.params["daemon.watch_interval"]
    seconds = seconds_to_sleep(engine, delay, rep)
    paths = (engine.store.path, engine.store.log_path, engine.store.requests_path)
    if desk is not None:
        paths += (desk.directory,)          # a oneshot's ask (a new file in it)
    before = [signature(p) for p in paths]

    def interrupted() -> bool:
        if desk is not None:
            desk.beat()
        return bool(stop) or [signature(p) for p in paths] != before

    t_end = time.monotonic() + seconds
    return set(engine.watcher.wait(t_end, watch, stop=interrupted))


def print_round(rep: IterationReport | A.Answer, unknown, say: Callable[[str], None]) -> None:
    """What `batchman-daemon oneshot` prints of its round (done here, or by the daemon asked: its
    answer): the report, then each unknown job and how to take it in."""
    print_report(rep, say)
    for u in unknown:
        say(f"unknown job {u.name} ({u.job_id}, {u.state}): `batchman adopt {u.name}` takes it in")


def print_report(rep: IterationReport | A.Answer, say: Callable[[str], None]) -> None:
    stamp = time.strftime("%H:%M:%S")
    for line in rep.transitions:
        say(f"{stamp}  {line}")
    for line in rep.actions:
        say(f"{stamp}  {line}")
    for line in rep.errors:
        say(f"{stamp}  problem: {line}")
    say(f"{stamp}  iteration done: {len(rep.transitions)} change(s), {rep.commands} batch command(s), "
        f"{rep.seconds_own * 1000:.0f} ms in batchman, lock held at most {rep.lock_max * 1000:.0f} ms")
