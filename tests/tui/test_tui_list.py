"""The task list: rows, header, moving, filtering, sorting, marking, and refresh under a
concurrent writer keeping cursor, marks and filter."""

import threading
import time

from batchman import actions as A
from batchman.core.model import UnknownJob
from batchman.store.store import Store
from tuihelp import change, line_of, screen


def cursor_run(app) -> str:
    return next(line for line in screen(app).splitlines() if line.startswith(">")).split()[1]


def test_rows_show_state_time_detail_attempts_counters(filled, app_for):
    app = app_for(filled)
    row = line_of(app, " 1002 ")
    assert "running" in row and "job 4711" in row and "1h01m" in row and "[events=1234]" in row
    assert "  1  " in row          # attempts
    row = line_of(app, " 1001 ")
    assert "staging" in row and "1/2 staged" in row and "2m05s" in row and "   2 " in row
    assert "exit code 3" in line_of(app, " 1003 ")
    assert "killed in queued" in line_of(app, " 1005 ")
    assert "finished" in line_of(app, " 1004 ")


def test_header_counts_daemon_and_banners(filled, app_for):
    app = app_for(filled)
    s = screen(app)
    assert "10 task(s): 4 new, 1 staging, 1 queued, 1 running, 1 completed, 1 failed, 1 aborted" in s
    assert "daemon pid 4242 on node7, heartbeat 3s ago" in s
    assert "unreachable" not in s
    with filled.store.transaction("test daemon") as st:
        st.daemons[0].heartbeat = time.time() - 3600
        st.batch_unreachable_since = time.time() - 600
        st.unknown = [UnknownJob(name="bm.abc.2000.analysis.1", job_id="999", state="RUNNING", seen=time.time())]
    app.tick()
    s = screen(app)
    assert "(STALE)" in s
    assert "batch system unreachable since" in s
    assert "1 unknown job(s) under our name: bm.abc.2000.analysis.1 (999, RUNNING)" in s


def daemon_row(app, size=(120, 40)) -> tuple[str, list]:
    """The daemon line as drawn: its text and the attributes of its words."""
    for line in app.window.render(size, focus=True).content():
        text = b"".join(seg[2] for seg in line).decode()
        if "daemon" in text and "task(s):" not in text:
            return text.strip(), [seg[0] for seg in line if seg[2].strip()]
    raise AssertionError("no daemon line")


def test_stale_daemon_is_drawn_red(filled, app_for):
    app = app_for(filled)
    with filled.store.transaction("t") as st:
        st.daemons = []
    app.tick()
    text, attrs = daemon_row(app)
    assert text == "no daemon running, 7 task(s) pending: q offers to start one" and attrs == ["bad"]


def test_no_daemon_and_nothing_for_one_to_do_is_not_drawn_red(filled, app_for):
    """A production finished, or whose pending tasks are all held (`batchman hold`), with no
    daemon: the TUI drew 'no daemon recorded' in red as for a dead daemon; the page says it
    calmly, and so does the TUI now (at 80x24 too), naming its own keys (q, h) for what to do."""
    app = app_for(filled)
    with filled.store.transaction("t") as st:
        st.daemons = []
        for t in st.tasks:
            if t.state in ("new", "staging", "queued", "running"):
                t.held = True
    app.tick()
    text, attrs = daemon_row(app)
    assert text.startswith("no daemon running, 7 task(s) pending") and attrs == ["bad"]  # (staging, queued,
    with filled.store.transaction("t") as st:                                            # running: a hold
        for t in st.tasks:                                                              # does not stop them)
            if t.state in ("staging", "queued", "running"):
                t.state = "completed"
    app.tick()
    text, attrs = daemon_row(app, (80, 24))
    assert text == "no daemon running; 4 task(s) held: h on them releases them" and attrs == ["info"]
    with filled.store.transaction("t") as st:
        for t in st.tasks:
            if t.state == "new":
                t.state = "skipped"
    app.tick()
    assert daemon_row(app, (80, 24)) == ("no daemon running (production finished)", ["info"])


def test_locked_by_someone_else_is_shown(filled, app_for):
    app = app_for(filled)
    other = Store(filled.store.path)
    held, release = threading.Event(), threading.Event()

    def hold():
        with other.locked("someone-else"):
            held.set()
            release.wait(5)
    th = threading.Thread(target=hold)
    th.start()
    held.wait(5)
    try:
        app.tick()
        assert "locked by someone-else" in screen(app)
    finally:
        release.set()
        th.join()
    app.tick()
    app.tick()
    assert "locked by" not in screen(app)


def test_navigation_keys(filled, app_for):
    app = app_for(filled)
    assert cursor_run(app) == "1000"
    app.type("<down><down>")
    assert cursor_run(app) == "1002"
    app.type("<up>")
    assert cursor_run(app) == "1001"
    app.type("<end>")
    assert cursor_run(app) == "1009"
    app.type("<home>")
    assert cursor_run(app) == "1000"
    app.type("g1007<enter>")
    assert cursor_run(app) == "1007"
    app.type("g555<enter>")
    assert "run 555 is not in the list" in screen(app)
    app.type("<esc>")
    assert cursor_run(app) == "1007"


