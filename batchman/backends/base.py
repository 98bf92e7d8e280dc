"""The small interface every backend implements.

Backends are the only code that runs external commands. Each backend module keeps
three layers apart, so the middle one can be tested with captured text alone:

* argv builders (pure): parameters -> ``list[str]`` for ``subprocess``;
* parsers (pure): command output text -> the data classes below;
* one ``run()`` call site (``batchman.backends.base.run``) that spawns the process.

Failures of the batch or staging system itself (controller down, command timed out)
raise :class:`BackendUnavailable`: the daemon logs it, changes no task, and tries again
next iteration. A request the system refuses for good (bad partition, unknown file)
raises :class:`Rejected` with the system's own message, which ends up in the task's error.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from batchman.core.observed import (  # noqa: F401 - part of the backend contract
    ABSENT, FINISHED, QUEUED, RUNNING, JobInfo, StagingView,
)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def env_prefix(env: dict[str, str]) -> list[str]:
    """``env -- K=V ...``: the job's environment given to the submit command's own process (no
    shell, any value), which hands it on (``sbatch --export=ALL``, ``qsub -V``). [] if none."""
    bad = [k for k in env if not _ENV_NAME.match(k)]
    if bad:
        raise ValueError(f"invalid environment variable name(s): {', '.join(map(repr, bad))}")
    return ["env", "--", *(f"{k}={v}" for k, v in env.items())] if env else []


class BackendError(Exception):
    """Base class for errors raised by a backend."""


class BackendUnavailable(BackendError):
    """The external system could not be asked (down, timed out): transient, change nothing.

    ``timed_out``: the command was sent but no answer came in time, so the request may have
    been carried out (a submission is then looked up by name, not repeated blindly).
    ``partial``: what a query did learn before the failure (job name -> JobInfo; e.g. the
    queue answered, accounting did not); jobs not in it are unknown, never absent.
    """

    def __init__(self, message: str = "", *, timed_out: bool = False,
                 partial: dict[str, JobInfo] | None = None):
        super().__init__(message)
        self.timed_out = timed_out
        self.partial = partial


class Rejected(BackendError):
    """The external system refused the request for good; the message is the system's."""


@dataclass
class CommandRecord:
    """One external command run by a backend, for the per-iteration command log."""
    argv: list[str]
    seconds: float
    returncode: int | None       # None: timed out or could not start
    error: str = ""


