"""The status page's HTML without a browser: escaping, the calm end, rows, ranges, the journal."""

from __future__ import annotations

import re

import pytest

from batchman.core import states as S
from batchman.core.model import Daemon, IterationLog, Status, Task, UnknownJob
from batchman.page import html as H
from batchman.page.render import render_html
from batchman.store.store import Store

NOW = 1_800_000_000.0
EVIL = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def page(status, **kw):
    return H.page(status, NOW, kw.pop("stale_after", 300.0), 60, kw.pop("title", "exp"), kw.pop("deltas", None))


def test_everything_a_job_or_a_person_put_in_is_escaped():
    t = Task(run=1, job="reco", state=S.FAILED, error=EVIL, job_id=EVIL, counters={"note": EVIL},
             outputs=(EVIL,), meta={"dataset": EVIL}, since=NOW, finished_at=NOW)
    w = Task(run=2, job="hist", state=S.NEW, reason=EVIL, meta={"dataset": EVIL})
    st = Status(tasks=[t, w], daemons=[Daemon(id="x", host=EVIL, pid=1, started=NOW, heartbeat=NOW)],
                unknown=[UnknownJob(name=EVIL, job_id=EVIL, state=EVIL, seen=NOW)],
                last_iteration=IterationLog(at=NOW, errors=[EVIL]), batch_last_error=EVIL, batch_last_error_at=NOW)
    text = page(st, title=EVIL)
    assert text.count("<script") == 1 and "<img" not in text and "onerror=alert(1)>" not in text
    # shown: the host, title, reason, error, job id, counter, output, dataset, unknown job, round error, batch error
    assert text.count(" onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;") >= 11


def test_a_finished_production_is_calm_and_never_turns_stale():
    text = page(Status(tasks=[Task(run=1, state=S.COMPLETED, since=NOW)]))
    assert "no daemon running, " not in text       # (not the red line of work pending)
    assert "<p id='hb' class='calm'>no daemon running (production finished)</p>" in text
    assert "data-stale='0'" in text


@pytest.mark.parametrize("daemons,tasks,armed", [
    ([Daemon(id="h:1", host="h", pid=1, started=NOW, heartbeat=NOW - 5)], [Task(run=1, state=S.QUEUED)], True),
    ([], [Task(run=1, state=S.QUEUED)], True),          # work pending: a page no daemon rewrites goes stale
    ([Daemon(id="h:1", host="h", pid=1, started=NOW, heartbeat=NOW)], [Task(run=1, state=S.COMPLETED)], True),
])
def test_the_stale_check_is_armed_while_a_daemon_is_expected(daemons, tasks, armed):
    text = page(Status(tasks=tasks, daemons=daemons), stale_after=120)
    assert ("data-stale='120'" in text) is armed and f"data-written='{NOW:.0f}'" in text


def test_a_daemon_stale_at_writing_is_red_already_without_scripts():
    st = Status(tasks=[Task(run=1, state=S.QUEUED)], daemons=[Daemon(id="h:1", host="h", pid=1, started=NOW, heartbeat=NOW - 900)])
    assert re.search(r"<p id='hb' class='bad'>daemon pid 1 on h, heartbeat <span data-t='\d+'>15m00s</span> ago: is it running\?", page(st))


def test_problem_groups_link_to_their_first_row():
    tasks = [Task(run=r, state=S.FAILED, failure_class="out-of-memory", error="oom", since=NOW) for r in (5, 6, 7, 9)]
    tasks.append(Task(run=3, state=S.ERROR, reason="no segments", since=NOW))
    text = page(Status(tasks=tasks))
    assert "4 run(s) failed [out-of-memory]: oom</b>: <span class='ranges'>5-7, 9</span> <a href='#g1'>rows</a>" in text
    assert "<tr class='s-failed' id='g1'><td>5</td>" in text and "<tr class='s-error' id='g2'><td>3</td>" in text


