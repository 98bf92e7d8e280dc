"""Waiting on real batch systems, in one place (issue 22: a CI that never flakes).

A real cluster answers late, refuses early and is shared with other people's tests. Every test
that waits for a job, for accounting, for a daemon, or that pokes the cluster behind batchman's
back (``scontrol update EndTime=now``), does it through one of the helpers here:

* :func:`poll` -- the one retry loop: a condition polled until it holds or a deadline passes; on
  timeout the AssertionError says what was awaited and what was last seen (never "condition not
  met" alone).
* :func:`wait_job` -- ``backend.query`` until a job's info satisfies a predicate (every backend).
* :func:`slurm_end_now` -- move a running SLURM job's end to now, retried while slurmctld refuses
  ("Invalid time specified": now is not yet after the StartTime it recorded, in whole seconds).
* :func:`slurm_wait_accounted` -- until slurmdbd lists every job name (it records them seconds
  after a job ends).
* :func:`slurm_wait_answers`, :func:`gridengine_wait_answers` -- until the cluster answers and
  has a usable node / queue.
* :func:`slurm_outage` -- stop SLURM daemons for a test and always bring them back (``finally``),
  waiting until the cluster answers again, so one failing test never takes the next one down.
* :func:`cluster_turn` -- the clusters are shared with other sessions' tests: a test that stops
  a daemon (marker ``cluster_outage``) takes the cluster alone, every other cluster test takes
  it shared, so no test of one session sees another session's outage (tests/conftest.py takes
  the turn before pytest-timeout starts counting).

tests/ is not a package: import it as ``from clusterhelp import ...`` (pytest puts tests/ on
sys.path through its conftest.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

REPO = Path(__file__).resolve().parents[1]

# slurmctld refuses EndTime=now while now is not after the job's StartTime (whole seconds)
_END_NOW_RETRY = ("Invalid time specified",)


# ----------------------------------------------------------------------------- generic
def poll(what: str, cond: Callable[[], object], timeout: float = 30.0, every: float = 0.2,
         show: Callable[[], object] | None = None, retry_on: tuple[type[BaseException], ...] = ()):
    """Call ``cond()`` until it returns something truthy, and return that.

    ``retry_on``: exception types that mean "not yet" (e.g. a cluster not answering for a
    moment); anything else propagates at once. On timeout raise AssertionError naming ``what``
    and what was last seen: ``show()`` when given, else the last value of ``cond()`` (or the
    exception it raised).
    """
    end = time.monotonic() + timeout
    tries = 0
    while True:
        tries += 1
        try:
            last = cond()
        except retry_on as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= end:
            seen = last
            if show is not None:
                try:
                    seen = show()
                except Exception as e:     # noqa: BLE001 -- the report must not hide the timeout
                    seen = f"(show() failed: {e!r})"
            raise AssertionError(f"{what}: not within {timeout:g} s ({tries} tries); last seen: {seen!r}")
        time.sleep(every)


def wait_job(backend, name: str, job_id: str, until: Callable, timeout: float = 60.0,
             every: float = 0.25, label: str = "") -> tuple[object, list[str]]:
    """Poll ``backend.query({name: job_id})`` until ``until(info)``; return the info and the
    states seen on the way (consecutive repeats collapsed). A batch system that does not answer
    for a moment (BackendUnavailable: e.g. slurmctld restarting) is asked again until the
    deadline, and named on timeout."""
    from batchman.backends.base import BackendUnavailable
    seen: list[str] = []
    last = []

    def check():
        info = backend.query({name: job_id})[name]
        last[:] = [info]
        if not seen or seen[-1] != info.state:
            seen.append(info.state)
        return until(info)

    errors: list[BaseException] = []

    def check_or_unavailable():
        try:
            return check()
        except BackendUnavailable as e:
            errors[:] = [e]
            raise

    poll(f"{label + ': ' if label else ''}{name} ({job_id or 'by name'})", check_or_unavailable, timeout,
         every, retry_on=(BackendUnavailable,),
         show=lambda: f"{last[0] if last else 'no answer'}; states seen {seen}"
                      + (f"; last error {errors[0]}" if errors else ""))
    return last[0], seen


def _run(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(list(argv), -1, "", f"{argv[0]}: timed out after {e.timeout:g} s")


# ----------------------------------------------------------------------------- SLURM
def read_env_sh(path: Path) -> dict[str, str]:
    """The ``export NAME=value`` lines of contrib/slurm's env.sh (SLURM_CONF for the clients)."""
    env = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        if m:
            env[m.group(1)] = m.group(2).strip().strip("'\"")
    return env


