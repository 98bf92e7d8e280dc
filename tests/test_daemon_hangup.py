"""`batchman-daemon &` in a terminal that then closes (an ssh session dropped, a laptop lid
closed): the shell sends its jobs SIGHUP. The daemon goes on, its output in a log file
(daemon/hangup.py). Before, it ended there and the production stood still. In a real terminal:
an interactive bash in tmux, whose session is then killed."""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from batchman import actions

from e2e_helpers import make_experiment, wait_for

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_daemon_goes_on_when_its_terminal_closes(tmp_path, tmux):
    e = make_experiment(tmp_path, [1], segments=1)
    tmux("new-session", "-d", "-x", "150", "-y", "30", "-s", "hup", "-e", f"TEST_LOG={tmp_path / 'jobs.log'}",
         "-e", f"PATH={os.environ['PATH']}", "bash --norc --noprofile -i")
    tmux("send-keys", "-t", "hup", "-l", f"{sys.executable} -m batchman.daemon -C {tmp_path} --forever &")
    tmux("send-keys", "-t", "hup", "Enter")

    def pane():
        return tmux("capture-pane", "-p", "-t", "hup", check=False).stdout
    wait_for(lambda: " working on " in pane(), what="the daemon's first line", show=pane)
    wait_for(lambda: e.store.read().daemons, what="the daemon registered")
    pid = e.store.read().daemons[0].pid
    wait_for(lambda: {t.state for t in e.store.read().tasks} == {"completed"}, what="run 1 completed")

    said = pane()
    tmux("kill-session", "-t", "hup")                    # the terminal closes: bash sends SIGHUP to its jobs
    logs = str(tmp_path / "logs" / "daemon-*.log")
    wait_for(lambda: glob.glob(logs), what="the daemon's log")
    time.sleep(1.0)
    assert alive(pid), "the daemon ended with its terminal"
    with open(glob.glob(logs)[0]) as f:
        assert f"the terminal closed (SIGHUP): batchman-daemon {pid} goes on" in f.read()

    (tmp_path / "raw" / "run_2.dat.0").write_text("x\n")
    actions.add_runs(e.store, [2])                       # it still works
    wait_for(lambda: [t.state for t in e.store.read().tasks] == ["completed", "completed"], what="run 2 completed",
             show=lambda: (str([(t.state, t.reason) for t in e.store.read().tasks]) + open(glob.glob(logs)[0]).read()))
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), what="the daemon to end on SIGTERM")
    assert e.store.read().daemons == []
    with open(glob.glob(logs)[0]) as f:
        assert "signal 15: stopping after this iteration" in f.read()
    # it told the person so, when it started in a terminal
    assert f"(closing this terminal does not stop it: its output then goes to {tmp_path / 'logs'}/daemon-" in said


@pytest.mark.parametrize("nohup, handled", [(False, "True"), (True, "False")])
def test_a_hangup_ignored_already_stays_ignored(nohup, handled, tmp_path):
    """Under nohup (or a service manager ignoring SIGHUP) the output is taken care of already."""
    code = "from batchman.daemon import hangup; print(hangup.keep_going(lambda: 'x'))"
    r = subprocess.run((["nohup"] if nohup else []) + [sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.stdout.strip() == handled
