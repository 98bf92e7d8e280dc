"""The local batch system's query when the runner writes its exit and ends between our two looks
(a flake seen in the contract test: a job that exited 3 was reported as lost)."""

import os

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
