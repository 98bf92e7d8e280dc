"""Actions from the keyboard: each is one short transaction, applied at once, visible in
the file and on the screen; several tasks are asked about first."""

import os
import time

import batchman.actions as A
from batchman.core.model import UnknownJob
from batchman.store.store import Store
from tuihelp import line_of, screen, task


def requests(exp):
    return {t.run: t.request for t in Store(exp.store.path).read().tasks if t.request}


def test_add_dialog_accepts_ranges_and_lists(filled, app_for):
    app = app_for(filled)
    app.type("a")
    assert "add runs" in screen(app) and "runs:" in screen(app)
    app.type("2000-2003, 2010 2012<enter>")
    s = screen(app)
    assert "added 6 task(s): 2000-2003,2010,2012" in s
    assert " 2010 " in s and "16 task(s)" in s
    assert {2000, 2001, 2002, 2003, 2010, 2012} <= {t.run for t in Store(filled.store.path).read().tasks}
    assert not filled.store.is_locked()


def test_add_dialog_shows_the_parsers_error_and_stays_open(filled, app_for):
    app = app_for(filled)
    app.type("a2005-2001<enter>")
    s = screen(app)
    assert "range '2005-2001' goes backwards; write 2001-2005" in s
    app.type("<esc>")
    assert "add runs" not in screen(app)


def test_add_dialog_job_and_priority_fields_and_skips(filled, app_for):
    app = app_for(filled)
    app.type("a1000,3000<down><ctrl u>")
    for _ in range(8):
        app.type("<backspace>")
    app.type("calib<down><backspace>5<enter>")
    s = screen(app)
    assert "added 2 task(s): 1000,3000" in s
    t = next(t for t in Store(filled.store.path).read().tasks if t.run == 3000)
    assert t.job == "calib" and t.priority == 5


def test_kill_one_applies_at_once(filled, app_for):
    app = app_for(filled)
    app.type("g1002<enter>x")
    assert requests(filled) == {1002: "kill"}
    assert "kill queued for 1 task(s) (1002)" in screen(app)
    assert "running [kill]" in line_of(app, " 1002 ")
    assert filled.store.max_lock_seconds < 1.0 and not filled.store.is_locked()


def test_kill_refuses_finished_tasks(filled, app_for):
    app = app_for(filled)
    app.type("g1004<enter>x")
    assert "nothing to kill: only active tasks can be killed" in screen(app)
    assert requests(filled) == {}


def test_kill_marked_asks_first_and_skips_finished(filled, app_for):
    app = app_for(filled)
    app.type("g1002<enter><space><space><space>")   # 1002, 1003 (failed), 1004 (completed)
    app.type("x")
    s = screen(app)
    assert "kill 1 tasks" not in s and requests(filled) == {1002: "kill"}
    app.type("g1006<enter><space>x")
    s = screen(app)
    assert "kill 2 tasks (1002,1006)?" in s and "(2 marked task(s) are not in a state to kill)" in s
    app.type("n")
    assert requests(filled) == {1002: "kill"}
    app.type("x")
    app.type("y")
    assert requests(filled) == {1002: "kill", 1006: "kill"}


def test_restart_failed_and_rerun_completed(filled, app_for):
    app = app_for(filled)
    app.type("g1004<enter>r")
    assert "completed tasks are re-run with R" in screen(app)
    app.type("R")
    assert requests(filled) == {1004: "restart"}
    app.type("g1003<enter>R")
    assert "only completed tasks are re-run" in screen(app)
    app.type("r")
    assert requests(filled) == {1004: "restart", 1003: "restart"}
    assert "failed [restart]" in line_of(app, " 1003 ")


def test_priority_up_and_down(filled, app_for):
    app = app_for(filled)
    app.type("g1007<enter>++-+")
    assert task(filled, 1007).priority == 2


def test_purge_menu_by_state(filled, app_for):
    A.add_runs(filled.store, [1100])
    from tuihelp import change
    change(filled.store, r1100=dict(state="completed"))
    app = app_for(filled)
    app.type("D")
    s = screen(app)
    assert "completed         2 task(s)" in s and "aborted           1 task(s)" in s
    app.type("c")
    assert "purge 2 tasks (1004,1100)?" in screen(app)
    app.type("y")
    assert requests(filled) == {1004: "purge", 1100: "purge"}
    app.type("Da")
    assert requests(filled)[1005] == "purge"
    app.type("Dm")                      # the task under the cursor (1000)
    assert requests(filled)[1000] == "purge"
    app.type("De")
    assert "no task is error" in screen(app)


def test_merge_unknown_is_disabled_until_the_core_has_adopt(filled, app_for, monkeypatch):
    with filled.store.transaction("t") as st:
        st.unknown = [UnknownJob(name="bm.abc.2000.analysis.1", job_id="999", state="RUNNING", seen=0.0)]
    app = app_for(filled)
    if not hasattr(A, "adopt"):
        app.type("U")
        assert "adopt: not available yet" in screen(app)
    calls = []

    def adopt(store, names):
        calls.append(names)
        return len(names)
    monkeypatch.setattr(A, "adopt", adopt, raising=False)
    app.type("U")
    assert "merge 1 unknown job(s) into the list: bm.abc.2000.analysis.1?" in screen(app)
    app.type("y")
    assert calls == [["bm.abc.2000.analysis.1"]]
    assert "merged 1 unknown job(s)" in screen(app)


