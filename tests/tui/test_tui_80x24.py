"""Issue 16: designed for 80x24 first. What a person saw at 80x24: the header and the
message line wrapped, the state column cut request tags ('incomplete [restar'), the detail
column was cut, and in help the first Page Down did nothing."""

import batchman.actions as A
from batchman.core.model import UnknownJob
from tuihelp import change, line_of, screen

SMALL = (80, 24)


def lines(app):
    s = screen(app, SMALL).splitlines()
    assert len(s) == 24 and all(len(x) <= 80 for x in s)
    return s


def with_requests(exp):
    """1003 incomplete with a restart queued (the issue's row), 1007 also held."""
    change(exp.store, r1003=dict(state="incomplete"), r1007=dict(state="incomplete", held=True))
    A.queue_request(exp.store, {t.key for t in exp.store.read().tasks if t.run in (1003, 1007)}, "restart")


def test_header_lines_are_one_line_each_at_80x24(filled, app_for):
    app = app_for(filled)
    s = lines(app)
    # every count on the first line, the daemon on the second: nothing wrapped into the next
    assert "10 tasks: 4 new 1 staging 1 queued 1 running 1 completed 1 failed 1 aborted" in s[0]
    assert s[1].startswith(" daemon pid 4242 on node7, heartbeat")
    assert s[2].startswith(" 10 shown, sorted by run")
    assert s[3].split()[:3] == ["run", "job", "state"]
    assert s[4].startswith(">") and " 1000 " in s[4]


def test_a_long_banner_stays_one_line(filled, app_for):
    with filled.store.transaction("t") as st:
        st.unknown = [UnknownJob(name=f"bm.abc.{2000 + i}.analysis.1", job_id=str(990 + i), state="RUNNING", seen=0.0)
                      for i in range(4)]
    app = app_for(filled)
    s = lines(app)
    assert s[2].startswith(" 4 unknown job(s) under our name: bm.abc.2000.analysis.1") and s[2].rstrip().endswith("…")
    assert s[3].startswith(" 10 shown")


def test_message_line_is_one_line_at_80x24(filled, app_for):
    app = app_for(filled)
    s = lines(app)
    assert s[-1].split() == ["?:help", "a:add", "enter:open", "x:kill", "r:restart", "/:filter", "s:states",
                             "space:mark", "q:quit"]
    assert "quit" not in s[-2]
    app.type("g1002<enter>x", SMALL)
    s = lines(app)
    assert s[-1].strip() == "kill queued for 1 task(s) (1002); the daemon does it next"
    # wide enough, the whole sentence
    assert "kill queued for 1 task(s) (1002); the daemon carries it out at its next iteration" in screen(app)


def test_state_column_shows_whole_request_tags(filled, app_for):
    with_requests(filled)
    app = app_for(filled)
    lines(app)
    assert "incomplete [restart]" in line_of(app, " 1003 ", SMALL)
    # a request and a hold together: shortened by design, the help says how
    assert "incomplete [rst,hld]" in line_of(app, " 1007 ", SMALL)
    app.type("?", SMALL)
    app.type("<end>", SMALL)
    assert "rst = restart" in screen(app, SMALL) and "hld = held" in screen(app, SMALL)


def test_detail_column_is_not_cut_at_80(filled, app_for):
    app = app_for(filled)
    row = line_of(app, " 1002 ", SMALL)
    assert row.rstrip().endswith("job 4711  [events=1234]")
    assert line_of(app, " 1003 ", SMALL).rstrip().endswith("exit code 3")
    # the segment count is in the detail while staging; wide screens keep its column
    assert line_of(app, " 1001 ", SMALL).rstrip().endswith("1/2 staged")
    assert "seg" in screen(app) and "seg" not in screen(app, SMALL).splitlines()[3]


def test_help_scrolls_a_page_on_the_first_page_down(filled, app_for):
    app = app_for(filled)
    app.type("?", SMALL)
    first = lines(app)[1:-1]
    app.type("<page down>", SMALL)
    second = lines(app)[1:-1]
    # a whole new screen of keys: the last line of the first screen is at most what stays
    assert len(set(first) & set(second) - {" " * 80}) <= 1
    assert second[0] not in first[:-1]
    app.type("<page up>", SMALL)
    assert lines(app)[1:-1] == first
    app.type("<down>", SMALL)                 # one line, at once
    assert lines(app)[1:-1] == first[1:] + [lines(app)[-2]]


def test_task_view_keeps_its_scroll_at_the_next_refresh(filled, app_for):
    from batchman.core.model import Segment
    change(filled.store, r1001=dict(segments=[Segment(f"raw/run_1001.dat.{i}", i < 5) for i in range(40)]))
    app = app_for(filled)
    app.type("g1001<enter><enter>", SMALL)
    app.wait_background()
    first = lines(app)[:-1]
    assert first[0].startswith(" run 1001  job analysis  —  esc back  d details")   # one line
    app.type("<page down>", SMALL)
    second = lines(app)[:-1]
    assert second[0] == first[0] and second[1] not in first[1:-1]
    app.tick()
    assert lines(app)[:-1] == second


def test_parameters_not_the_files_show_first_in_the_header(filled, app_for, monkeypatch):
    """The hook for issue 16.1: when the parameters in use are not batchman.yaml's (a bad file
    read with the last good values), ``App.params_problem`` says why and the header shows it
    first, on one line."""
    from batchman.tui.app import App
    app = app_for(filled)
    assert "parameters in use" not in screen(app, SMALL)
    monkeypatch.setattr(App, "params_problem", lambda self: "batchman.yaml: batch.queue_limit: 'ten' is not a number")
    app.tick()
    s = lines(app)
    assert s[2].startswith(" parameters in use are not the file's: batchman.yaml: batch.queue_limit:")
    assert s[3].startswith(" 10 shown")


def test_view_titles_keep_their_keys_on_one_line_at_80(filled, app_for):
    app = app_for(filled)
    app.type("g1002<enter><enter>", SMALL)
    assert lines(app)[0].rstrip() == " run 1002  job analysis  —  esc back  d details  l/e logs  x kill  r/R restart"
    app.type("l", SMALL)
    s = lines(app)
    assert s[0].rstrip() == " out log of run 1002 (attempt 1)   [following: f]  tab out/err  esc back"
    assert s[1].startswith("(no log yet: ")          # the path is below when the title has no room
