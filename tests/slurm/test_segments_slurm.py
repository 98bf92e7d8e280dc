"""examples/per-file on the real SLURM cluster (issue 18): one task per raw file, submitted
together as job arrays where slurmdbd can tell their elements apart, each file staged and
released by its own task, then one merge per run with the files' outputs in segment order."""

from __future__ import annotations

import os
import re

import pytest

from e2e_helpers import assert_per_file_done, per_file_on
from test_examples_slurm import invoke, run_daemon

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(280)]


def test_per_file_example_on_slurm_one_job_per_file_then_the_merge(cluster, tmp_path):
    e = per_file_on(tmp_path, "slurm")
    invoke(tmp_path, "add", "--file", str(tmp_path / "runs.txt"))
    run_daemon(cluster, e, tmp_path, dict(os.environ))
    tasks = e.store.read().tasks
    assert_per_file_done(tasks, tmp_path)
    assert all(re.fullmatch(r"\d+(_\d+)?", t.job_id) for t in tasks)
    if cluster.accounting == "slurmdbd":      # the files ready together went as one array
        assert any(t.array_name for t in tasks if t.job == "reco")
