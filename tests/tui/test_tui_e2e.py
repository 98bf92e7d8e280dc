"""The real `batchman` in a real terminal (tmux) against a demo experiment with a live
daemon: add runs through the dialog, kill one, check the screen and the status file,
leave with Ctrl-C without a lock left behind."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from clusterhelp import poll

from batchman import demo
from batchman.experiment import open_experiment
from batchman.store import Store

pytestmark = pytest.mark.slow

BIN = os.path.dirname(sys.executable)


def _exe(name):
    p = os.path.join(BIN, name)
    return p if os.path.exists(p) else shutil.which(name)


def wait_for(pred, timeout=20.0, what=""):
    return poll(what or "condition", pred, timeout, 0.1)


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed; the end-to-end TUI test needs it in CI")
        pytest.skip("tmux not installed")
    sock = f"batchman-test-{os.getpid()}-{time.time_ns()}"

    def t(*args, check=True):
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=check, timeout=10)
    yield t
    t("kill-server", check=False)


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
