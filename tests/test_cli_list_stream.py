"""`batchman list` at scale: a task filtered out by its state is looked at once, the JSON is
written as it is made, and the real process ends without freeing its tasks, its output whole
and its exit code right."""

import io
import json
import os
import subprocess
import sys

from batchman.cli import reading
from batchman.cli.options import select
from batchman.core.model import Task
from batchman.experiment import open_experiment

from clihelp import run  # noqa: E402 - with the exp_dir fixture of conftest.py


class Watched:
    """A task that counts the attributes read from it."""
    looks = 0

    def __init__(self, run, state):
        self._t = Task(run=run, state=state)

    def __getattr__(self, name):
        Watched.looks += 1
        return getattr(self._t, name)


def test_select_looks_only_at_the_state_of_a_task_of_another_state():
    tasks = [Watched(1000 + i, "completed" if i % 10 else "failed") for i in range(100)]
    Watched.looks = 0
    chosen = select(tasks, {1000, 1010, 1011}, ("failed",), ("analysis",), None)
    assert Watched.looks == 100 + 10 + 2       # state of all; run of the 10 failed; job of the 2 left
    assert [t.run for t in chosen] == [1000, 1010]


def test_list_json_is_written_in_pieces_and_is_the_whole_list(monkeypatch):
    writes = []

    class Out(io.StringIO):
        def write(self, s):
            writes.append(s)
            return super().write(s)
    out = Out()
    monkeypatch.setattr(sys, "stdout", out)
    tasks = [Task(run=1000 + i, state="failed", error="exit 1") for i in range(2500)]
    reading._echo_json({"experiment": "x", "generation": 3}, tasks, 0.0, chunk=1000)
    data = json.loads(out.getvalue())
    assert data["experiment"] == "x" and data["generation"] == 3
    assert [t["run"] for t in data["tasks"]] == [t.run for t in tasks]
    assert len(writes) == 5 and max(map(len, writes)) < len(out.getvalue()) / 2
    out.seek(0)
    out.truncate()
    reading._echo_json({"experiment": "x"}, [], 0.0)
    assert json.loads(out.getvalue()) == {"experiment": "x", "tasks": []}


def _fill(root, n):
    store = open_experiment(str(root)).store
    with store.transaction("test") as st:
        st.tasks = [Task(run=1000 + i, state="failed" if i % 3 == 0 else "completed", error="exit 1")
                    for i in range(n)]


def test_the_real_list_ends_at_once_with_all_its_output_and_exit_code_0(exp_dir):
    _fill(exp_dir, 3000)
    expect = json.loads(run("list", "--state", "failed", "--json").output)     # in-process: returns
    exe = os.path.join(os.path.dirname(sys.executable), "batchman")
    for args, check in ((["--state", "failed", "--json"], lambda out: json.loads(out) == expect),
                        (["--state", "failed"], lambda out: out.count("exit 1") == 1000 and "1000 failed" in out)):
        p = subprocess.run([exe, "list", *args], capture_output=True, text=True, cwd=exp_dir)
        assert p.returncode == 0 and p.stderr == "" and check(p.stdout)
    # a reader that goes away early (of the JSON, of the table): still exit code 0, nothing on stderr
    for args in ("--json", ""):
        p = subprocess.run(f"{exe} list {args} | head -c 100 >/dev/null; echo ${{PIPESTATUS[0]}}", shell=True,
                           executable="/bin/bash", capture_output=True, text=True, cwd=exp_dir)
        assert p.stdout.strip() == "0" and p.stderr == "", args


def test_list_json_of_a_state_decodes_only_those_tasks_and_says_what_the_full_read_says(exp_dir, monkeypatch):
    from batchman.store import partial, store as store_mod
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)        # the change log in use, as at 1,000,000 tasks
    _fill(exp_dir, 300)
    store = open_experiment(str(exp_dir)).store
    with store.transaction("test") as st:
        st.tasks[1].state = "failed"                    # in the log only
        st.tasks[0].state = "running"
    store.queue_requests({st.tasks[3].key}, "priority", 9)
    chosen, real = [], partial.read
    monkeypatch.setattr(partial, "read", lambda s, states: chosen.append(real(s, states)) or chosen[-1])
    got = json.loads(run("list", "--state", "failed", "--json").output)
    assert len(chosen) == 1 and len(chosen[0].tasks) == 100      # 100 failed of 300, less one, plus one
    monkeypatch.setattr(partial, "read", lambda s, states: None)
    assert got == json.loads(run("list", "--state", "failed", "--json").output)
    assert [t["run"] for t in got["tasks"][:3]] == [1001, 1003, 1006] and got["tasks"][1]["priority"] == 9


def _table_of(output: str) -> str:
    lines = output.splitlines()
    return "\n".join(lines[next(i for i, line in enumerate(lines) if line.lstrip().startswith("run ")):])


