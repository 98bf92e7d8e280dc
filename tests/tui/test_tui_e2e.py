"""The real `batchman` in a real terminal (tmux) against a demo experiment with a live
daemon: add runs through the dialog, kill one, check the screen and the status file,
leave with Ctrl-C without a lock left behind."""

import os
import shutil
import signal
import subprocess
import sys

import pytest

from clusterhelp import poll

from batchman import demo
from batchman.experiment import open_experiment
from batchman.store.store import Store

pytestmark = pytest.mark.slow

BIN = os.path.dirname(sys.executable)


def _exe(name):
    p = os.path.join(BIN, name)
    return p if os.path.exists(p) else shutil.which(name)


def wait_for(pred, timeout=20.0, what=""):
    return poll(what or "condition", pred, timeout, 0.1)


def test_add_and_kill_in_a_real_terminal(tmp_path, tmux, monkeypatch):
    d = str(tmp_path / "demo")
    saved = dict(os.environ)
    special = demo.create(d, runs=6, speed=4)      # sets DEMO_* in os.environ for the analysis
    env = {k: v for k, v in os.environ.items() if k.startswith("DEMO_")}
    os.environ.clear()
    os.environ.update(saved)
    slow = special["slow"]                          # 1004: hangs until killed
    daemon = subprocess.Popen([_exe("batchman-daemon"), "-C", d, "--forever"], env={**os.environ, **env},
                              stdout=open(tmp_path / "daemon.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        e = open_experiment(d)
        store = Store(e.store.path)
        cmd = f"{_exe('batchman')} -C {d}"
        tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "bm", *sum((["-e", f"{k}={v}"] for k, v in env.items()), []),
             "-e", "NO_COLOR=", cmd)

        def pane():
            return tmux("capture-pane", "-p", "-t", "bm", check=False).stdout
        wait_for(lambda: "batchman: demo" in pane() or "no daemon" in pane() or "daemon pid" in pane(), what="the TUI")
        wait_for(lambda: "daemon pid" in pane(), what="the daemon's heartbeat on screen")
        tmux("send-keys", "-t", "bm", "a")
        wait_for(lambda: "add runs" in pane(), what="the add dialog")
        tmux("send-keys", "-t", "bm", "-l", "1000-1003,1004 1005")
        tmux("send-keys", "-t", "bm", "Enter")
        wait_for(lambda: "added 6 task(s): 1000-1005" in pane(), what="the added message")
        assert sorted(t.run for t in store.read().tasks) == list(range(1000, 1006))

        def slow_running():
            t = next(t for t in store.read().tasks if t.run == slow)
            return t.state == "running"
        wait_for(slow_running, timeout=30, what=f"run {slow} running")
        tmux("send-keys", "-t", "bm", "g")
        wait_for(lambda: "jump to run" in pane(), what="the jump prompt")
        tmux("send-keys", "-t", "bm", "-l", str(slow))
        tmux("send-keys", "-t", "bm", "Enter")
        wait_for(lambda: any(l.startswith(">") and f" {slow} " in l for l in pane().splitlines()), what="cursor on the run")
        tmux("send-keys", "-t", "bm", "x")
        wait_for(lambda: f"kill queued for 1 task(s) ({slow})" in pane(), what="the kill message")

        def aborted():
            t = next(t for t in store.read().tasks if t.run == slow)
            return t.state == "aborted"
        wait_for(aborted, timeout=30, what=f"run {slow} aborted in the file")
        t = next(t for t in store.read().tasks if t.run == slow)
        assert t.killed_in == "running"
        row = wait_for(lambda: next((l for l in pane().splitlines() if f" {slow} " in l and "aborted" in l), None),
                       what="the aborted row on screen")
        assert "killed in running" in row
        # Ctrl-C: the TUI ends at once and leaves no lock behind
        tmux("send-keys", "-t", "bm", "C-c")
        wait_for(lambda: tmux("has-session", "-t", "bm", check=False).returncode != 0, what="the TUI to exit")
        assert not store.is_locked() or wait_for(lambda: not store.is_locked(), timeout=5, what="lock free")
        others = [t for t in store.read().tasks if t.run != slow]
        assert all(t.request == "" for t in others)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(5)


def test_ctrl_s_saves_the_parameters_in_a_real_terminal(tmp_path, tmux):
    """Issue 16.2: Ctrl-S is the dialog's save key, not XOFF freezing the terminal."""
    from tuihelp import make_experiment
    e = make_experiment(tmp_path / "exp")
    cfg = os.path.join(e.root, "batchman.yaml")
    os.utime(cfg, (0, 0))
    tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "bm", "-e", "NO_COLOR=", f"{_exe('batchman')} -C {e.root}")

    def pane():
        return tmux("capture-pane", "-p", "-t", "bm", check=False).stdout
    wait_for(lambda: "? help" in pane(), what="the TUI")
    tmux("send-keys", "-t", "bm", "P")
    wait_for(lambda: "validate and save" in pane() or "ctrl s" in pane(), what="the parameter dialog")
    tmux("send-keys", "-t", "bm", "C-s")
    wait_for(lambda: "saved " in pane(), timeout=10, what="the saved message after Ctrl-S")
    assert os.stat(cfg).st_mtime > 0
    tmux("send-keys", "-t", "bm", "?")                 # the terminal still answers
    wait_for(lambda: "every key" in pane().lower() or "Task list" in pane(), what="the help screen")
    tmux("send-keys", "-t", "bm", "C-c")
    wait_for(lambda: tmux("has-session", "-t", "bm", check=False).returncode != 0, what="the TUI to exit")


def test_80x24_in_a_real_terminal(tmp_path, tmux):
    """Issue 16: at 80x24 nothing of the header or the key line wraps, request tags are whole,
    and in help the first Page Down scrolls a screen: in a real 80x24 terminal."""
    import batchman.actions as A
    from tuihelp import change, make_experiment
    e = make_experiment(tmp_path / "exp")
    A.add_runs(e.store, list(range(1000, 1010)))
    change(e.store, r1003=dict(state="incomplete", error="exit code 3"), r1004=dict(state="running", job_id="4711"))
    A.queue_request(e.store, {t.key for t in e.store.read().tasks if t.run == 1003}, "restart")
    tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "bm", "-e", "NO_COLOR=", f"{_exe('batchman')} -C {e.root}")

    def pane():
        return tmux("capture-pane", "-p", "-t", "bm", check=False).stdout.splitlines()
    wait_for(lambda: any("no daemon running" in line for line in pane()), what="the TUI")
    s = pane()
    assert s[0].startswith(" batchman: exp  10 task(s): 8 new, 1 running, 1 incomplete")
    assert s[1].startswith(" no daemon running, 9 task(s) pending: q offers to start one") and s[2].startswith(" 10 shown")
    assert s[-1].split()[0] == "?:help" and "quit" not in s[-2]
    assert "incomplete [restart]" in next(line for line in s if " 1003 " in line)
    tmux("send-keys", "-t", "bm", "?")
    wait_for(lambda: "batchman keys" in pane()[0], what="the help")
    first = pane()
    tmux("send-keys", "-t", "bm", "NPage")
    second = wait_for(lambda: pane() if pane()[1:-1] != first[1:-1] else None, what="help to scroll")
    assert second[1] not in first[1:-2]
    tmux("send-keys", "-t", "bm", "C-c")
    wait_for(lambda: tmux("has-session", "-t", "bm", check=False).returncode != 0, what="the TUI to exit")
