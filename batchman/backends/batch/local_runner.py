"""Runs one local batch job (started detached by LocalBatch.submit; see local.py)."""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import time

from batchman.util.files import atomic_write

# Blocked when LocalBatch.submit starts the runner (a mask survives fork and exec), taken once
# its handler is set: a cancel in its first instants is a cancel, not a death without an exit file.
HELD = {signal.SIGTERM, signal.SIGINT}


def _write(path: str, text: str) -> None:
    atomic_write(path, text)


def take_slot(slot_dir: str, slots: int, stop: list) -> int | None:
    """Hold one of ``slots`` slot files locked (kept open for our lifetime); wait for one."""
    while not stop:
        for i in range(slots):
            fd = os.open(os.path.join(slot_dir, f"slot.{i}"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        time.sleep(0.2)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--slot-dir", required=True)
    ap.add_argument("--time-limit", type=float, default=0)
    ap.add_argument("--stdout", required=True)
    ap.add_argument("--stderr", required=True)
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--name", default="")
    ap.add_argument("script")
    a = ap.parse_args(argv)
    d = a.dir
    _write(os.path.join(d, "local.pid"), str(os.getpid()))
    try:
        return _run(a, d)
    except Exception as e:   # the job could not be run: say why, rather than vanish as "lost"
        _write(os.path.join(d, "local.error"), f"{type(e).__name__}: {e}")
        _write(os.path.join(d, "local.exit"), "- node-fail")
        return 1


def _run(a: argparse.Namespace, d: str) -> int:
    _write(os.path.join(d, "local.state"), "queued")
    stop: list = []
    child: list[subprocess.Popen] = []

    def on_term(signum, frame):
        stop.append(signum)
        if child:
            try:
                os.killpg(child[0].pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)
    slot = take_slot(a.slot_dir, a.slots, stop)
    if slot is None:
        _write(os.path.join(d, "local.exit"), "143 cancelled")
        return 0
    _write(os.path.join(d, "local.state"), "running")
    with open(a.stdout, "ab") as out, open(a.stderr, "ab") as err:
        p = subprocess.Popen(["bash", a.script], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             cwd=a.workdir if os.path.isdir(a.workdir) else None, start_new_session=True)
    child.append(p)
    if stop:
        on_term(signal.SIGTERM, None)
    failure = ""
    deadline = time.monotonic() + a.time_limit if a.time_limit > 0 else None
    while True:
        try:
            rc = p.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        if deadline is not None and time.monotonic() > deadline and not failure:
            failure = "timeout"
            os.killpg(p.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10   # then KILL
            a.time_limit = 0
        elif failure == "timeout" and deadline is not None and time.monotonic() > deadline:
            os.killpg(p.pid, signal.SIGKILL)
            deadline = None
    if stop and not failure:
        failure = "cancelled"
    code = rc if rc >= 0 else 128 - rc
    _write(os.path.join(d, "local.exit"), f"{code} {failure}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