def test_page_down_and_up_with_many_tasks(exp, app_for):
    A.add_runs(exp.store, list(range(1, 501)))
    app = app_for(exp)
    screen(app)
    app.type("<page down>")
    first = int(cursor_run(app))
    assert first > 25
    app.type("<page down><page down>")
    assert int(cursor_run(app)) > first + 50
    app.type("<page up><page up><page up>")
    assert cursor_run(app) == "1"
    app.type("<end>")
    assert cursor_run(app) == "500"
    assert app.tasklist.walker.built < 200     # rows are built only for what was on screen


def test_filter_by_text_state_and_runs(filled, app_for):
    app = app_for(filled)
    app.type("/4711<enter>")
    s = screen(app)
    assert " 1002 " in s and " 1003 " not in s and "1 shown (filter: text '4711')" in s
    app.type("c")
    assert "10 shown" in screen(app)
    app.type("sproblem<enter>")
    s = screen(app)
    assert " 1003 " in s and " 1005 " in s and " 1002 " not in s
    assert "2 shown (filter: state incomplete,failed,aborted,error)" in s
    app.type("c/1000-1002,1009<enter>")
    s = screen(app)
    assert "4 shown (filter: runs 1000-1002,1009)" in s
    app.type("sfoo<enter>")
    assert "'foo' is not a state" in screen(app)
    app.type("<esc>c")


def test_sort_by_run_state_time(filled, app_for):
    app = app_for(filled)
    app.type("o")
    s = screen(app)
    assert "sorted by state" in s
    lines = [l for l in s.splitlines() if " analysis " in l]
    states = [l.split()[-0 + 3] if l.startswith(">") else l.split()[3] for l in lines]
    assert states.index("staging") < states.index("running") < states.index("completed") < states.index("aborted")
    app.type("o")
    s = screen(app)
    assert "sorted by time in state" in s
    lines = [l for l in s.splitlines() if " analysis " in l]
    assert " 1002 " in lines[0]          # an hour in its state: first
    app.type("o")
    assert "sorted by run" in screen(app)


def test_marks_toggle_range_filtered(filled, app_for):
    app = app_for(filled)
    app.type("<space>")               # marks 1000 and moves to 1001
    assert line_of(app, " 1000 ").startswith(" *")
    app.type("<down><down>V")         # range 1000..1003
    assert "marked 4 task(s); 4 marked in all" in screen(app)
    assert app.index.marks == {f"{r}.analysis" for r in range(1000, 1004)}
    app.type("u")
    assert not app.index.marks
    app.type("sactive<enter>*")
    assert app.index.marks == {f"{r}.analysis" for r in (1000, 1001, 1002, 1006, 1007, 1008, 1009)}
    app.type("*")
    assert not app.index.marks


def test_concurrent_writer_keeps_cursor_marks_and_filter(filled, app_for):
    app = app_for(filled)
    app.type("sactive<enter>")
    app.type("g1006<enter>")
    app.type("g1008<enter><space>")      # mark 1008 (cursor moves to 1009)
    app.type("g1006<enter>")
    assert cursor_run(app) == "1006"
    gen = app.index.status.generation
    # another process: the daemon moves 1000 on and kills 1001; a person adds runs with the CLI
    other = Store(filled.store.path)
    change(other, r1000=dict(state="queued", job_id="5000"), r1001=dict(state="aborted"))
    A.add_runs(other, [990, 995])
    app.tick()
    s = screen(app)
    assert app.index.status.generation > gen
    assert " 990 " in s and " 995 " in s               # new runs appear (new = active: the filter keeps them)
    assert " 1001 " not in s                          # no longer active: filtered out
    assert "job 5000" in line_of(app, " 1000 ")
    assert cursor_run(app) == "1006"                  # the cursor stays on its task
    assert line_of(app, " 1008 ").startswith(" *")    # the mark too
    assert "filter: state" in s


def test_purged_task_under_cursor_moves_cursor_to_neighbour(filled, app_for):
    app = app_for(filled)
    app.type("g1004<enter>")
    with Store(filled.store.path).transaction("t") as st:
        st.tasks = [t for t in st.tasks if t.run != 1004]
    app.tick()
    assert cursor_run(app) == "1005"


def test_keys_reuse_the_orders_of_the_status_and_a_kill_sorts_nothing_again(filled, app_for):
    app = app_for(filled)
    orders = app.index.orders
    app.type("oooo")                        # state, time, run, state
    app.type("sactive<enter>c/10<enter>c")
    made = orders.made
    assert made == 3                        # by run, state, time
    app.type("g1002<enter>x")               # kill: a request queued in place, same status
    assert app.index.orders is orders and orders.made == made
    assert "[kill]" in line_of(app, " 1002 ")
    app.type("/kill<enter>")                # the search text shows the new request
    s = screen(app)
    assert " 1002 " in s and " 1005 " in s and "2 shown" in s   # 1005: killed
