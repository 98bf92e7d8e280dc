"""Queued requests (``<file>.requests``): kill / restart / purge / priority / hold / note set
with a short append under the lock instead of a rewrite of the status file; every reader
applies them at once and the next writer merges them into the file."""

from __future__ import annotations

import json
import os
import time
from bisect import bisect_left
from itertools import compress
from operator import attrgetter

from batchman.core import states as S
from batchman.core.model import Status, Task

_RUN = attrgetter("run")

# Task fields a person may change with a queued line instead of a rewrite.
QUEUEABLE = ("request", "priority", "held", "note")


def signature(path: str) -> tuple | None:
    """(inode, size, mtime) of the requests file, None when it is absent or empty."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns) if st.st_size else None


def read_lines(path: str) -> list[dict]:
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue   # a torn last line after a crash
    except FileNotFoundError:
        pass
    return out


def append(path: str, generation: int, field: str, value, keys: list[str], command: str) -> dict:
    """One line, tagged with the generation it was queued against (so it is merged once); returns it."""
    rec = {"g": generation, "field": field, "value": value, "keys": keys, "by": command, "t": round(time.time(), 3)}
    with open(path, "a+b") as f:
        end, torn = f.seek(0, os.SEEK_END), False
        if end:                 # a line a crash or a full disk cut short: ours must not be glued to it
            f.seek(end - 1)
            torn = f.read(1) != b"\n"
        f.write((b"\n" if torn else b"") + json.dumps(rec).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return rec


def queue(path: str, copy, field: str, value, keys: list[str], command: str, idx: dict) -> None:
    """Append a line and apply it to ``copy`` (the store's follow.Copy, just read under the lock:
    every earlier line is applied), so that its next read need not look for these tasks again."""
    apply_requests(copy.status, [append(path, copy.status.generation, field, value, keys, command)], idx)
    copy.requests_sig = signature(path)


def forget(path: str) -> None:
    """The requests are in the file now: truncate the queue."""
    try:
        if os.path.getsize(path):
            os.truncate(path, 0)
    except FileNotFoundError:
        pass


def by_key(status: Status, keys) -> dict[str, Task]:
    """The tasks of ``keys`` (key -> task, or more): the status's index when it is made, else
    found by their runs in one C-level pass (~40 ms at 1,000,000 tasks; the index takes ~0.9 s)."""
    idx = status.known_index()
    if idx is not None:
        return idx
    found = by_bisection(status.tasks, keys)
    if found is not None:
        return found
    runs = {int(r) for r in (k.split(".", 1)[0] for k in keys) if r.isdigit()}
    tasks = status.tasks
    return {t.key: t for t in compress(tasks, map(runs.__contains__, map(attrgetter("run"), tasks)))
            if t.key in keys}


def by_bisection(tasks: list[Task], keys, most: int = 1000) -> dict[str, Task] | None:
    """The tasks of ``keys`` (at most ``most`` of them) looked up by bisection on their runs, as
    in a list in run order (a file written by batchman usually is: the TUI's kill of one task at
    1,000,000 tasks, ~0.3 s for the pass of ``by_key``); None unless every key is found so (a
    list in another order, a key of no task), which only a pass can tell."""
    if len(keys) > most:
        return None
    out: dict[str, Task] = {}
    for k in keys:
        run = k.split(".", 1)[0]
        if not run.isdigit():
            return None
        i = bisect_left(tasks, int(run), key=_RUN)
        while i < len(tasks) and tasks[i].run == int(run) and k not in out:
            if tasks[i].key == k:
                out[k] = tasks[i]
            i += 1
        if k not in out:
            return None
    return out


def apply_requests(status: Status, lines: list[dict], idx: dict | None = None) -> list[Task]:
    """Set the queued fields on the tasks they name (only lines not yet merged); returns those tasks."""
    todo = [ln for ln in lines if ln.get("g", -1) >= status.generation and ln.get("field") in QUEUEABLE]
    done: list[Task] = []
    if not todo:
        return done
    if idx is None:
        idx = by_key(status, {k for ln in todo for k in ln.get("keys", ())})
    for ln in todo:
        for k in ln.get("keys", ()):
            t = idx.get(k)
            if t is None:
                continue
            done.append(t)
            f = ln["field"]
            if f == "priority":
                t.priority = int(ln["value"])
            elif f == "held":
                t.held = bool(ln["value"])
            elif f == "note":
                t.note = str(ln["value"])
            elif S.request_applies(str(ln["value"]), t.state):
                t.request = str(ln["value"])
    return done
