"""The append-only journal of transitions (``<file>.journal``), each line tagged with the
generation it belongs to, so entries of a write that never landed can be skipped."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import msgspec


@dataclass
class Transition:
    """One change of a task's state, for the journal."""
    task: str
    old: str
    new: str
    why: str
    at: float
    by: str


_encoder = msgspec.json.Encoder()


def lines(transitions: list[Transition], generation: int, store_id: str) -> bytes:
    """The journal lines of one write's transitions (encoded before the lock is taken)."""
    return b"".join(_encoder.encode({"g": generation, "t": round(t.at, 3), "task": t.task, "from": t.old,
                                     "to": t.new, "why": t.why, "by": t.by, "s": store_id}) + b"\n"
                    for t in transitions)


def append(path: str, data: bytes) -> None:
    """Append one write's lines, fsynced before the write lands (status file or change log)."""
    if not data:
        return
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read(path: str, keys: set[str] | None = None, upto: int | None = None) -> list[dict]:
    """Journal entries (optionally of some tasks), skipping any of a write that never landed."""
    out = []
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        return out
    with f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue    # a torn last line after a crash
            if keys is not None and e.get("task") not in keys:
                continue
            if upto is not None and e.get("g", 0) > upto:
                continue
            out.append(e)
    return out
