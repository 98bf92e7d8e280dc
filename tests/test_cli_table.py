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


def test_a_state_lists_its_segment_tasks_one_by_one_and_a_cut_detail_says_it_is_cut(exp_dir):
    """`list --state failed` folded a run's failed segment task into '2120 reco[*] 0/1 segments
    completed, 1 failed' (the fraction of the tasks listed, and not which segment); a detail longer
    than its column ended mid-word, the merge step's '(restart or skip it)' gone without a sign."""
    from batchman.core.model import Task
    from batchman.experiment import open_experiment
    from clihelp import run
    wait = "waiting for reco: 1/3 segments completed; segment 1 failed (restart or skip it)"
    with open_experiment(str(exp_dir)).store.transaction("test") as st:
        st.tasks = [Task(run=2120, job="reco", seg=s, state=x, since=1.0) for s, x in
                    enumerate(["completed", "failed", "running"])] + [Task(run=2120, job="merge", since=1.0, reason=wait)]
    whole = run("list").output
    assert "reco[*]" in whole and "1/3 segments completed, 1 running, 1 failed" in whole and "reco[1]" not in whole
    merge = next(ln for ln in whole.splitlines() if " merge " in ln)
    assert wait[:57] + "..." in merge and wait not in merge
    failed = run("list", "--state", "failed").output
    assert "1 task(s) match: 1 failed" in failed and "reco[*]" not in failed and "segments completed" not in failed
    assert [ln.split()[:4] for ln in failed.splitlines()[3:]] == [["2120", "reco[1]", "-", "failed"]]
    assert "reco[*]" in run("list", "--job", "reco").output     # (a job picks runs' tasks whole: folded)


def test_show_of_a_run_of_several_tasks_names_the_list_that_shows_them_all(exp_dir):
    """`show 2120` in a per-file experiment asks for a job, then for a segment: each error also
    names the list of what there is to choose from."""
    from batchman.core.model import Task
    from batchman.experiment import open_experiment
    from clihelp import run
    with open_experiment(str(exp_dir)).store.transaction("test") as st:
        st.tasks = [Task(run=2120, job="reco", seg=s, since=1.0) for s in range(3)] + [Task(run=2120, job="merge", since=1.0)]
    r = run("show", "2120")
    assert r.exit_code == 1 and "several jobs (merge, reco); choose one with --job (`batchman list 2120` shows them all)" in r.output
    r = run("show", "2120", "--job", "reco")
    assert r.exit_code == 1 and "3 segment tasks (0, 1, 2)" in r.output and "`batchman list 2120.reco` shows them all" in r.output
    assert "reco[2]" in run("list", "2120.reco").output and "job merge" in run("show", "2120", "--job", "merge").output


def test_a_run_held_or_a_file_killed_shows_on_the_runs_folded_row(exp_dir):
    """`batchman hold 2120` in a per-file experiment: `list` showed '[held]' on the merge row
    only, the run's folded file tasks as plain 'unstaged'; `kill 2121.reco.1` showed nowhere."""
    from batchman.core.model import Task
    from batchman.experiment import open_experiment
    from clihelp import run
    with open_experiment(str(exp_dir)).store.transaction("test") as st:
        st.tasks = [Task(run=r, job="reco", seg=s, state="unstaged", since=1.0) for r in (2120, 2121) for s in range(3)]
        st.tasks += [Task(run=r, job="merge", since=1.0) for r in (2120, 2121)]
    assert run("hold", "2120").exit_code == 0 and run("kill", "2121.reco.1").exit_code == 0
    rows, at = {}, ""
    for ln in run("list").output.splitlines()[3:]:      # (a run's number shows on its first row)
        at = ln.split()[0] if ln[:6].strip() else at
        rows[(at, ln[6:].split()[0])] = ln
    assert "unstaged [held]" in rows[("2120", "reco[*]")] and "queued" not in rows[("2120", "reco[*]")]
    assert "[" not in rows[("2121", "reco[*]")].split("reco[*]")[1]
    assert rows[("2121", "reco[*]")].rstrip().endswith("1 kill queued; 0/3 segments completed, 3 unstaged")
    assert run("release", "2120.reco.0").exit_code == 0
    held = next(ln for ln in run("list", "2120").output.splitlines() if "reco[*]" in ln)
    assert "[held]" not in held and held.rstrip().endswith("2 held; 0/3 segments completed, 3 unstaged")
