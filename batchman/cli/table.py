"""The task table of `batchman list`, line by line (pure).

tabulate guesses each column's type from every cell and copies the table several times over:
~80 us a row, 80 s for the million lines of a campaign of a million tasks. The table's columns
are known here, so this lays them out as tabulate's "simple" format does (tests/test_cli_table.py
compares the two): a number column right-aligned (None shown as "-"; all of it None or empty:
left, as tabulate has it), a text column left-aligned and stripped, each as wide as its widest
cell or its header plus two, two spaces between columns, a rule of dashes under the headers, no
space at the end of a line. Widths count a wide (East Asian) character as two, as tabulate does
with wcwidth.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from wcwidth import wcswidth

PAD = 2             # tabulate's MIN_PADDING: a column is at least its header's width plus this


def width(s: str) -> int:
    """Columns ``s`` takes on a terminal."""
    if s.isascii():
        return len(s)
    w = wcswidth(s)
    return len(s) if w < 0 else w


def lines(rows: Sequence[list], headers: Sequence[str], numbers: Sequence[int],
          missing: str = "-") -> Iterator[str]:
    """The table's lines: headers, rule, then one line a row. ``numbers``: the positions of the
    columns of ints (or None); the others hold text. ``rows`` are changed in place into text."""
    right = [False] * len(headers)
    for c in range(len(headers)):
        cells = [r[c] for r in rows]
        if c in numbers:
            right[c] = any(v is not None and v != "" for v in cells)
            cells = [missing if v is None else str(v) for v in cells]
        else:
            cells = [missing if v is None else (v if isinstance(v, str) else str(v)).strip() for v in cells]
        for r, v in zip(rows, cells):
            r[c] = v
    widths = [max(width(h) + PAD, _widest([r[c] for r in rows])) for c, h in enumerate(headers)]
    yield _line(headers, widths, right)
    yield "  ".join("-" * w for w in widths)
    for r in rows:
        yield _line(r, widths, right)


def _widest(cells: list[str]) -> int:
    if "".join(cells).isascii():        # (one look at the whole column: almost always)
        return max(map(len, cells), default=0)
    return max(map(width, cells), default=0)


def _line(cells: Sequence[str], widths: list[int], right: list[bool]) -> str:
    out = []
    for s, w, r in zip(cells, widths, right):
        if not s.isascii():
            w += len(s) - width(s)      # (str.ljust counts characters, not columns)
        out.append(s.rjust(w) if r else s.ljust(w))
    return "  ".join(out).rstrip(" ")
