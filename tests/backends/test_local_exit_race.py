"""The local batch system's query when the runner writes its exit and ends between our two looks
(a flake seen in the contract test: a job that exited 3 was reported as lost)."""

import os
import time

from batchman.backends.base import FINISHED
from batchman.backends.batch import local


def test_a_runner_that_exits_between_the_two_looks_is_finished_with_its_code_not_lost(tmp_path, monkeypatch):
    b = local.LocalBatch(str(tmp_path / "jobs"))
    d = b.job_dir("bm.x.1.a.1")
    os.makedirs(d)
    (tmp_path / "jobs" / "bm.x.1.a.1" / "local.pid").write_text("4242\n")

    def runner_ends_now(pid, *a):
        # the exit file appears just as the process is found gone
        (tmp_path / "jobs" / "bm.x.1.a.1" / "local.exit").write_text("3\n")
        return False

    monkeypatch.setattr(local, "pid_alive", runner_ends_now)
    info = b.query({"bm.x.1.a.1": "4242"})["bm.x.1.a.1"]
    assert (info.state, info.exit_code, info.failure) == (FINISHED, 3, "exit-nonzero")


def test_a_job_its_runner_cannot_start_is_a_node_failure_with_the_reason_not_lost(tmp_path):
    """A log path that is a directory (or a fork refused under load) raised inside the runner,
    which died without an exit file: the query called it 'lost ... (killed -9?)'."""
    from batchman.backends.base import JobSpec
    b = local.LocalBatch(str(tmp_path / "jobs"))
    script = tmp_path / "job.sh"
    script.write_text("exit 0\n")
    (tmp_path / "out.log").mkdir()                      # the runner cannot open it
    spec = JobSpec(name="bm.x.1.a.1", script=str(script), workdir=str(tmp_path),
                   stdout=str(tmp_path / "out.log"), stderr=str(tmp_path / "err.log"),
                   attempt_dir=str(tmp_path))
    job_id = b.submit(spec)
    deadline = time.monotonic() + 30
    while (info := b.query({spec.name: job_id})[spec.name]).state != FINISHED:
        assert time.monotonic() < deadline, info
        time.sleep(0.1)
    assert (info.state, info.failure) == (FINISHED, "node-fail"), info
    assert "IsADirectoryError" in info.reason and "out.log" in info.reason, info.reason
