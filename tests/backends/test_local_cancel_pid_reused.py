"""The local batch system's cancel of a job whose pid is another experiment's runner by now.

pids wrap at 32,768 on this machine, and several suites run local jobs at once: a cancel of a job
that is already over (a kill request, a restart, the contract's second cancel) found a live
``local_runner`` under that pid and signalled it, so another suite's job, hit before its runner
had set its handler, ended without an exit file and was reported "lost" (a flake of the contract
test's ``[local]`` case)."""

import subprocess
import sys
import time

from batchman.backends.batch import local


def _runner_elsewhere(tmp_path):
    """A process whose command line is a runner's, of another root: another suite's job."""
    other = tmp_path / "other-root"
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "-m", "batchman.backends.batch.local_runner",
            "--dir", str(other / "bm.x.1.a.1"), "--slots", "1", "--slot-dir", str(other / ".slots")]
    return subprocess.Popen(argv, start_new_session=True)


def test_cancel_leaves_alone_a_runner_of_another_root_that_reuses_the_jobs_pid(tmp_path):
    b = local.LocalBatch(str(tmp_path / "jobs"))
    p = _runner_elsewhere(tmp_path)
    try:
        b.cancel([str(p.pid)])               # our job's id, now that process's pid
        time.sleep(0.3)
        assert p.poll() is None, "another root's runner was signalled"
        assert "not running" in b.details(str(p.pid))
    finally:
        p.kill()
        p.wait()