def slurm_problem(env: dict[str, str]) -> str:
    """'' when slurmctld answers ``sinfo`` with a usable node (idle, mix or alloc and not
    unresponsive), else why not."""
    cp = _run(["sinfo", "--noheader", "-o", "%t"], env, timeout=20)
    states = cp.stdout.split()
    if cp.returncode == 0 and any(s.rstrip("*~#") in ("idle", "mix", "alloc") and not s.endswith("*")
                                  for s in states):
        return ""
    return (cp.stderr.strip().splitlines() or [f"node state {states}"])[-1]


def slurm_wait_answers(env: dict[str, str], timeout: float = 90.0) -> None:
    """Until slurmctld answers and its node is usable (e.g. after a restart, or while another
    session's outage test has it down)."""
    poll("SLURM cluster answering with a usable node", lambda: slurm_problem(env) == "", timeout, 0.5,
         show=lambda: slurm_problem(env))


def slurm_end_now(env: dict[str, str], job_id: str, timeout: float = 30.0) -> None:
    """``scontrol update JobId=<id> EndTime=now`` for a running job: it then ends as TIMEOUT at
    slurmctld's next time-limit check. Retried while slurmctld refuses it because now is not
    after the StartTime it recorded (a job started this very second) or does not answer."""
    last = [None]

    def attempt():
        cp = _run(["scontrol", "update", f"JobId={job_id}", "EndTime=now"], env)
        if cp.returncode == 0:
            return True
        last[0] = err = (cp.stderr or cp.stdout).strip()
        transient = any(m in err for m in _END_NOW_RETRY) or "Unable to contact" in err or "timed out" in err
        assert transient, f"scontrol update JobId={job_id} EndTime=now: {err}"
        return False

    poll(f"scontrol update JobId={job_id} EndTime=now accepted", attempt, timeout, 0.5, show=lambda: last[0])


def slurm_wait_accounted(env: dict[str, str], names: Sequence[str], since: str = "now-1hour",
                         timeout: float = 30.0) -> list[list[str]]:
    """sacct rows ``[name, job id]`` (allocations) for ``names`` once slurmdbd lists every one of
    them: it records a job's name seconds after the job ends. Returns every row, duplicates
    included, for the caller to judge."""
    want = set(names)
    rows: list[list[str]] = []

    def accounted():
        cp = _run(["sacct", "--noheader", "--parsable2", "--allocations", f"--starttime={since}",
                   "--name=" + ",".join(sorted(want)), "--format=JobName,JobID"], env)
        assert cp.returncode == 0 or "Unable to contact" in cp.stderr or "timed out" in cp.stderr, cp.stderr
        rows[:] = [ln.split("|") for ln in cp.stdout.splitlines() if ln.strip()]
        return cp.returncode == 0 and want <= {r[0] for r in rows}

    poll(f"slurmdbd recording the jobs {sorted(want)}", accounted, timeout, 1.0,
         show=lambda: f"rows {rows}; missing {sorted(want - {r[0] for r in rows})}")
    return rows


def _slurm_dir(env: dict[str, str]) -> Path:
    return Path(env.get("BATCHMAN_SLURM_DIR") or os.environ.get("BATCHMAN_SLURM_DIR", "/tmp/batchman-slurm"))


def slurm_start(env: dict[str, str], with_dbd: bool, timeout: float = 120.0) -> None:
    """contrib/slurm/start.sh (idempotent: starts only what is missing), then wait until the
    cluster answers. Raises AssertionError with start.sh's output when it fails."""
    flags = ["--with-slurmdbd"] if with_dbd else []
    cp = _run(["bash", str(REPO / "contrib/slurm/start.sh"), *flags], env, timeout=timeout)
    assert cp.returncode == 0, f"contrib/slurm/start.sh failed:\n{cp.stdout}{cp.stderr}"
    slurm_wait_answers(env)