def test_a_long_list_of_runs_shows_its_head_and_the_rest_on_demand():
    tasks = [Task(run=r, state=S.FAILED, error="oom", since=NOW) for r in range(1, 60, 2)]
    text = page(Status(tasks=tasks))
    assert "<span class='ranges'>1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, …</span>" in text
    assert "<summary>all 30 ranges</summary><p class='ranges'>1, 3, 5," in text and ", 57, 59</p></details>" in text


def test_bulk_states_are_ranges_that_open_on_demand_with_rows_only_when_few(monkeypatch):
    monkeypatch.setattr(H, "BULK_ROWS", 3)
    few = [Task(run=r, state=S.NEW) for r in (1, 2)]
    many = [Task(run=r, state=S.COMPLETED, since=NOW) for r in [*range(10, 20), 25]]
    text = page(Status(tasks=few + many))
    assert "<summary>11 completed task(s), 11 run(s)</summary><p class='ranges'>10-19,25</p></details>" in text
    assert "<summary>2 new task(s), 2 run(s)</summary><p class='ranges'>1-2</p><table class='rows'>" in text
    assert text.count("<tr class='s-completed'") == 0 and text.count("<tr class='s-new'") == 2


def test_rows_beyond_the_cap_become_ranges(monkeypatch):
    monkeypatch.setattr(H, "ROW_CAP", 4)
    tasks = [Task(run=r, state=S.RUNNING, since=NOW) for r in range(1, 11)]
    text = page(Status(tasks=tasks))
    assert text.count("<tr class='s-running'") == 4
    assert "<summary>6 more running run(s) not listed</summary><p class='ranges'>5-10</p>" in text


def test_breakdowns_per_job_and_per_dataset_only_when_there_is_more_than_one():
    one = [Task(run=r, job="reco", state=S.NEW) for r in range(3)]
    assert "Per job" not in page(Status(tasks=one)) and "Per dataset" not in page(Status(tasks=one))
    two = one + [Task(run=r, job="hist", state=S.COMPLETED, since=NOW, meta={"dataset": "Al50"}) for r in range(2)]
    text = page(Status(tasks=two))
    assert "<tr><td>hist</td><td>2</td><td>0</td><td>0</td><td>0</td><td>0</td><td>2</td></tr>" in text
    assert "<tr><td>Al50</td><td>2</td>" in text and "<tr><td>(none)</td>" in text


def test_the_page_works_without_scripts():
    text = page(Status(tasks=[Task(run=1, state=S.RUNNING, since=NOW - 65)]))
    assert "<noscript><meta http-equiv='refresh' content='60'></noscript>" in text
    assert re.search(r"<input id='filter'[^>]* hidden", text)       # the filter appears with the script only
    assert "<li class='s-running'>running <b>1</b></li>" in text and "<td>1m05s</td>" in text