def test_the_list_table_is_tabulates_and_is_written_in_pieces(exp_dir, monkeypatch):
    """Several jobs a run (the run shown once), a task without segments ('-'), wide characters and
    a control character in a counter: the lines tabulate made before."""
    from tabulate import tabulate
    from batchman.core.model import Segment
    from batchman.page import render as export
    e = open_experiment(str(exp_dir))
    with e.store.transaction("test") as st:
        st.tasks = [Task(run=1000 + i // 2, job="analysis" if i % 2 else "reco", state="completed" if i % 3 else "failed",
                         error="exit 1", since=1.7e9 + i, finished_at=1.7e9 + 60 * i,
                         counters={"events": i, "note": "漢字\x1b[2J"} if i % 5 == 0 else {},
                         segments=[Segment(path=f"/mss/raw/{i}.dat")] if i % 4 else [])
                    for i in range(5000)]
    now = 1.7e9 + 9e4
    monkeypatch.setattr(reading.time, "time", lambda: now)
    got = _table_of(run("list").output)
    from batchman.core.segview import by_run
    tasks = by_run(list(e.store.read().tasks), tuple(e.params.jobs.names()))
    rows = [export.table_row(t, now) for t in tasks]
    for i in range(len(rows) - 1, 0, -1):
        if tasks[i].run == tasks[i - 1].run:
            rows[i][0] = ""
    assert got == tabulate(rows, headers=export.TABLE_HEADERS, tablefmt="simple", missingval="-")
    assert [line.split()[:2] for line in got.splitlines()[2:5]] == [["1000", "analysis"], ["reco", "-"], ["1001", "analysis"]]
    assert "\x1b" not in got and "\\x1b[2J" in got and "-  completed" in got


def test_the_table_is_written_in_pieces_of_2000_lines(monkeypatch):
    writes = []
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setattr(sys.stdout, "write", writes.append)
    reading._echo_lines(iter([f"line {i}" for i in range(4500)]))
    assert [w.count("\n") for w in writes] == [2000, 2000, 500]
    assert "".join(writes).splitlines() == [f"line {i}" for i in range(4500)]


def test_list_reads_the_spools_of_at_most_refresh_most_running_jobs(exp_dir, monkeypatch):
    from batchman import report
    store = open_experiment(str(exp_dir)).store
    e = open_experiment(str(exp_dir))
    with store.transaction("test") as st:
        st.tasks = [Task(run=1000 + i, state="running", job_name=f"bm.x.{1000 + i}.analysis.1", job_id=str(i),
                         counters={"events": 1}) for i in range(4)]
    for t in st.tasks:
        os.makedirs(os.path.dirname(e.paths.spool(t.job_name)), exist_ok=True)
        report.append(e.paths.spool(t.job_name), {"events": 77})
    monkeypatch.setattr(reading, "REFRESH_MOST", 4)
    assert run("list").output.count("events=77") == 4            # fresh from each job's spool
    monkeypatch.setattr(reading, "REFRESH_MOST", 3)
    out = run("list").output
    assert out.count("events=77") == 0 and out.count("events=1") == 4     # the daemon's copy


def test_list_json_of_runs_decodes_only_their_tasks_and_says_what_the_full_read_says(exp_dir, monkeypatch):
    from batchman.store import partial
    _fill(exp_dir, 300)
    chosen, real = [], partial.read
    monkeypatch.setattr(partial, "read", lambda s, pick: chosen.append(real(s, pick)) or chosen[-1])
    for args in (["1010-1020", "--json"], ["1003", "1005.analysis", "--json"], ["1010-1020", "--state", "failed", "--json"]):
        chosen.clear()
        got = json.loads(run("list", *args).output)
        assert len(chosen) == 1 and {t.run for t in chosen[0].tasks} <= set(range(1003, 1021)), args
        with monkeypatch.context() as m:
            m.setattr(partial, "read", lambda s, pick: None)
            assert got == json.loads(run("list", *args).output), args
    assert [t["run"] for t in got["tasks"]] == [1012, 1015, 1018]


def test_the_table_of_some_runs_or_states_decodes_only_their_tasks_and_counts_those(exp_dir, monkeypatch):
    """At 1,000,000 tasks `batchman list 2120` took ~4 s, all but ~1 s to decode every task for
    a first line that counted every state; it now counts the tasks listed, as its rows."""
    from batchman.store import partial, store as store_mod
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)        # the change log in use, as at 1,000,000 tasks
    _fill(exp_dir, 300)
    store = open_experiment(str(exp_dir)).store
    with store.transaction("test") as st:
        st.tasks[13].state = "running"                   # in the log only
    chosen, real = [], partial.read
    monkeypatch.setattr(partial, "read", lambda s, pick: chosen.append(real(s, pick)) or chosen[-1])
    for args, first in ((["1010-1020"], "11 task(s) match: 1 running, 7 completed, 3 failed   ["),
                        (["--state", "failed"], "100 task(s) match: 100 failed   ["),
                        (["1003", "1005.analysis", "1013", "--state", "failed,running"], "2 task(s) match: 1 running, 1 failed   [")):
        chosen.clear()
        out = run("list", *args).output
        assert len(chosen) == 1 and len(chosen[0].tasks) < 300, args
        lines = out.splitlines()
        assert lines[0].startswith(first), (args, lines[0])
        assert len(lines) == 3 + int(first.split()[0])          # the first line, the header, its rule, the rows
        with monkeypatch.context() as m:
            m.setattr(partial, "read", lambda s, pick: None)    # the whole read: the same
            assert out == run("list", *args).output, args
    assert run("list", "5000").output.startswith("no task matches   [no daemon running]")
    assert run("list").output.startswith("300 task(s): 1 running, 199 completed, 100 failed   [")