def test_action_while_someone_holds_the_lock_is_a_message(filled, app_for):
    import threading
    filled.store.lock_timeout = 0.2
    filled.store._lock.timeout = 0.2
    app = app_for(filled)
    other = Store(filled.store.path)
    held, release = threading.Event(), threading.Event()

    def hold():
        with other.locked("slow-writer"):
            held.set()
            release.wait(5)
    th = threading.Thread(target=hold)
    th.start()
    held.wait(5)
    try:
        app.type("g1002<enter>")
        app.press("x")
        assert "is locked by slow-writer" in screen(app) and "Nothing was changed" in screen(app)
    finally:
        release.set()
        th.join()
    assert requests(filled) == {}


def test_quit_offers_to_start_a_daemon_when_work_is_pending(filled, app_for):
    started = []
    app = app_for(filled, spawn=lambda root, log: started.append(root) or "/tmp/d.log")
    with filled.store.transaction("t") as st:
        st.daemons = []
    app.tick()
    app.type("q")
    assert "Work is pending and no live daemon is recorded" in screen(app)
    app.type("<esc>")
    assert app.exit_code is None
    app.type("qy")
    assert started == [filled.root] and app.exit_code == 0
    assert "/tmp/d.log" in app.after_exit[0]


def test_quit_without_starting(filled, app_for):
    app = app_for(filled, spawn=lambda root, log: (_ for _ in ()).throw(AssertionError("no")))
    with filled.store.transaction("t") as st:
        st.daemons = []
    app.tick()
    app.type("qn")
    assert app.exit_code == 0


def test_quit_with_live_daemon_does_not_ask(filled, app_for):
    app = app_for(filled, spawn=lambda root, log: (_ for _ in ()).throw(AssertionError("no")))
    app.type("q")
    assert app.exit_code == 0


def test_spawn_daemon_detached(tmp_path, monkeypatch):
    from batchman.tui import app as appmod
    seen = {}

    class P:
        def __init__(self, argv, **kw):
            seen.update(argv=argv, **kw)
    monkeypatch.setattr(appmod.subprocess, "Popen", P)
    log = appmod.spawn_daemon(str(tmp_path), str(tmp_path / "logs" / "daemon-h-1.log"))
    assert seen["start_new_session"] is True and seen["argv"][-2:] == ["-C", str(tmp_path)]
    assert log == str(tmp_path / "logs" / "daemon-h-1.log") and os.path.exists(log)
    assert seen["stdout"].name == log


def test_daemon_started_from_the_tui_logs_with_the_experiment(filled, app_for, monkeypatch):
    """Issue 16: q, then yes, logged to /tmp/batchman-daemon-XXXX.log, outside the experiment.
    Now with the job logs (daemon.log_dir), named for the host and the time, and said."""
    from batchman import paths
    from batchman.tui import app as appmod
    seen = {}

    class P:
        def __init__(self, argv, **kw):
            seen.update(argv=argv, **kw)
            kw["stdout"].write(b"daemon says hello\n")
    monkeypatch.setattr(appmod.subprocess, "Popen", P)
    monkeypatch.setattr(paths.socket, "gethostname", lambda: "node7.example.org")
    now = time.mktime((2026, 12, 2, 3, 4, 5, 0, 0, -1))
    with filled.store.transaction("t") as st:
        st.daemons = []
    app = app_for(filled, spawn=appmod.spawn_daemon, clock=lambda: now)
    app.tick()
    logs = os.path.join(filled.root, "logs")
    app.type("q")
    assert f"(itsoutput:{logs}/daemon-*.log)" in "".join(screen(app).replace("│", " ").split())   # wrapped
    app.type("y")
    log = os.path.join(logs, "daemon-node7-20261202-030405.log")
    assert app.exit_code == 0 and seen["argv"][-2:] == ["-C", filled.root]
    assert app.after_exit == [f"batchman-daemon started in the background; its output goes to {log}"]
    assert "its output goes to" in app.message[0] and log in app.message[0]
    with open(log, "rb") as f:
        assert f.read() == b"daemon says hello\n"
    assert seen["stdout"].name == log


def test_daemon_log_directory_not_writable_is_a_message(filled, app_for, monkeypatch, tmp_path):
    from batchman.tui import app as appmod
    monkeypatch.setattr(appmod.subprocess, "Popen", lambda *a, **k: None)
    blocker = tmp_path / "file"
    blocker.write_text("")
    filled.params.values["daemon.log_dir"] = str(blocker / "logs")     # a file where the directory goes
    with filled.store.transaction("t") as st:
        st.daemons = []
    app = app_for(filled, spawn=appmod.spawn_daemon)
    app.tick()
    app.type("qy")
    assert app.exit_code is None and app.message[1]
    assert app.message[0].startswith(f"could not start batchman-daemon (its log {blocker}/logs/daemon-")


