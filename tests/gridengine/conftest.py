"""Fixtures for the tests against the real one-node Grid Engine (contrib/gridengine/start.sh).

When the cluster does not answer: in CI (``CI`` set) every test here fails loudly; elsewhere they
are skipped with a one-line reason.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from batchman.backends.base import JobSpec, Runner
from batchman.backends.batch.gridengine import GridEngineBackend

from clusterhelp import gridengine_problem, gridengine_wait_answers


def cluster_problem(wait: float | None = None) -> str:
    """Why the cluster cannot be used, or '' when qmaster answers and all.q has a live host.
    With ``wait`` (default: 90 s when ``CI`` is set, else 0) a cluster that does not answer yet
    (qmaster restarting) is waited for."""
    if wait is None:
        wait = 90.0 if os.environ.get("CI") else 0.0
    if shutil.which("qconf") is None:
        return "qconf not installed"
    try:
        gridengine_wait_answers(timeout=wait)
    except AssertionError:
        return gridengine_problem()
    return ""


@pytest.fixture(scope="session")
def gridengine_cluster() -> None:
    problem = cluster_problem()
    if problem:
        message = f"Grid Engine cluster unusable ({problem}); start it with contrib/gridengine/start.sh"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def runner() -> Runner:
    return Runner(timeout=30)


@pytest.fixture
def backend(gridengine_cluster, runner) -> GridEngineBackend:
    return GridEngineBackend(runner)


@pytest.fixture
def prefix(backend) -> str:
    """A job name prefix of this test alone; its jobs still queued at the end are deleted."""
    prefix = f"bm.t{uuid.uuid4().hex[:10]}."
    yield prefix
    leftovers = [j.job_id for j in backend.list_ours(prefix)]
    if leftovers:
        backend.cancel(leftovers)


@pytest.fixture
def make_spec(tmp_path, prefix):
    """make_spec(suffix, body, **JobSpec fields) -> JobSpec of a bash script written in tmp_path."""
    def make(suffix: str, body: str, **kw) -> JobSpec:
        d = tmp_path / suffix
        d.mkdir(exist_ok=True)
        script = d / "job.sh"
        script.write_text("#!/bin/bash\n" + body + "\n")
        fields = dict(name=prefix + suffix, script=str(script), workdir=str(d),
                      stdout=str(d / "out.log"), stderr=str(d / "err.log"), attempt_dir=str(d))
        return JobSpec(**{**fields, **kw})
    return make

