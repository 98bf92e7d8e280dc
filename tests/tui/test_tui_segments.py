"""A per: segment job in the TUI (issue 18): its segment tasks fold into one row per run that
counts them; enter shows and hides them; kill on the folded row asks for every segment task."""

import time

import pytest
import yaml

from batchman.core import states as S
from batchman.core.model import Task
from batchman.experiment import open_experiment
from tuihelp import line_of, screen


def per_file(exp, in_order: bool = False):
    """``exp`` with a per: segment job and its merge (written by name, merge first, unless
    ``in_order``: reco, then merge, as the per-file example)."""
    path = exp.params.root + "/batchman.yaml"
    with open(path) as f:
        raw = yaml.safe_load(f)
    raw["jobs"] = {"reco": {"per": "segment", "command": "true"},
                   "merge": {"trigger": "after: reco, all-segments", "command": "true"}}
    with open(path, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=not in_order)
    return open_experiment(exp.params.root)


@pytest.fixture
def exp(exp):
    """The conftest's experiment with a per: segment job and its merge."""
    return per_file(exp)


def with_segments(exp):
    now = time.time()
    with exp.store.transaction("test") as st:
        st.tasks += [Task(run=2120, job="reco", seg=i, state=s, since=now - 5)
                     for i, s in enumerate([S.COMPLETED, S.RUNNING, S.FAILED])]
        st.tasks.append(Task(run=2120, job="merge", since=now, reason="waiting for reco: 1/3 segments completed"))
    return exp


def test_segment_tasks_fold_into_one_row_and_enter_unfolds_them(exp, app_for):
    app = app_for(with_segments(exp))
    row = line_of(app, "reco[*]")
    assert "2120" in row and "failed" in row and "1/3 segments completed, 1 running, 1 failed" in row
    assert "reco[1]" not in screen(app)
    toks = line_of(app, "merge").split()
    assert toks[toks.index("merge") + 1] == "-"     # no file of its own: '-', not '0' segments
    app.type("<home><down><enter>")      # the folded row (after merge, by name): show its segment tasks
    s = screen(app)
    assert "reco[0]" in s and "reco[1]" in s and "reco[2]" in s and "reco[*]" in s
    app.type("<down><down><enter>")      # a segment task opens like any task
    assert "run 2120  job reco  segment 1" in screen(app)
    app.type("<esc><up><up><enter>")     # the folded row again: hide them
    assert "reco[1]" not in screen(app)


def test_a_request_on_the_folded_row_covers_every_segment_task(exp, app_for):
    app = app_for(with_segments(exp))
    app.type("<home><down>")
    assert [t.key for t in app.selection()] == ["2120.reco.0", "2120.reco.1", "2120.reco.2"]
    app.type(" ")                        # marked: the mark stands for the run's segment tasks
    app.type("<end>")
    assert [t.key for t in app.selection()] == ["2120.reco.0", "2120.reco.1", "2120.reco.2"]


def test_without_a_per_segment_job_the_list_is_not_folded_nor_walked_twice():
    from batchman.core.model import Status
    from batchman.tui.tasklist import TaskIndex
    idx = TaskIndex(lambda: False)
    tasks = [Task(run=1, job="reco", seg=i) for i in range(3)]
    idx.set_status(Status(tasks=tasks))
    assert idx.order == tasks
    idx = TaskIndex()
    idx.set_status(Status(tasks=tasks))
    assert len(idx.order) == 1 and idx.order[0].key == "1.reco"


def test_a_merge_step_shows_its_input_files_and_that_it_stages_none(exp, app_for):
    """The task view of a merge step said 'segments (0, 0 staged)  (not looked up yet)' and never
    which files it merged (its inputs: the segment tasks' outputs, which `batchman show` lists)."""
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli
    with exp.store.transaction("test") as st:
        st.tasks.append(Task(run=2121, job="merge", state=S.COMPLETED, since=time.time(), reason="exit 0",
                             inputs=tuple(f"out/reco2121_{i}.root" for i in range(3)), outputs=("out/merged2121.root",)))
    app = app_for(exp)
    app.type("g2121<enter><enter>")
    app.wait_background()
    s = screen(app)
    assert "run 2121  job merge" in s and "(none: job merge needs no staging)" in s and "not looked up" not in s
    assert "inputs (3)" in s and all(f"out/reco2121_{i}.root" in s for i in range(3))
    assert "outputs (1)" in s and "out/merged2121.root" in s
    out = CliRunner().invoke(cli, ["-C", exp.params.root, "show", "2121.merge"]).output
    assert "segments (0):\n  (none: job merge needs no staging)\n" in out and "inputs (3):" in out


def test_a_state_or_a_text_filter_lists_the_segment_tasks_it_picks_one_by_one(exp, app_for):
    """'s failed' showed '2120 reco[*] failed 0/1 segments completed, 1 failed': a folded row of
    the tasks the filter kept, counting only them and not saying which segment failed."""
    app = app_for(with_segments(exp))
    app.type("sfailed<enter>")
    s = screen(app)
    assert "reco[2]" in s and "reco[*]" not in s and "segments completed" not in s
    app.type("<enter>")                  # the row is the task itself: enter opens it
    assert "run 2120  job reco  segment 2" in screen(app)
    app.type("<esc>c/running<enter>")   # (c: filters cleared)
    s = screen(app)
    assert "reco[1]" in s and "reco[*]" not in s
    app.type("c")                        # no filter: one row for the run again
    assert "reco[*]" in screen(app) and "reco[1]" not in screen(app)


def test_h_on_the_folded_row_holds_the_runs_files_and_the_row_says_so(exp, app_for):
    """A hold of a run's file tasks showed on none of the rows the TUI lists at first (the folded
    row read 'running'): it says '[held]' now, or how many of them are held."""
    app = app_for(with_segments(exp))
    app.type("<home><down>")
    assert "held" not in line_of(app, "reco[*]")
    app.type("h")
    row = line_of(app, "reco[*]")
    assert "failed [held]" in row and "; " not in row
    app.type("<enter><down><down>h")     # release one of them (reco[1]): the folded row counts the others
    row = line_of(app, "reco[*]", (80, 24))     # (first: the end of the detail is cut at 80 columns)
    assert "2 held; 1/3 segments" in row and "[held]" not in row


def test_a_runs_rows_follow_batchman_yamls_job_order_at_80x24(exp, app_for):
    """As the per-file example defines them (reco, then its merge), and as `batchman list` shows
    them: the folded reco[*] row, then the merge step (the TUI sorted by name: merge first)."""
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli
    e = with_segments(per_file(exp, in_order=True))
    assert e.params.jobs.names() == ["reco", "merge"]
    app = app_for(e)
    rows = [line for line in screen(app, (80, 24)).splitlines() if "2120" in line]
    assert len(rows) == 2 and "reco[*]" in rows[0] and "merge" in rows[1], rows
    listed = CliRunner().invoke(cli, ["-C", exp.params.root, "list"]).output
    assert listed.index("reco[*]") < listed.index("merge")
    app.type("<home><enter>")            # the folded row is the first: its segment tasks under it
    rows = [line.split("2120", 1)[1].split()[0] for line in screen(app, (80, 24)).splitlines() if "2120" in line]
    assert rows == ["reco[*]", "reco[0]", "reco[1]", "reco[2]", "merge"], rows
