"""A local job cancelled the moment it was submitted (a kill right after a submission, the
daemon's own cancel of a job it submitted twice): the runner, signalled before it had set its
handler, died of the signal without an exit file, and the job was reported "lost ... (killed
-9?)" instead of "cancelled". The runner now starts with SIGTERM/SIGINT blocked and takes them
once its handler is set."""

import time

import pytest

from batchman.backends.base import FINISHED, JobSpec
from batchman.backends.batch import local


def _submit(b, tmp_path, i):
    script = tmp_path / "job.sh"
    script.write_text("sleep 30\n")
    spec = JobSpec(name=f"bm.x.{i}.a.1", script=str(script), workdir=str(tmp_path),
                   stdout=str(tmp_path / f"out{i}.log"), stderr=str(tmp_path / f"err{i}.log"),
                   attempt_dir=str(tmp_path))
    return spec.name, b.submit(spec)


@pytest.mark.parametrize("i", range(3))
def test_a_job_cancelled_right_after_submission_ends_cancelled_not_lost(tmp_path, i):
    b = local.LocalBatch(str(tmp_path / "jobs"))
    name, job_id = _submit(b, tmp_path, i)
    b.cancel([job_id])                     # at once: the runner is still importing
    deadline = time.monotonic() + 30
    while (info := b.query({name: job_id})[name]).state != FINISHED:
        assert time.monotonic() < deadline, info
        time.sleep(0.05)
    assert info.failure == "cancelled", info
