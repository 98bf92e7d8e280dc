"""Run list files with columns (AlCap's ``datasets`` table): ``run dataset quality ...``.

A file whose first line (after comments) is a header starting with ``run`` carries, per
run, values for the other columns; they are kept with the run's tasks (``Task.meta``)
and filter ``add``, ``list``, ``kill``, ``restart`` and the daemon (``--dataset``,
``--where KEY=VALUE``). Columns are separated by whitespace or commas. Without a header
the file is a plain run list (``batchman.runspec``). Pure: the caller reads the file.

    # run   dataset  quality
    run     dataset  quality
    2091    SiR2     gold
    2092    SiR2     silver
    2100-2105  Al50b  gold      (a range gives every run the same values)
"""

from __future__ import annotations

import re

from batchman.core import runspec
from batchman.core.runspec import RunSpecError

_SPLIT = re.compile(r"[\s,]+")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def has_header(text: str) -> bool:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return _SPLIT.split(line)[0].lower() == "run"
    return False


def parse(text: str, source: str = "") -> list[tuple[int, dict[str, str]]]:
    """[(run, {column: value})] in file order, without duplicate runs (the first row wins).

    Raises RunSpecError naming the file, line and what is wrong."""
    if not has_header(text):
        return [(r, {}) for r in runspec.parse(text, source)]
    columns: list[str] | None = None
    out: list[tuple[int, dict[str, str]]] = []
    seen: set[int] = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{lineno}: " if source else f"line {lineno}: "
        if columns is None:
            columns = [c for c in _SPLIT.split(line) if c][1:]
            bad = [c for c in columns if not _COLUMN.match(c)]
            if bad or len(set(columns)) != len(columns):
                raise RunSpecError(f"{where}header columns must be distinct names (letters, digits, _ . -): {line!r}")
            continue
        # "2100 - 2105" -> "2100-2105" before splitting
        cells = [c for c in _SPLIT.split(re.sub(r"^(\d+)\s*-\s*(\d+)", r"\1-\2", line)) if c]
        if len(cells) - 1 > len(columns):
            raise RunSpecError(f"{where}{len(cells) - 1} values for {len(columns)} column(s) "
                               f"({', '.join(columns)}): {line!r}")
        runs = runspec.parse(cells[0], source=f"{source}:{lineno}" if source else "")
        meta = dict(zip(columns, cells[1:]))
        for r in runs:
            if r not in seen:
                seen.add(r)
                out.append((r, meta))
    return out
