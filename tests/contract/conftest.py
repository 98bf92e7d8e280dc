"""One fixture per batch backend for the contract suite (test_batch_contract.py).

``batch`` is parametrized over every backend: each parameter yields a :class:`Harness`, the
backend plus what the contract needs to drive it -- how to write a job script and name the job,
how to keep a job queued, how to push a job over its time limit quickly, and how to make the
batch system unreachable *without disturbing the real cluster*.

Adding a backend later = its module + one ``_make_<name>`` function below + its name in
``BACKENDS``.

Reachability follows the rule of the per-backend suites: a real cluster that does not answer
skips its cases with a one-line reason, except when ``CI`` is set: then they fail loudly.
The cluster probes are the ones of tests/slurm/conftest.py and tests/gridengine/conftest.py
(loaded from there, so both suites judge a cluster alike).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from batchman.backends.base import FINISHED, BatchBackend, JobInfo, JobSpec, Runner

from clusterhelp import slurm_end_now, wait_job

TESTS = Path(__file__).resolve().parents[1]
BACKENDS = ["local", "slurm", "gridengine", "lsf"]


def _load(path: Path, name: str):
    """A sibling suite's conftest as a plain module (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod            # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


_slurm_conf = _load(TESTS / "slurm" / "conftest.py", "_contract_slurm_conftest")
_ge_conf = _load(TESTS / "gridengine" / "conftest.py", "_contract_ge_conftest")
LSF_DOUBLE = TESTS / "doubles" / "lsf"


