"""`batchman list`'s table (batchman/cli/table.py) is laid out as tabulate's "simple" format was,
for the cells the table holds, without tabulate's cost per cell (issue 18: a million lines)."""

from __future__ import annotations

import random

import pytest
from tabulate import tabulate

from batchman.cli import table
from batchman.page import render as export

NUMBERS = (0, 2, 6)         # run, segs, try: ints (None: '-'; '': a run shown once for its group)
WORDS = ["analysis", "reco", "running", "completed [kill]", "exit 1", "job 5000054, PD", "6h49m",
         "events=10 rate=1.5", "finished 12-03 12:15", "1/3 staged", "held", "x"]
ODD = ["é", "漢", "字", " ", "\\x1b", "-", "=", "[", "]", ":", "ü", "🙂"]


def _text(rng: random.Random) -> str | None:
    k = rng.random()
    if k < 0.05:
        return None
    if k < 0.15:
        return ""
    s = rng.choice(WORDS)
    if rng.random() < 0.3:          # wide and accented characters, spaces at either end
        s = "".join(rng.choice(ODD) for _ in range(rng.randint(1, 4))) + s + rng.choice(["", " ", "漢"])
    return s


def _number(rng: random.Random):
    k = rng.random()
    return None if k < 0.1 else "" if k < 0.2 else rng.randint(0, 10 ** rng.randint(0, 8))


def _rows(rng: random.Random, n: int, all_none: set[int] = frozenset()) -> list[list]:
    return [[(None if c in all_none else _number(rng)) if c in NUMBERS else _text(rng)
             for c in range(len(export.TABLE_HEADERS))] for _ in range(n)]


@pytest.mark.parametrize("seed", range(60))
def test_the_table_is_tabulates_simple_format(seed):
    rng = random.Random(seed)
    rows = _rows(rng, rng.choice([1, 2, 5, 40, 300]), set(rng.sample(NUMBERS, rng.randint(0, 1))))
    expected = tabulate([list(r) for r in rows], headers=export.TABLE_HEADERS, tablefmt="simple", missingval="-")
    assert "\n".join(table.lines([list(r) for r in rows], export.TABLE_HEADERS, NUMBERS)) == expected


def test_a_table_of_no_rows_is_its_headers():
    expected = tabulate([], headers=export.TABLE_HEADERS, tablefmt="simple", missingval="-")
    assert "\n".join(table.lines([], export.TABLE_HEADERS, NUMBERS)) == expected


def test_wide_characters_take_two_columns():
    out = list(table.lines([[1, "漢字", 2, "ok", "", "", 1, ""], [22, "ab", 3, "ok", "", "", 1, ""]],
                           export.TABLE_HEADERS, NUMBERS))
    on_screen = [table.width(line[:line.index("ok")]) for line in out[2:]]
    assert on_screen[0] == on_screen[1]             # aligned on screen
    assert out[2].index("ok") == out[3].index("ok") - 2     # two characters taking four columns
    assert table.width("漢字") == 4 and table.width("ab") == 2
