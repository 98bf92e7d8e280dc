"""Fixtures for the TUI: an experiment in tmp_path, status files built with the store and
actions directly, and an App driven by key strings and read back as rendered text."""

from __future__ import annotations

import time

import pytest

from batchman import actions as A
from batchman.core.model import Daemon, Segment
from batchman.tui.app import App
from tuihelp import change, make_experiment

@pytest.fixture
def exp(tmp_path):
    return make_experiment(tmp_path / "exp")


@pytest.fixture
def filled(exp):
    """Runs 1000-1009 in a spread of states, with a live daemon recorded."""
    A.add_runs(exp.store, list(range(1000, 1010)))
    now = time.time()
    change(exp.store,
           r1001=dict(state="staging", segments=[Segment("raw/run_1001.dat.0", True), Segment("raw/run_1001.dat.1", False)],
                      since=now - 125, reason="staging requested"),
           r1002=dict(state="running", job_id="4711", attempt=1, job_name="bm.x.1002.analysis.1",
                      counters={"events": 1234}, since=now - 3700, reason="seen running"),
           r1003=dict(state="failed", error="exit code 3", attempt=1, exit_code=3, reason="job failed"),
           r1004=dict(state="completed", attempt=1, finished_at=now - 60, reason="done"),
           r1005=dict(state="aborted", killed_in="queued", reason="killed"),
           r1006=dict(state="queued", job_id="4712", attempt=1, reason="seen pending"))
    with exp.store.transaction("test daemon") as st:
        st.daemons = [Daemon(id="node7:4242", host="node7", pid=4242, started=now - 100, heartbeat=now - 3)]
    return exp


@pytest.fixture
def app_for():
    def make(exp, **kw):
        return App(exp, spawn=kw.pop("spawn", lambda root, log: log), **kw)
    return make