@dataclass
class JobSpec:
    """Everything a batch backend needs to submit one attempt of one task."""
    name: str                      # unique job name: bm.<store>.<run>.<job>.<attempt>
    script: str                    # path of the job script (bash), already written
    workdir: str                   # directory the job starts in
    stdout: str                    # log file paths
    stderr: str
    attempt_dir: str               # where the job script writes its marker files
    env: dict[str, str] = field(default_factory=dict)
    time_limit: int | None = None  # seconds
    memory_mb: int | None = None
    cpus: int = 1
    queue: str | None = None       # SLURM partition / GE queue / LSF queue
    account: str | None = None     # SLURM account / GE project / LSF project
    qos: str | None = None
    reservation: str | None = None
    extra_args: list[str] = field(default_factory=list)
    exclude_nodes: list[str] = field(default_factory=list)   # retry after a node failure: not there


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond the required methods. The daemon asks only for what is
    declared here; the methods behind an undeclared capability keep the defaults of
    :class:`BatchBase` / :class:`StagingBase`."""
    time_limits: bool = False     # time_limits(queue): the queue's (MaxTime, DefaultTime), for timeout retries
    failure_hints: bool = False   # failure_hint(stderr tail): the failure class a failed job's stderr suggests
    listing_reuse: bool = False   # list_ours may reuse this round's queue listing (reuse_listing, listing_fresh)
    command_log: bool = False     # command_records(): every external command run, for the iteration log
    arrays: bool = False          # submit_array(spec, size), max_array_size(), query(..., arrays=): job arrays


@dataclass(frozen=True)
class ArrayForm:
    """How a batch system numbers the elements of a job array (capability ``arrays``).
    batchman's indexes are 0..N-1 everywhere (intent, members file, status); the batch
    system's own index of element ``i`` is ``first + i``, which names its logs and picks its
    job script in the dispatcher."""
    index_var: str    # the element's own index in its environment: SLURM_ARRAY_TASK_ID
    first: int        # the batch system's index of element 0: SLURM 0, Grid Engine and LSF 1
    log_token: str    # stands for that index in the -o/-e paths: %a, $TASK_ID, %I


# The outcome of one submission, as the daemon records it.
@dataclass(frozen=True)
class Submitted:
    job_id: str


@dataclass(frozen=True)
class Refused:
    """Refused for good (or not submittable at all): the task goes to error with the message."""
    message: str


@dataclass(frozen=True)
class Unreachable:
    """Not known to be submitted; ``timed_out``: the request went out and may have got in."""
    message: str
    timed_out: bool = False


SubmitOutcome = Submitted | Refused | Unreachable


@runtime_checkable
class BatchBackend(Protocol):
    """Everything the daemon may ask of a batch system (derive from :class:`BatchBase`)."""
    name: str
    capabilities: Capabilities

    def submit(self, spec: JobSpec) -> str:
        """Submit one job; return its id. Raise Rejected or BackendUnavailable."""

    def try_submit(self, spec: JobSpec) -> SubmitOutcome:
        """``submit`` with its outcome as a value: Submitted, Refused or Unreachable."""

    def query(self, jobs: dict[str, str]) -> dict[str, JobInfo]:
        """Observe our jobs. ``jobs`` maps job name -> job id (id may be '' when unknown).

        Returns a JobInfo for every name asked (ABSENT if unknown). Must run a bounded
        number of commands whatever the number of jobs (one queue query plus at most one
        accounting query). Raise BackendUnavailable if the system cannot be asked.
        """

    def list_ours(self, prefix: str) -> list[JobInfo]:
        """Jobs in the queue whose name starts with ``prefix`` (to find unknown ones)."""

    def cancel(self, job_ids: list[str]) -> None:
        """Cancel jobs (already finished ones are not an error)."""

    def details(self, job_id: str) -> str:
        """Free text for people (scontrol show job, qstat -j, bjobs -l)."""

    def command_records(self) -> list[CommandRecord]:
        """The commands run so far (capability ``command_log``; else always empty)."""

    def time_limits(self, queue: str | None) -> tuple[int, int]:
        """(MaxTime, DefaultTime) in seconds of a queue, 0 = unlimited (capability ``time_limits``)."""

    def failure_hint(self, stderr_tail: str) -> str:
        """Failure class the end of a failed job's stderr suggests, or '' (``failure_hints``)."""

    def reuse_listing(self, seconds: float) -> None:
        """Let ``list_ours`` reuse a queue listing younger than this (``listing_reuse``)."""

    def listing_fresh(self) -> bool:
        """Would ``list_ours`` answer from a reused listing, running no command?"""

    def known_queues(self) -> set[str] | None:
        """The partitions / queues that exist, asked with one command (``batchman check``);
        None when the backend has none (local). Raise BackendUnavailable if it cannot be asked."""

    def access_problems(self, queue: str | None, account: str | None, qos: str | None) -> list[str]:
        """What ``queue`` refuses of ``account`` and ``qos``, from the answer of ``known_queues``
        (no second command); [] when the backend cannot tell."""


class BatchBase:
    """The defaults of the optional capabilities; every batch backend derives from it."""
    name = ""
    capabilities = Capabilities()
    runner: Runner | None = None
    array_form: ArrayForm | None = None   # set by every backend with the capability ``arrays``

    def try_submit(self, spec: JobSpec) -> SubmitOutcome:
        try:
            return Submitted(self.submit(spec))
        except Rejected as e:
            return Refused(str(e))
        except BackendUnavailable as e:
            return Unreachable(str(e), e.timed_out)

    def submit(self, spec: JobSpec) -> str:
        raise NotImplementedError

    def command_records(self) -> list[CommandRecord]:
        return self.runner.records if self.runner is not None else []

    def max_array_size(self) -> int:
        """Most elements one job array may have (capability ``arrays``); 1: no arrays."""
        return 1

    def submit_array(self, spec: JobSpec, size: int) -> str:
        """Submit one array of ``size`` elements (indexes 0..size-1); return the array's id."""
        raise NotImplementedError(f"the {self.name} backend does not submit job arrays")

    def element_id(self, array_id: str, index: int) -> str:
        """The id of one element of an array, as the batch system shows and cancels it."""
        raise NotImplementedError(f"the {self.name} backend has no job arrays")

    def element_index(self, job_id: str) -> int | None:
        """The index (0-based, as in :meth:`element_id`) of an element id the batch system
        lists; None for the id of anything else (a plain job, a range of elements)."""
        return None

    def try_submit_array(self, spec: JobSpec, size: int) -> SubmitOutcome:
        """``submit_array`` with its outcome as a value (Submitted carries the array's id)."""
        try:
            return Submitted(self.submit_array(spec, size))
        except Rejected as e:
            return Refused(str(e))
        except BackendUnavailable as e:
            return Unreachable(str(e), e.timed_out)

    def time_limits(self, queue: str | None) -> tuple[int, int]:
        raise NotImplementedError(f"the {self.name} backend does not know its queues' time limits")

    def failure_hint(self, stderr_tail: str) -> str:
        return ""

    def reuse_listing(self, seconds: float) -> None:
        pass

    def listing_fresh(self) -> bool:
        return False

    def known_queues(self) -> set[str] | None:
        return None

    def access_problems(self, queue: str | None, account: str | None, qos: str | None) -> list[str]:
        return []