def unusable(why: str) -> None:
    """The CI rule: fail loudly in CI, skip with one line elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {why}", pytrace=False)
    pytest.skip(why)


@dataclass
class Harness:
    """A batch backend under contract, with the helpers the contract needs."""

    kind: str
    backend: BatchBackend
    runner: Runner | None              # None: the backend runs no commands (local)
    prefix: str                        # job name prefix of this test alone
    dir: Path                          # where job scripts and logs go
    hold_args: list[str] | None        # extra_args that keep a job queued (None: no hold)
    cpus_var: str | None               # variable telling the job its CPUs (None: not supported)
    timeout_kw: dict                   # JobSpec fields for the time-limit case
    push_over_limit: Callable[[str], None] = lambda job_id: None   # after RUNNING: make it time out soon
    unreachable_na: str = ""           # why "unreachable" does not apply (local only)
    _unreachable: Callable[[], contextlib.AbstractContextManager] | None = None
    fresh: Callable[[], BatchBackend] | None = None   # a second backend instance: no memory, own runner
    cleanup_extra: list[Callable[[], None]] = field(default_factory=list)
    n: int = 0

    # -- jobs ------------------------------------------------------------------------------
    def spec(self, body: str, suffix: str | None = None, **kw) -> JobSpec:
        """A bash job script in its own directory, named ``<prefix><suffix>``."""
        self.n += 1
        suffix = suffix or f"j{self.n}"
        d = self.dir / f"{suffix}-{self.n}"
        d.mkdir(parents=True)
        d.chmod(0o755)
        script = d / "job.sh"
        script.write_text("#!/bin/bash\n" + body + "\n")
        script.chmod(0o755)
        return JobSpec(**{**dict(name=self.prefix + suffix, script=str(script), workdir=str(d),
                                 stdout=str(d / "out.log"), stderr=str(d / "err.log"),
                                 attempt_dir=str(d)), **kw})

    def held(self, suffix: str | None = None, **kw) -> JobSpec:
        """A job that stays queued (held) where the backend can hold; else one that sleeps."""
        if self.hold_args is None:
            return self.spec("sleep 30", suffix, **kw)
        return self.spec("true", suffix, extra_args=list(self.hold_args), **kw)

    def commands(self) -> int:
        return len(self.runner.records) if self.runner is not None else 0

    def wait(self, name: str, job_id: str, until: Callable[[JobInfo], bool], timeout: float = 60.0,
             every: float = 0.25, backend: BatchBackend | None = None) -> tuple[JobInfo, list[str]]:
        """Poll ``query`` until ``until(info)``; return the info and the states seen on the way."""
        return wait_job(backend or self.backend, name, job_id, until, timeout, every, label=self.kind)

    @contextlib.contextmanager
    def unreachable(self) -> Iterator[BatchBackend]:
        """A backend whose batch system cannot be reached; the real system is left alone."""
        if self.unreachable_na:
            pytest.skip(self.unreachable_na)
        with self._unreachable() as b:
            yield b

    def cleanup(self) -> None:
        for f in self.cleanup_extra:
            with contextlib.suppress(Exception):
                f()
        with contextlib.suppress(Exception):
            left = [j.job_id for j in self.backend.list_ours(self.prefix) if j.state != FINISHED]
            if left:
                self.backend.cancel(left)


def _prefix() -> str:
    return f"bm.ct{uuid.uuid4().hex[:10]}."


# --------------------------------------------------------------------------------- backends
def _make_local(tmp_path: Path, request) -> Harness:
    from batchman.backends.batch.local import LocalBatch
    root = tmp_path / "local-root"
    return Harness(
        kind="local", backend=LocalBatch(str(root), slots=2), runner=None, prefix=_prefix(),
        dir=tmp_path / "jobs", hold_args=None, cpus_var=None, timeout_kw=dict(time_limit=2),
        fresh=lambda: LocalBatch(str(root), slots=2),
        unreachable_na=("not applicable to local: there is no batch system to lose -- jobs are this "
                        "machine's processes and their state is files the daemon itself owns"),
    )


def _make_slurm(tmp_path: Path, request) -> Harness:
    from batchman.backends.batch.slurm import SlurmBackend
    env, accounting, why = _slurm_conf._find_cluster()
    if why:
        unusable(why)
    runner = Runner(timeout=30, env=env)

    def push_over_limit(job_id: str) -> None:
        # SLURM limits are whole minutes: end the 1-minute job now; slurmctld's time-limit check
        # (about every 30 s) then kills it as TIMEOUT.
        slurm_end_now(env, job_id)

    @contextlib.contextmanager
    def unreachable():
        # SLURM_CONF -> a copy of the config whose controller port nobody listens on, and
        # MessageTimeout=1 so clients give up at once.
        conf = Path(env["SLURM_CONF"]).read_text()
        port = int(re.search(r"^SlurmctldPort=(\d+)", conf, re.M).group(1)) + 100
        conf = re.sub(r"^SlurmctldPort=\d+", f"SlurmctldPort={port}", conf, flags=re.M)
        conf = re.sub(r"^MessageTimeout=\d+", "MessageTimeout=1", conf, flags=re.M)
        path = tmp_path / "unreachable-slurm.conf"
        path.write_text(conf)
        yield SlurmBackend(Runner(timeout=15, env={**env, "SLURM_CONF": str(path)}), accounting=accounting)

    return Harness(
        kind="slurm", backend=SlurmBackend(runner, accounting=accounting), runner=runner, prefix=_prefix(),
        dir=tmp_path / "jobs", hold_args=["--hold"], cpus_var="SLURM_CPUS_PER_TASK",
        timeout_kw=dict(time_limit=60), push_over_limit=push_over_limit, _unreachable=unreachable,
        fresh=lambda: SlurmBackend(Runner(timeout=30, env=env), accounting=accounting),
    )


def _make_gridengine(tmp_path: Path, request) -> Harness:
    from batchman.backends.batch.gridengine import GridEngineBackend
    problem = _ge_conf.cluster_problem()
    if problem:
        unusable(f"Grid Engine cluster unusable ({problem}); start it with contrib/gridengine/start.sh")
    runner = Runner(timeout=30)

    @contextlib.contextmanager
    def unreachable():
        # clients honour SGE_QMASTER_PORT: port 1 is a qmaster nobody runs
        yield GridEngineBackend(Runner(timeout=30, env={"SGE_QMASTER_PORT": "1"}))

    return Harness(
        kind="gridengine", backend=GridEngineBackend(runner), runner=runner, prefix=_prefix(),
        dir=tmp_path / "jobs", hold_args=["-h"], cpus_var="NSLOTS", timeout_kw=dict(time_limit=2),
        _unreachable=unreachable, fresh=lambda: GridEngineBackend(Runner(timeout=30)),
    )


def lsf_env(state: Path) -> dict[str, str]:
    """Environment putting the LSF double first on PATH with its state in ``state``."""
    return {"PATH": f"{LSF_DOUBLE}{os.pathsep}{os.environ['PATH']}", "LSF_DOUBLE_DIR": str(state),
            "LSF_DOUBLE_SECONDS_PER_MINUTE": "1", "LSF_DOUBLE_SLOTS": "2", "LSF_DOUBLE_FAULT": ""}


def lsf_kill_leftovers(state: Path) -> None:
    """Kill what the double started and still runs, verified (kills only its own processes)."""
    subprocess.run([str(LSF_DOUBLE / "bkill"), "0"], env={**os.environ, **lsf_env(state)},
                   capture_output=True, timeout=30)


def _make_lsf(tmp_path: Path, request) -> Harness:
    from batchman.backends.batch.lsf import LsfBackend
    state = tmp_path / "lsf-state"
    state.mkdir()
    env = lsf_env(state)
    runner = Runner(timeout=10, env=env)

    @contextlib.contextmanager
    def unreachable():
        # the double's fault injection: every command says "LSF is down. Please wait..."
        (state / "faults").write_text("down")
        try:
            yield LsfBackend(Runner(timeout=10, env=env))
        finally:
            (state / "faults").write_text("")

    h = Harness(
        kind="lsf", backend=LsfBackend(runner), runner=runner, prefix=_prefix(), dir=tmp_path / "jobs",
        hold_args=["-H"], cpus_var="LSB_DJOB_NUMPROC", timeout_kw=dict(time_limit=60),  # 1 "minute" = 1 s
        _unreachable=unreachable, fresh=lambda: LsfBackend(Runner(timeout=10, env=env)),
    )
    h.cleanup_extra.append(lambda: lsf_kill_leftovers(state))
    return h


MAKERS = {"local": _make_local, "slurm": _make_slurm, "gridengine": _make_gridengine, "lsf": _make_lsf}


@pytest.fixture(params=[pytest.param(b, marks=getattr(pytest.mark, b)) if b in ("slurm", "gridengine")
                        else b for b in BACKENDS])
def batch(request, tmp_path) -> Iterator[Harness]:
    tmp_path.chmod(0o755)              # cluster daemons run jobs as other users here and there
    h = MAKERS[request.param](tmp_path, request)
    try:
        yield h
    finally:
        h.cleanup()
