"""In-process daemons interleaved by hooks at the engine's crash points (issue 15).

``engine(e, pid)`` is a daemon of its own (own store object, backends, id host:pid): a pid
that is alive makes it a live daemon for the others, a dead one a dead daemon. A hook
raising ``Crash`` is an in-process SIGKILL: nothing after that point runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time

import pytest

from batchman.backends.factory import make_batch, make_staging
from batchman.core import states as S
from batchman.daemon import engine as E
from batchman.experiment import store_for


class Crash(BaseException):
    """An in-process SIGKILL: the engine stops where it is, nothing after runs."""


@contextlib.contextmanager
def hooks():
    """``at(point, fn)`` registers ``fn(engine)`` at a crash point; all removed on exit."""
    added = []

    def at(point, fn):
        assert point in E.CRASH_POINTS
        E.HOOKS.setdefault(point, []).append(fn)
        added.append((point, fn))
    try:
        yield at
    finally:
        for point, fn in added:
            E.HOOKS[point].remove(fn)


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def engine(e, pid: int) -> E.Engine:
    eng = E.Engine(e.params, store_for(e.params), make_batch(e.params), make_staging(e.params), mode="test")
    eng.me = f"{socket.gethostname()}:{pid}"
    return eng


def task(eng, run=1):
    return next(t for t in eng.store.read().tasks if t.run == run)


def run_until(engines, done, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for eng in engines:
            eng.run_once()
        if done():
            return
        time.sleep(0.1)
    raise AssertionError("not finished in time")


def b0_records_intent_and_dies(e, at):
    """Step 1: B0 advances run 1 up to its submit intent and dies right after recording it."""
    b0 = engine(e, dead_pid())

    def die_once_submitting(eng):
        if eng is b0 and task(eng).state == S.SUBMITTING:
            raise Crash
    at("after-intent", die_once_submitting)
    with pytest.raises(Crash):
        for _ in range(50):
            b0.run_once()
            time.sleep(0.05)
    t = task(b0)
    assert t.state == S.SUBMITTING and t.intent.owner == b0.me and t.intent.actions == ["submit"]


def issue_interleaving(e, b1_alive: bool, timeout: float = 60):
    """Steps 1-5 of issue 15.1, then daemons A (and B1 if alive) until run 1 has ended.

    Returns run 1's task at the end."""
    b1_proc = subprocess.Popen(["sleep", "600"])       # B1's process: alive until we kill it
    try:
        with hooks() as at:
            b0_records_intent_and_dies(e, at)
            a = engine(e, os.getpid())
            b1 = engine(e, b1_proc.pid)
            _interleave(a, b1, b1_proc, b1_alive, at)
        run_until([a, b1] if b1_alive else [a], lambda: task(a).state in S.TERMINAL, timeout)
        return task(a)
    finally:
        b1_proc.kill()
        b1_proc.wait()


def _interleave(a, b1, b1_proc, b1_alive, at):
    b1_submitted, a_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    started: list[int] = []

    def b1_submits(eng):
        # B1 has submitted and not yet recorded it: alive, it waits for A's turn; dead, it dies.
        if eng is not b1:
            return
        if b1_alive:
            b1_submitted.set()
            assert a_done.wait(60), "A never finished its iteration"
        else:
            b1_proc.kill()
            b1_proc.wait()
            raise Crash

    def b1_thread():
        try:
            b1.run_once()
        except BaseException as x:      # noqa: BLE001 -- reported by the main thread
            errors.append(x)
            b1_submitted.set()

    def a_observed(eng):
        # Step 2 is done (A saw the job absent); step 3 happens now, once.
        if eng is not a or started:
            return
        started.append(1)
        if b1_alive:
            threading.Thread(target=b1_thread, daemon=True).start()
            assert b1_submitted.wait(60)
        else:
            with pytest.raises(Crash):
                b1.run_once()
    at("after-observe", a_observed)
    at("before-record", b1_submits)
    try:
        a.run_once()          # step 4: A takes the lock before B1 recorded its submission
    finally:
        a_done.set()
    assert started, "A never observed"
    if b1_alive:
        end = time.monotonic() + 60
        # B1 records its submission now. (The task read once a look: read twice, B1's record could
        # land between the two and the second find no intent, seen once in a suite.)
        while (it := task(a).intent) is not None and it.owner == b1.me and time.monotonic() < end:
            time.sleep(0.05)
        assert not errors, errors