@runtime_checkable
class StagingBackend(Protocol):
    """Everything the daemon may ask of a staging system (derive from :class:`StagingBase`)."""
    name: str
    capabilities: Capabilities

    def request(self, files: list[str]) -> None:
        """Ask for files to be staged (one call per batch, not per file)."""

    def query(self, files: list[str]) -> StagingView:
        """Which of these files are present, which pending (bounded number of commands)."""

    def release(self, files: list[str]) -> None:
        """We no longer need these files (unpin / delete the cache copy)."""

    def cancel(self, files: list[str]) -> None:
        """Cancel outstanding requests for these files."""

    def cache_path(self, stub: str) -> str:
        """Where the staged copy of a stub file appears."""

    def command_records(self) -> list[CommandRecord]:
        """The commands run so far (capability ``command_log``; else always empty)."""


class StagingBase:
    """The defaults of the optional capabilities; every staging backend derives from it."""
    name = ""
    capabilities = Capabilities()
    runner: Runner | None = None

    def command_records(self) -> list[CommandRecord]:
        return self.runner.records if self.runner is not None else []

    def check(self) -> list[str]:
        """Problems `batchman check` should name, each "key: what is wrong" (e.g. the server does not answer)."""
        return []


class Runner:
    """Runs external commands with a timeout and keeps a record of each call.

    Every backend gets one; tests and benchmarks read ``records`` to count commands.
    """

    def __init__(self, timeout: float = 60.0, env: dict[str, str] | None = None):
        self.timeout = timeout
        self.env = env
        self.records: list[CommandRecord] = []

    def __call__(self, argv: list[str], *, input: str | None = None,
                 timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess:
        """Run argv; BackendUnavailable on timeout or when the program is missing.

        With ``check`` a non-zero exit raises BackendUnavailable carrying stderr; callers that
        must tell a rejection from an outage inspect the CompletedProcess themselves.
        """
        t0 = time.monotonic()
        limit = self.timeout if timeout is None else timeout
        env = None if self.env is None else {**os.environ, **self.env}
        try:
            cp = _run_in_own_group(argv, input, limit, env)
        except subprocess.TimeoutExpired:
            self.records.append(CommandRecord(argv, time.monotonic() - t0, None, f"timed out after {limit:g} s"))
            raise BackendUnavailable(f"{argv[0]} timed out after {limit:g} s", timed_out=True) from None
        except OSError as e:
            self.records.append(CommandRecord(argv, time.monotonic() - t0, None, str(e)))
            raise BackendUnavailable(f"cannot run {argv[0]}: {e.strerror or e}") from None
        err = cp.stderr.strip().splitlines()[-1] if cp.returncode and cp.stderr.strip() else ""
        self.records.append(CommandRecord(argv, time.monotonic() - t0, cp.returncode, err))
        if check and cp.returncode != 0:
            raise BackendUnavailable(f"{argv[0]} failed (exit {cp.returncode}): {cp.stderr.strip() or cp.stdout.strip()}")
        return cp


def _run_in_own_group(argv: list[str], input: str | None, limit: float, env) -> subprocess.CompletedProcess:
    """subprocess.run in a process group of its own; on timeout the whole group is killed.

    A site wrapper (``sbatch`` a shell script that hangs after submitting) leaves children
    holding our stdout/stderr pipes: ``subprocess.run`` kills only the direct child and then
    waits for those pipes, i.e. hangs as long as the grandchild does. The group is ours: it was
    created for this command alone."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(input, timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(p)
        p.communicate()
        raise
    except BaseException:
        _kill_group(p)
        p.wait()
        raise
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def _kill_group(p: subprocess.Popen) -> None:
    """SIGKILL the command's whole process group (a hung wrapper's children hold our pipes)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
