"""A command reading a large status file says how far it has come, on a terminal only.

At a million tasks (~400 MB) `batchman list`, `add`, `export-html` or a `batchman-daemon
oneshot` with no daemon running spent seconds reading it in silence. Now one line on stderr,
written over itself ('reading status.json (405 MB): 40%') and wiped when the read ends, so the
command's own output starts on a clean line; nothing when stderr is not a terminal (a script,
cron, a pipe) or the file is small. The threshold is lowered here to read a small file so.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from click.testing import CliRunner

from batchman.cli.commands import main as cli
from batchman.core.model import Task
from batchman.store import snapshot
from batchman.store.store import Store
from batchman.util import progress as PR
from e2e_helpers import env_for, make_experiment


def screen(text: str) -> str:
    """What a terminal line shows after ``text`` (``\\r`` returns to its start; later characters
    overwrite earlier ones)."""
    line: list[str] = []
    col = 0
    for ch in text:
        if ch == "\r":
            col = 0
        else:
            line[col:col + 1] = [ch]
            col += 1
    return "".join(line)


def test_the_line_goes_up_a_percent_at_a_time_and_is_wiped_at_the_end():
    out = io.StringIO()
    p = PR.ReadProgress(out, "status.json", show_from=100)
    for done in (0, 10, 10, 11, 500, 999, 1000):
        p(done, 1000)
        if done == 500:
            assert screen(out.getvalue()) == "reading status.json (0 MB): 50%"
    text = out.getvalue()
    assert [t for t in text.split("\r") if t.strip()] == [f"reading status.json (0 MB): {n}%" for n in (0, 1, 50, 99)]
    assert screen(text).strip() == "" and text.endswith("\r")
    p(0, 2000)                                      # (a second read shows again)
    assert screen(out.getvalue()).rstrip() == "reading status.json (0 MB): 0%"


def test_a_small_file_shows_nothing():
    out = io.StringIO()
    p = PR.ReadProgress(out, "status.json")
    for done in (0, PR.SHOW_FROM // 2, PR.SHOW_FROM - 1):
        p(done, PR.SHOW_FROM - 1)
    assert out.getvalue() == ""


def test_the_store_tells_each_line_of_tasks_read_then_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "CHUNK", 10)      # (a line of tasks each 10: 4 lines)
    path = str(tmp_path / "status.json")
    with Store(path).transaction("test") as st:
        st.tasks = [Task(run=r) for r in range(35)]
    seen: list[tuple[int, int]] = []
    store = Store(path)
    store.progress = lambda done, size: seen.append((done, size))
    assert len(store.read().tasks) == 35
    size = os.path.getsize(path)
    assert len(seen) == 5 and seen[-1] == (size, size) and all(s == size for _, s in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[0][0] < size
    seen.clear()
    store.read()                                    # (not read again: nothing to tell)
    assert seen == []


def _list(root, terminal: bool, monkeypatch):
    monkeypatch.setattr(PR, "_is_terminal", lambda stream: terminal)
    return CliRunner().invoke(cli, ["-C", str(root), "list"])


def test_a_command_shows_it_on_a_terminal_and_not_in_a_pipe(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "CHUNK", 1)
    monkeypatch.setattr(PR, "SHOW_FROM", 0)
    make_experiment(tmp_path, [1, 2, 3])
    r = _list(tmp_path, True, monkeypatch)
    assert r.exit_code == 0, r.output
    assert "reading status.json (0 MB): " in r.stderr and screen(r.stderr).strip() == ""
    assert "3 task(s): 3 new" in r.stdout and "reading" not in r.stdout
    r = _list(tmp_path, False, monkeypatch)
    assert r.exit_code == 0 and r.stderr == ""


def test_a_oneshot_with_no_daemon_running_shows_it_on_its_terminal(tmp_path, monkeypatch):
    """The real `batchman-daemon oneshot`, its stderr a terminal (a pty); stdout a pipe."""
    monkeypatch.setattr(snapshot, "CHUNK", 1)       # (the file written here: a line a task)
    make_experiment(tmp_path, [1, 2, 3])
    code = ("import sys; from batchman.util import progress; progress.SHOW_FROM = 0; "
            "from batchman.daemon.main import main; main()")
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-c", code, "-C", str(tmp_path), "oneshot"], stdout=subprocess.PIPE,
                         stderr=slave, env=env_for(tmp_path), text=True)
    os.close(slave)
    got = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:                             # (EIO: the other end closed)
            break
        if not chunk:
            break
        got += chunk
    os.close(master)
    out, _ = p.communicate(timeout=60)
    err = got.decode()
    assert p.returncode == 0, out + err
    assert "reading status.json (0 MB): " in err and screen(err.replace("\n", "")).strip() == "", repr(err)
    assert "iteration done" in out and "reading" not in out
