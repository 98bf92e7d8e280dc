"""Fixtures for tests against the real one-node SLURM cluster of contrib/slurm/start.sh.

The cluster is found through ``$BATCHMAN_SLURM_DIR/env.sh`` (default /tmp/batchman-slurm) and
must answer ``sinfo``. Without it the tests skip with one line -- unless ``CI`` is set, then
they fail loudly: CI starts the cluster first, so its absence is a bug.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batchman.backends.base import FINISHED, JobInfo, JobSpec, Runner
from batchman.backends.batch.slurm import SlurmBackend

from clusterhelp import read_env_sh, slurm_wait_answers, wait_job

SLURM_DIR = Path(os.environ.get("BATCHMAN_SLURM_DIR", "/tmp/batchman-slurm"))


def _find_cluster(wait: float | None = None) -> tuple[dict[str, str], str, str]:
    """(env, accounting, '') or ({}, '', why not). With ``wait`` (default: 90 s when ``CI`` is
    set, else 0) a cluster that does not answer yet -- restarting, or stopped for a moment by
    another session's outage test -- is waited for until it does."""
    env_sh = SLURM_DIR / "env.sh"
    if not env_sh.exists():
        return {}, "", f"no SLURM test cluster: {env_sh} missing (run contrib/slurm/start.sh)"
    env = read_env_sh(env_sh)
    if wait is None:
        wait = 90.0 if os.environ.get("CI") else 0.0
    try:
        slurm_wait_answers(env, timeout=wait)
    except AssertionError as e:
        return {}, "", f"SLURM test cluster in {SLURM_DIR} not usable: {e}"
    acct = (SLURM_DIR / "accounting").read_text().strip() if (SLURM_DIR / "accounting").exists() else "jobcomp"
    return env, acct, ""


@dataclass
class Cluster:
    dir: Path
    env: dict[str, str]           # SLURM_CONF for client commands
    accounting: str               # what start.sh set up: "slurmdbd" or "jobcomp"
    prefix: str                   # job name prefix of this test session
    modes: list[str] = field(default_factory=list)   # accounting modes testable here

    def runner(self, timeout: float = 30.0) -> Runner:
        return Runner(timeout=timeout, env=self.env)

    def backend(self, accounting: str = "jobcomp", timeout: float = 30.0) -> SlurmBackend:
        return SlurmBackend(self.runner(timeout), accounting=accounting)

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        """A SLURM command outside the backend (test set-up, e.g. scontrol update)."""
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=30,
                              env={**os.environ, **self.env}, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def cluster():
    env, acct, why = _find_cluster()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {why}", pytrace=False)
        pytest.skip(why)
    c = Cluster(SLURM_DIR, env, acct, prefix=f"bm.pytest{os.getpid()}.",
                modes=["jobcomp", "slurmdbd"] if acct == "slurmdbd" else ["jobcomp"])
    yield c
    # leave nothing of ours running
    b = c.backend()
    try:
        left = [j.job_id for j in b.list_ours(c.prefix) if j.state != FINISHED]
        b.cancel(left)
    except Exception:   # noqa: BLE001 -- best effort clean-up
        pass


class Jobs:
    """Writes job scripts into tmp_path and builds JobSpecs named under the session prefix."""

    def __init__(self, cluster: Cluster, tmp_path: Path, test_name: str):
        self.cluster = cluster
        self.dir = tmp_path
        self.base = cluster.prefix + re.sub(r"[^A-Za-z0-9]+", "-", test_name)[:40]
        self.n = 0

    def spec(self, body: str, name: str | None = None, **kw) -> JobSpec:
        self.n += 1
        name = name or f"{self.base}.{self.n}"
        d = self.dir / f"job{self.n}"
        d.mkdir()
        script = d / "job.sh"
        script.write_text("#!/bin/bash\n" + body + "\n")
        script.chmod(0o755)
        return JobSpec(name=name, script=str(script), workdir=str(d), stdout=str(d / "out"),
                       stderr=str(d / "err"), attempt_dir=str(d / "attempt"), **kw)


@pytest.fixture
def jobs(cluster, tmp_path, request) -> Jobs:
    os.chmod(tmp_path, 0o755)
    return Jobs(cluster, tmp_path, request.node.name)


@pytest.fixture
def wait():
    """The polling helper below, for test modules (tests/ is not a package)."""
    return wait_for


@pytest.fixture(scope="module")
def two_finished(cluster, tmp_path_factory):
    """One job that exited 0 and one that exited 3, both finished: [(spec, id), (spec, id)]."""
    d = tmp_path_factory.mktemp("acct")
    d.chmod(0o755)
    j = Jobs(cluster, d, "acct")
    b = cluster.backend()
    specs = [j.spec("true"), j.spec("exit 3")]
    ids = [b.submit(s) for s in specs]
    for s, i in zip(specs, ids):
        wait_for(b, s.name, i, lambda info: info.state == FINISHED)
    return list(zip(specs, ids))


def wait_for(backend: SlurmBackend, name: str, job_id: str, until, timeout: float = 60.0,
             every: float = 0.25) -> tuple[JobInfo, list[str]]:
    """Poll ``query`` until ``until(info)``; returns the info and the states seen on the way."""
    return wait_job(backend, name, job_id, until, timeout, every)
