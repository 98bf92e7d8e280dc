"""Run specifications: ``N``, ``A-B``, lists with spaces or commas, files with # comments.

The same parser serves the CLI, the TUI's add dialog and run list files.
"""

from __future__ import annotations

import re

MAX_RANGE = 1_000_000


class RunSpecError(ValueError):
    pass


_TOKEN = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")


def parse(text: str, source: str = "") -> list[int]:
    """All runs named by ``text`` (one or more specs), in order, without duplicates.

    Raises RunSpecError naming the bad piece (and its line, for files).
    """
    runs: list[int] = []
    seen: set[int] = set()
    for lineno, line in enumerate(text.splitlines() or [text], 1):
        line = line.split("#", 1)[0]
        # normalise "1000 - 1010" to "1000-1010" before splitting on spaces and commas
        line = re.sub(r"\s*-\s*", "-", line.strip())
        for tok in re.split(r"[\s,]+", line):
            if not tok:
                continue
            m = _TOKEN.match(tok)
            where = f"{source}:{lineno}: " if source else ""
            if not m:
                raise RunSpecError(f"{where}{tok!r} is not a run number or a range A-B (examples: 1000, 1000-1010, 1000,1020)")
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) else a
            if b < a:
                raise RunSpecError(f"{where}range {tok!r} goes backwards; write {b}-{a}")
            if b - a >= MAX_RANGE:
                raise RunSpecError(f"{where}range {tok!r} names {b - a + 1} runs; more than {MAX_RANGE} at once is surely a typo")
            for r in range(a, b + 1):
                if r not in seen:
                    seen.add(r)
                    runs.append(r)
    return runs


def parse_many(specs: list[str]) -> list[int]:
    return parse("\n".join(specs))


def compress(runs: list[int]) -> str:
    """[1,2,3,5] -> '1-3,5' (for messages)."""
    runs = sorted(set(runs))
    out = []
    i = 0
    while i < len(runs):
        j = i
        while j + 1 < len(runs) and runs[j + 1] == runs[j] + 1:
            j += 1
        out.append(str(runs[i]) if i == j else f"{runs[i]}-{runs[j]}")
        i = j + 1
    return ",".join(out)


BRIEF = 6       # ranges a message names before it counts the rest


def brief(runs: list[int], most: int = BRIEF) -> str:
    """:func:`compress` for a message a person reads: the first ``most`` ranges and how many more
    ('1-3,5,9 and 9,994 more ranges'), not the 150 KB of 10,000 ranges of a campaign's failed runs."""
    parts = compress(runs).split(",")
    if len(parts) <= most + 1:
        return ",".join(parts)
    return ",".join(parts[:most]) + f" and {len(parts) - most:,} more ranges"