def test_merge_unknown_takes_the_job_in_with_the_real_adopt(filled, app_for):
    from batchman.core import states as S
    sid = filled.store.read().store_id
    name = f"bm.{sid}.4242.analysis.1"
    with filled.store.transaction("t") as st:
        st.unknown = [UnknownJob(name=name, job_id="777", state="running", seen=0.0),
                      UnknownJob(name="bm.other1.5.analysis.1", job_id="778", state="running", seen=0.0)]
    app = app_for(filled)
    app.type("U")
    app.type("y")
    assert "merged 1 unknown job(s) into the list; not merged: bm.other1.5.analysis.1" in screen(app)
    t = {t.run: t for t in filled.store.read().tasks}[4242]
    assert t.state == S.SUBMITTED and t.job_id == "777" and t.job_name == name


def test_pause_key_drains_and_hold_key_holds_then_releases(filled, app_for):
    app = app_for(filled)
    app.type("p")
    assert "PAUSED" in screen(app) and filled.store.read().paused
    app.type("p")
    assert "PAUSED" not in screen(app) and not filled.store.read().paused
    key = app.selection()[0].key
    app.type("h")
    assert "[held]" in screen(app) and {t.key: t.held for t in filled.store.read().tasks}[key]
    app.type("h")
    assert not {t.key: t.held for t in filled.store.read().tasks}[key]


def test_the_question_for_many_scattered_tasks_names_a_few_ranges_and_counts_the_rest(exp, app_for):
    """At 80x24 the question about 40 scattered runs fits on the screen (it once named every range)."""
    A.add_runs(exp.store, [2000 + 3 * i for i in range(40)])
    app = app_for(exp)
    app.type("*x")
    s = screen(app)
    assert "kill 40 tasks (2000,2003,2006,2009,2012,2015 and 34 more ranges)?" in s, s
    app.type("y")
    assert len(requests(exp)) == 40
    assert "kill queued for 40 task(s) (2000,2003,2006,2009,2012,2015 and 34 more ranges)" in screen(app)


def test_hold_key_counts_the_tasks_it_holds_and_names_those_held_already(filled, app_for):
    app = app_for(filled)
    app.type("g1000<enter>h")
    assert "held 1 task(s) (1000)" in screen(app)
    app.type("g1000<enter><space><space>h")         # 1000 (held) and 1001
    assert "held 1 task(s) (1000-1001), 1 held already" in screen(app)
    assert {t.run for t in filled.store.read().tasks if t.held} == {1000, 1001}
    app.type("h")                                   # every marked task held: released
    assert "released 2 task(s) (1000-1001)" in screen(app)


def test_a_key_on_a_full_disk_is_a_message_and_the_screen_stays(filled, app_for, monkeypatch):
    """Found filling a small disk under the TUI: `h` ended it ('Error: No space left on device')."""
    import errno
    from batchman.store import log, requests as queue, snapshot

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    app = app_for(filled)
    key = app.selection()[0].key
    with monkeypatch.context() as m:
        for module, name in ((queue, "append"), (log, "append"), (snapshot, "write")):
            m.setattr(module, name, full)
        for k in "hp":                     # a request (hold), a transaction (pause)
            app.type(k)
            s = screen(app)
            assert " No space left on device: cannot write in " in s and " 1001 " in s, s
    st = Store(filled.store.path).read()
    assert not st.paused and not any(t.held for t in st.tasks)
    app.type("h")                          # the space is back: the same key does it
    assert "[held]" in screen(app) and {t.key: t.held for t in Store(filled.store.path).read().tasks}[key]


def test_a_file_that_says_no_is_a_message_too(filled, app_for, monkeypatch):
    """Any OSError of a key's work (a file not ours to write, a directory gone) is said on the
    message line, as a locked file is; the screen stays."""
    def denied(*a, **kw):
        raise PermissionError(13, "Permission denied", "/data/exp/status.json.requests")
    app = app_for(filled)
    monkeypatch.setattr(A, "hold", denied)
    app.type("h")
    s = screen(app)
    assert " Permission denied (/data/exp/status.json.requests)" in s and " 1001 " in s


def test_quit_after_a_recent_oneshots_round_does_not_ask(filled, app_for):
    """Rounds from cron: the daemon line is calm until daemon.stale_after, and quitting the TUI
    asked every time whether to start a daemon nobody wants; after stale_after it asks again."""
    app = app_for(filled, spawn=lambda root, log: (_ for _ in ()).throw(AssertionError("no")))
    with filled.store.transaction("t") as st:
        st.daemons, st.last_round = [], time.time() - 30
    app.tick()
    assert "no daemon running since a round " in screen(app) and "s ago (a oneshot)" in screen(app)
    app.type("q")
    assert app.exit_code == 0
    late = app_for(filled)
    with filled.store.transaction("t") as st:
        st.last_round = time.time() - 3600
    late.tick()
    late.type("q")
    assert "Work is pending and no live daemon is recorded" in screen(late) and late.exit_code is None
