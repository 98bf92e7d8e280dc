"""Fixtures for testing the LSF backend against the LSF test double (tests/doubles/lsf).

The double is plain Python, so it is always available: these tests never skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
from pathlib import Path

import pytest

from batchman.backends.base import JobSpec, Runner
from batchman.backends.batch.lsf import LsfBackend

from clusterhelp import poll

DOUBLE = Path(__file__).resolve().parents[1] / "doubles" / "lsf"
_spec = importlib.util.spec_from_file_location("_lsfdouble_for_tests", DOUBLE / "_lsfdouble.py")
_double = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_double)


class LsfDouble:
    """Handle on one double's state dir: call counts, faults, state."""

    def __init__(self, state_dir: Path, monkeypatch: pytest.MonkeyPatch):
        self.dir = state_dir
        self._mp = monkeypatch

    def calls(self, cmd: str | None = None) -> list[dict]:
        try:
            lines = (self.dir / "calls.log").read_text().splitlines()
        except FileNotFoundError:
            return []
        calls = [json.loads(ln) for ln in lines if ln.strip()]
        return [c for c in calls if cmd is None or c["cmd"] == cmd]

    def fault(self, spec: str) -> None:
        """Set the fault control file (e.g. 'down', 'bjobs:slow=3'); '' clears it."""
        (self.dir / "faults").write_text(spec)

    def setenv(self, name: str, value) -> None:
        self._mp.setenv(name, str(value))

    def edit_state(self):
        """The double's state under its own lock (a test that edits it races the shepherds otherwise)."""
        return _double.locked_state(self.dir)

    def state(self) -> dict:
        try:
            return json.loads((self.dir / "state.json").read_text())
        except FileNotFoundError:
            return {"jobs": {}}

    def wait_all_finished(self, timeout: float = 20) -> None:
        def done():
            jobs = self.state()["jobs"].values()
            return jobs and all(j["stat"] in ("DONE", "EXIT") for j in jobs)
        poll("every job of the LSF double finished", done, timeout, 0.1,
             show=lambda: {j["id"]: j["stat"] for j in self.state()["jobs"].values()})

    def cleanup(self) -> None:
        """Kill what the double started for this test and still runs: job processes and shepherds,
        each verified first (a recorded pid or group id may be another process's by now --
        signalling it blindly killed a Grid Engine execd)."""
        for job in self.state()["jobs"].values():
            _double.signal_job(self.dir, _double.job_key(job), signal.SIGKILL)
            if _double.is_shepherd(job.get("shepherd"), self.dir, _double.job_key(job)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(job["shepherd"], signal.SIGKILL)


@pytest.fixture
def lsf(tmp_path, monkeypatch) -> LsfDouble:
    state = tmp_path / "lsf-state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{DOUBLE}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LSF_DOUBLE_DIR", str(state))
    monkeypatch.setenv("LSF_DOUBLE_SECONDS_PER_MINUTE", "1")
    monkeypatch.setenv("LSF_DOUBLE_SLOTS", "2")
    monkeypatch.delenv("LSF_DOUBLE_FAULT", raising=False)
    d = LsfDouble(state, monkeypatch)
    yield d
    d.cleanup()


@pytest.fixture
def runner() -> Runner:
    return Runner(timeout=10)


@pytest.fixture
def backend(lsf, runner) -> LsfBackend:
    return LsfBackend(runner)


@pytest.fixture
def make_spec(tmp_path):
    """make_spec(name, body, **JobSpec fields) -> JobSpec with a bash script in tmp_path."""

    def make(name: str, body: str, **kw) -> JobSpec:
        d = tmp_path / name
        d.mkdir(parents=True, exist_ok=True)
        script = d / "job.sh"
        script.write_text("#!/bin/bash\nset -e\n" + body + "\n")
        return JobSpec(name=name, script=str(script), workdir=str(d), stdout=str(d / "out.log"),
                       stderr=str(d / "err.log"), attempt_dir=str(d), **kw)

    return make


def _wait_for(backend, jobs: dict[str, str], pred, timeout: float = 15, every: float = 0.15):
    """Poll backend.query(jobs) until pred(result) holds; return the result."""
    last = []

    def ready():
        last[:] = [backend.query(jobs)]
        return pred(last[0])

    poll("condition on the LSF jobs", ready, timeout, every, show=lambda: last[0] if last else None)
    return last[0]


@pytest.fixture
def wait_for():
    """wait_for(backend, jobs, pred) polls query() until pred(result)."""
    return _wait_for
