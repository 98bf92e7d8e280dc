"""The index lists both SLURM and Grid Engine print for a job array's elements (pure):
``7``, ``4,5``, ``0-9``, ``1-12:1``, ``2-10:4,15`` (comma-separated numbers or ranges, a range
with an optional ``:step``)."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")


def parse_ranges(text: str, what: str) -> list[int]:
    """The numbers ``text`` names, sorted; ValueError (naming ``what``) on anything else."""
    out: set[int] = set()
    for part in text.split(","):
        m = _PART.fullmatch(part.strip())
        if not m:
            raise ValueError(f"not {what}: {text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        step = int(m.group(3)) if m.group(3) else 1
        if hi < lo or step < 1:
            raise ValueError(f"not {what}: {text!r}")
        out.update(range(lo, hi + 1, step))
    return sorted(out)
