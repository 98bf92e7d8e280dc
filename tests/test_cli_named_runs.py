"""Issue 18: a command that names a few runs (show, kill, restart, skip, hold, release, priority)
reads only their tasks from a big status file (store/partial.py), not the whole of it: at
1,000,000 tasks `batchman kill 1234` took 7 s and 1.4 GB. What it says and what it queues must be
what the whole read gives, and a request is queued against the generation of the moment it is
appended, even when another process writes between the command's read and its lock."""

import json
import re

import pytest

from batchman.core.model import Attempt, Segment, Task
from batchman.experiment import open_experiment
from batchman.store import partial, requests, snapshot, store as store_mod

from clihelp import run  # noqa: E402 - with the exp_dir fixture of conftest.py

STATES = ["new", "unstaged", "queued", "running", "completed", "failed", "aborted"]


@pytest.fixture
def big(exp_dir, monkeypatch):
    """An experiment whose status file has many lines of tasks and a change log, as at a million
    tasks; then two writes in the log and a queued request."""
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    monkeypatch.setattr(snapshot, "CHUNK", 7)
    store = open_experiment(str(exp_dir)).store
    with store.transaction("test") as st:
        st.tasks = [Task(run=1000 + i, state=STATES[i % 7], segments=[Segment(f"raw/{i}.dat")], reason="r",
                         past=[Attempt(n=1, state="failed")] if i % 5 == 0 else [],
                         counters={"x": [{"a": 1}, {"run": 1001 + i, "state": "running"}]} if i % 11 == 0 else {})
                    for i in range(60)]
        st.tasks += [Task(run=1070, job="reco", seg=s, state="running") for s in range(3)]
    store.compact()
    with store.transaction("test") as st:
        st.tasks[3].state = "completed"                 # 1003: running in the file, completed in the log
        st.tasks.append(Task(run=1080, state="running"))
    store.queue_requests({"1005.analysis"}, "priority", 4)
    return exp_dir


def timeless(out: str) -> str:
    """The output without the times it shows (how long in a state, and when): two runs of a
    command a moment apart may cross a second."""
    return re.sub(r'"(in_state_s|t|since|at)": [0-9.]+|for \d+[smhd]\S*|\d\d:\d\d:\d\d', "T", out)


def queued(exp_dir):
    lines = requests.read_lines(str(exp_dir / "status.json.requests"))
    return [{k: v for k, v in ln.items() if k != "t"} for ln in lines]


COMMANDS = [("show", "1003"), ("show", "1070.reco.1"), ("show", "1070", "--segment", "2"), ("show", "1077"),
            ("show", "1003", "--json"),
            ("kill", "1003"), ("kill", "1010"), ("kill", "1070.reco", "--yes"), ("kill", "1080", "1024", "--yes"),
            ("kill", "1003", "1004", "--state", "running", "--yes"), ("restart", "1004", "1011", "--yes"),
            ("skip", "1001", "--reason", "bad run"), ("hold", "1080"), ("release", "1080"),
            ("priority", "1005", "1006", "9"), ("priority", "5000", "1"),
            ("hold", "1000-1020"), ("kill", "1000-1030", "1070.reco", "--yes"),         # more runs than needles serve
            ("restart", "--state", "failed", "--yes"), ("kill", "--state", "running"),   # states alone
            ("hold", "--state", "queued,running"), ("skip", "--state", "aborted", "--reason", "x")]


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_a_command_naming_a_few_runs_says_and_queues_what_the_whole_read_gives(big, monkeypatch, argv):
    picked, real = [], partial.read
    monkeypatch.setattr(partial, "read", lambda s, pick: picked.append(pick) or real(s, pick))
    few = run(*argv)
    assert any(p is not None and (p.needles or p.many) for p in picked), "the runs were read alone"
    few_queued = queued(big)
    (big / "status.json.requests").write_text("")
    store_mod.Store(str(big / "status.json")).queue_requests({"1005.analysis"}, "priority", 4)
    monkeypatch.setattr(partial, "read", lambda s, pick: None)       # the whole file, as before
    whole = run(*argv)
    assert (few.exit_code, timeless(few.output)) == (whole.exit_code, timeless(whole.output))
    assert few_queued == queued(big)


def test_show_of_a_run_reads_no_other_task(big, monkeypatch):
    monkeypatch.setattr(store_mod.Store, "read", lambda self: pytest.fail("the whole file was read"))
    r = run("show", "1003", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["state"] == "completed"


def test_a_request_is_queued_against_the_generation_of_its_append_when_another_process_writes_meanwhile(big, monkeypatch):
    store = open_experiment(str(big)).store
    real, reads = partial.read, []

    def read_then_another_writes(s, pick):
        got = real(s, pick)
        reads.append(got.generation)
        if len(reads) == 1:             # between this read and the lock: a daemon ends 1010's job
            with open_experiment(str(big)).store.transaction("daemon") as st:
                next(t for t in st.tasks if t.run == 1010).state = "aborted"
        return got
    monkeypatch.setattr(partial, "read", read_then_another_writes)
    assert store.queue_requests({"1010.analysis"}, "request", "kill", ("running", "queued"), "batchman kill") == 0
    assert len(reads) == 2 and reads[1] == reads[0] + 1          # read again, the state of now checked
    assert store.queue_requests({"1003.analysis"}, "priority", 2, None, "batchman priority") == 1
    assert queued(big)[-1]["g"] == reads[-1] and queued(big)[-1]["keys"] == ["1003.analysis"]


def test_others_writing_at_every_try_leave_it_to_the_whole_read(big, monkeypatch):
    real = partial.read

    def always_another(s, pick):
        got = real(s, pick)
        with open_experiment(str(big)).store.transaction("daemon") as st:
            st.tasks[0].priority += 1
        return got
    monkeypatch.setattr(partial, "read", always_another)
    store = open_experiment(str(big)).store
    assert store.queue_requests({"1017.analysis"}, "priority", 3, None, "t") == 1
    assert queued(big)[-1]["g"] == store_mod.Store(str(big / "status.json")).read().generation


def test_a_request_command_reads_its_runs_once_and_queues_from_that_read(big, monkeypatch):
    reads, real = [], partial._read_once
    monkeypatch.setattr(partial, "_read_once", lambda path, log, pick: reads.append(pick.runs) or real(path, log, pick))
    r = run("kill", "1010")
    assert r.exit_code == 0 and "kill queued for 1 task(s)" in r.output
    assert [runs for runs in reads if runs] == [frozenset({1010})]         # (and the head, for the daemon hint)
    assert queued(big)[-1]["keys"] == ["1010.analysis"] and queued(big)[-1]["value"] == "kill"


def test_a_request_by_state_queues_from_the_commands_own_read_of_those_tasks(big, monkeypatch):
    """The tasks chosen by --state are read once: at a million tasks, their 50,000 runs read
    again by run cost ~4 s more."""
    picked, real = [], partial.read
    monkeypatch.setattr(partial, "read", lambda s, pick: picked.append(pick) or real(s, pick))
    r = run("restart", "--state", "failed", "--yes")
    assert r.exit_code == 0 and "restart queued for" in r.output
    assert len([p for p in picked if p is not None and p.needles == [b'"failed"']]) == 1
    assert not [p for p in picked if p is not None and p.runs], "the tasks were read again by run"
    assert {k for ln in queued(big) if ln.get("value") == "restart" for k in ln["keys"]}
