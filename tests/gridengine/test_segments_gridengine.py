"""examples/per-file on the real Grid Engine (issue 18): one task per raw file (job array
elements, qsub -t, where ready together), then one merge per run."""

from __future__ import annotations

import re

import pytest

from e2e_helpers import assert_per_file_done, per_file_on
from test_examples_gridengine import add_and_run

pytestmark = [pytest.mark.gridengine, pytest.mark.slow, pytest.mark.timeout(280)]


def test_per_file_example_on_grid_engine_one_job_per_file_then_the_merge(backend, tmp_path):
    e = per_file_on(tmp_path, "gridengine")
    add_and_run(backend, e, tmp_path)
    tasks = e.store.read().tasks
    assert_per_file_done(tasks, tmp_path)
    assert all(re.fullmatch(r"\d+(\.\d+)?", t.job_id) for t in tasks)
    assert any(t.array_name for t in tasks if t.job == "reco")       # batch.arrays is on by default
