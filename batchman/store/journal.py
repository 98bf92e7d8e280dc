"""The append-only journal of transitions (``<file>.journal``), each line tagged with the
generation it belongs to, so entries of a write that never landed can be skipped."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import msgspec

from batchman.store.lines import Lines


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
    """Journal entries (optionally of some tasks), skipping any of a write that never landed.

    For a few tasks (`batchman show`, the TUI's task view) only the lines that hold one of their
    keys are decoded: a journal of a million tasks is ~10 million lines; for 2,000,000 (290 MB)
    a task's history took 17.5 s with every line decoded, 0.17 s so (benchmarks/bench_read.py
    --journal)."""
    out = []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return out
    few = keys is not None and 0 < len(keys) <= FEW
    with f:
        for line in _holding(f, [k.encode() for k in keys]) if few else f:
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


FEW = 64                # keys looked for in the bytes, each a scan of the journal
BLOCK = 16 << 20


def _holding(f, needles: list[bytes]):
    """The lines of file ``f`` that hold one of ``needles``, in their order (the last one even
    without its newline), read in blocks of whole lines into one buffer (store/lines.py)."""
    lines = Lines(f, BLOCK)
    while (span := lines.block()) is not None:
        buf, (a, b) = lines.buf, span
        starts = set()
        for w in needles:
            i = buf.find(w, a, b)
            while i >= 0:
                starts.add(buf.rfind(b"\n", a, i) + 1 or a)
                i = buf.find(w, i + 1, b)
        for s in sorted(starts):
            yield bytes(buf[s:(buf.find(b"\n", s, b) + 1) or b])