def test_tasks_per_state_over_time_come_from_the_stores_journal(tmp_path):
    store = Store(str(tmp_path / "status.json"))
    with store.transaction("test") as st:
        st.tasks = [Task(run=r, state=S.NEW, since=NOW - 7200) for r in range(4)]
        for t in st.tasks:
            store.record(t.key, "", S.NEW, "added", "test", at=NOW - 7200)
    with store.transaction("test") as st:
        for t in st.tasks[:3]:
            store.record(t.key, S.NEW, S.COMPLETED, "done", "test", at=NOW - 3600)
            t.state, t.since, t.finished_at = S.COMPLETED, NOW - 3600, NOW - 3600
    status = store.read()
    text = render_html(status, now=NOW, journal=store.journal_path)
    assert "Tasks per state, since" in text
    pts = re.search(r'<polygon points="([^"]+)" class="g-completed">', text).group(1).split()
    xs_top = [tuple(map(float, p.split(","))) for p in pts[: len(pts) // 2]]
    assert xs_top[0][1] > xs_top[-1][1]          # the completed area grows from nothing to 3 tasks
    assert "completed 3</text>" in text and "waiting 1</text>" in text
    assert "Tasks per state" not in render_html(status, now=NOW)       # no journal, no history plot


def test_a_daemon_on_its_previous_parameters_is_said_in_the_header_on_one_escaped_line():
    """Issue 16.1: batchman.yaml was edited and does not validate; the daemon keeps its
    previous parameters and the page says so, in the header, before the other banners."""
    calm = page(Status(tasks=[Task(run=1, state=S.NEW)], paused=True))
    assert "does not validate" not in calm
    st = Status(tasks=[Task(run=1, state=S.NEW)], paused=True,
                params_problem=f"not valid YAML: mapping values are not allowed here {EVIL}",
                params_problem_since=NOW - 300)
    text = page(st)
    header = text.split("</header>")[0]
    found = re.findall(r"<p class='bad'>batchman.yaml does not validate since [^<]*</p>", header)
    assert len(found) == 1 and "\n" not in found[0]
    from batchman.page.render import duration
    assert f"({duration(300)}): not valid YAML" in found[0]
    assert "mapping values are not allowed here &quot;&gt;&lt;img src=x" in found[0]
    assert found[0].endswith("the daemon keeps its previous parameters (`batchman check`)</p>")
    assert "<img" not in text
    assert header.index("does not validate") < header.index("PAUSED")


def test_segment_tasks_are_labelled_and_counted_per_run_problem_runs_first():
    segs = [Task(run=r, job="reco", seg=i, state=s, since=NOW)
            for r, states in ((2120, [S.COMPLETED, S.COMPLETED]), (2121, [S.COMPLETED, S.FAILED, S.RUNNING]))
            for i, s in enumerate(states)]
    text = page(Status(tasks=segs + [Task(run=2121, job="merge", since=NOW)]))
    assert "<td>reco[1]</td>" in text
    assert "2 run(s) with one task per segment" in text
    first, second = text.index("1/3 segments completed, 1 running, 1 failed"), text.index("2/2 segments completed")
    assert first < second
    assert "one task per segment" not in page(Status(tasks=[Task(run=1, since=NOW)]))


def test_a_production_left_with_held_tasks_only_is_calm_and_never_turns_stale(tmp_path):
    """`batchman hold`, then a daemon round (oneshot): the page said '3 task(s) pending: start one
    with batchman-daemon' in red and turned 'not updated' after daemon.stale_after, though a
    daemon does nothing for held tasks (a looping one stops: nothing left to track)."""
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli
    from e2e_helpers import daemon_run, make_experiment
    e = make_experiment(tmp_path, [1, 2, 3])

    def hold_then_round(*runs):
        assert CliRunner().invoke(cli, ["-C", str(tmp_path), "hold", *runs]).exit_code == 0
        assert daemon_run(tmp_path, "quietone").returncode == 0
        with open(e.store.html_path, encoding="utf-8") as f:
            return f.read().replace("&#x60;", "`")
    text = hold_then_round("1", "2")               # run 3 goes on: a daemon has work (the next oneshot's)
    assert "<p id='hb' class='calm'>no daemon running since a round " in text
    assert "s ago (a oneshot), 3 task(s) pending</p>" in text
    assert "data-stale='0'" not in text
    e = make_experiment(tmp_path / "all", [1, 2])
    tmp_path = tmp_path / "all"
    text = hold_then_round("1", "2")
    assert "<p id='hb' class='calm'>no daemon running; 2 task(s) held: `batchman release` lets them go on</p>" in text
    assert "data-stale='0'" in text


def test_runs_held_while_the_others_end_are_left_out_of_the_estimated_end(tmp_path):
    """`batchman hold 1 2`, then `batchman-daemon` does run 3 and stops: the page estimated
    'end in ~20m' from run 3's end, counting the held runs, which wait for a person."""
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli
    from e2e_helpers import daemon_run, make_experiment
    e = make_experiment(tmp_path, [1, 2, 3], segments=1)
    assert CliRunner().invoke(cli, ["-C", str(tmp_path), "hold", "1", "2"]).exit_code == 0
    r = daemon_run(tmp_path)
    assert r.returncode == 0 and "nothing left to track" in r.stdout + r.stderr, r.stdout + r.stderr

    def page():
        with open(e.store.html_path, encoding="utf-8") as f:
            return f.read().replace("&#x60;", "`")
    text = page()
    assert "1 of 3 done" in text and "1 ended in the last hour" in text
    assert "<span>2 held (no end estimated for them: `batchman release` lets them go on)</span>" in text
    assert "end in ~" not in text
    assert CliRunner().invoke(cli, ["-C", str(tmp_path), "release", "2"]).exit_code == 0
    assert daemon_run(tmp_path, "quietone").returncode == 0     # (run 2 taken up: one left held)
    text = page()
    assert "<span>1 held (no end" in text and "end in ~" in text


def test_a_runs_rows_and_the_jobs_table_follow_batchman_yaml_like_batchman_list(tmp_path):
    """The per-file example (reco per file, then merge): the page listed run 1001's merge above
    its reco[0..2] and the jobs' table merge first (by name), where `batchman list` and the
    TUI follow batchman.yaml. In every table of rows: finished, problems, active ones."""
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli
    from e2e_helpers import example_experiment
    e = example_experiment(tmp_path, "per-file")
    done = dict(state=S.COMPLETED, since=NOW, finished_at=NOW)
    with e.store.transaction("test") as st:
        st.tasks = ([Task(run=1001, job="merge", **done)] + [Task(run=1001, job="reco", seg=i, **done) for i in (2, 0, 1)]
                    + [Task(run=1002, job="merge", state=S.FAILED, since=NOW, error="exit 3"),
                       Task(run=1002, job="reco", seg=0, state=S.FAILED, since=NOW, error="exit 3")]
                    + [Task(run=1003, job="merge", state=S.RUNNING, since=NOW),
                       Task(run=1003, job="reco", seg=0, state=S.RUNNING, since=NOW)])
    r = CliRunner().invoke(cli, ["-C", str(tmp_path), "export-html"])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "status.html").read_text()
    rows = re.findall(r"<tr class='s-\w+'(?: id='\w+')?><td>(\d+)</td><td>([\w\[\]*]+)</td>", text)
    for run, order in (("1001", ["reco[0]", "reco[1]", "reco[2]", "merge"]), ("1002", ["reco[0]", "merge"]),
                       ("1003", ["reco[0]", "merge"])):
        assert [j for r_, j in rows if r_ == run and j != "reco[*]"] == order, rows
    jobs = text[text.index("<h2>Per job</h2>"):]
    assert jobs.index("<td>reco</td>") < jobs.index("<td>merge</td>")


def test_no_end_is_estimated_while_the_production_is_paused(tmp_path):
    """`batchman pause` (a drain: nothing new starts): the page went on saying 'end in ~30m'
    from the rate of ends before the pause; `batchman resume` brings the estimate back."""
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli
    from e2e_helpers import make_experiment
    e = make_experiment(tmp_path, [1, 2, 3, 4])
    import time
    with e.store.transaction("test") as st:        # two ended half an hour ago, two waiting
        for t in st.tasks[:2]:
            t.state, t.since, t.finished_at = S.COMPLETED, time.time() - 1800, time.time() - 1800

    def page_after(*command):
        assert CliRunner().invoke(cli, ["-C", str(tmp_path), *command]).exit_code == 0
        assert CliRunner().invoke(cli, ["-C", str(tmp_path), "export-html"]).exit_code == 0
        return (tmp_path / "status.html").read_text()
    text = page_after("pause")
    assert "<span>no end estimated while paused</span>" in text and "end in ~" not in text
    text = page_after("resume")
    assert "end in ~30m00s" in text and "no end estimated" not in text      # (2 ends in 30 min: 2 left)