@contextlib.contextmanager
def slurm_outage(env: dict[str, str], daemons: Sequence[str] = ("slurmctld",),
                 with_dbd: bool | None = None) -> Iterator[float]:
    """Stop ``daemons`` (contrib/slurm/stop.sh) for the body; yields the time.time() they went
    down. Whatever happens in the body, they are started again (start.sh) and the cluster
    answers before the next test. A failed restart is raised only when the body succeeded
    (the body's own failure is the more useful one)."""
    if with_dbd is None:
        f = _slurm_dir(env) / "accounting"
        with_dbd = f.exists() and f.read_text().strip() == "slurmdbd"
    cp = _run(["bash", str(REPO / "contrib/slurm/stop.sh"), *daemons], env, timeout=60)
    try:
        assert cp.returncode == 0, f"contrib/slurm/stop.sh {' '.join(daemons)} failed:\n{cp.stdout}{cp.stderr}"
        yield time.time()
    except BaseException:
        with contextlib.suppress(Exception):
            slurm_start(env, with_dbd)
        raise
    else:
        slurm_start(env, with_dbd)


# ----------------------------------------------------------------------------- Grid Engine
def gridengine_problem() -> str:
    """'' when qmaster answers and all.q has a live host, else why not."""
    if shutil.which("qconf") is None:
        return "qconf not installed"
    cp = _run(["qconf", "-sh"], timeout=15)
    if cp.returncode != 0:
        last = ((cp.stderr or cp.stdout).strip().splitlines() or ["no output"])[-1]
        return f"qconf -sh failed: {last}"
    cp = _run(["qstat", "-f", "-q", "all.q"], timeout=15)
    hosts = [ln for ln in cp.stdout.splitlines() if ln.startswith("all.q@")]
    if not any(len(ln.split()) == 5 and ln.split()[3] != "-NA-" for ln in hosts):
        return f"queue all.q has no usable host: {hosts or cp.stderr.strip()}"
    return ""


def gridengine_wait_answers(timeout: float = 90.0) -> None:
    """Until qmaster answers and all.q has a usable host (e.g. after a qmaster restart)."""
    poll("Grid Engine answering with a usable all.q", lambda: gridengine_problem() == "", timeout, 0.5,
         show=gridengine_problem)


# ----------------------------------------------------------------------------- files
def read_when(path: str | os.PathLike, ready: Callable[[str], bool], timeout: float = 10.0,
              every: float = 0.1) -> str:
    """A file's text once ``ready(text)`` (a node may write a job's log a moment after the job
    ends); after ``timeout`` whatever is there ('' if nothing), for the caller's assertion to
    show."""
    def text() -> str:
        try:
            return Path(path).read_text()
        except FileNotFoundError:
            return ""
    def ready_text():
        t = text()
        return (t,) if ready(t) else None

    try:
        return poll(f"{path} ready", ready_text, timeout, every)[0]
    except AssertionError:
        return text()


# ----------------------------------------------------------------------------- sharing a cluster
def _flock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextlib.contextmanager
def cluster_turn(lock: Path, exclusive: bool, timeout: float = 900.0) -> Iterator[None]:
    """Hold ``lock`` (flock) for the body: exclusive for a test that stops a cluster daemon,
    shared for any other test on that cluster, across every session on this machine.

    A waiting exclusive holder announces itself in ``<lock>.outage-waiting`` (refreshed while it
    waits, ignored when older than a minute): shared takers then wait, so an outage test is
    not starved by other sessions' back-to-back tests."""
    waiting = lock.with_name(lock.name + ".outage-waiting")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if exclusive:
            def take() -> bool:
                waiting.touch()
                return _flock(fd, fcntl.LOCK_EX)
        else:
            def take() -> bool:
                try:
                    if time.time() - waiting.stat().st_mtime < 60:
                        return False
                except FileNotFoundError:
                    pass
                return _flock(fd, fcntl.LOCK_SH)
        try:
            poll(f"{'exclusive' if exclusive else 'shared'} turn on {lock}", take, timeout, 0.5,
                 show=lambda: "an outage test is waiting or running" if waiting.exists() else "other sessions' tests hold it")
        finally:
            if exclusive:
                waiting.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)                  # releases the lock
