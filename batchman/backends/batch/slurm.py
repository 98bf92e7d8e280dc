"""SLURM batch backend: sbatch / squeue / sacct / scancel / scontrol.

Three layers, as in :mod:`batchman.backends.base`:

* argv builders (pure): :func:`build_sbatch_argv`, :func:`build_squeue_argv`,
  :func:`build_sacct_argv`, ...
* parsers (pure): :func:`parse_sbatch_output`, :func:`parse_squeue`, :func:`parse_sacct`,
  :func:`map_state`, :func:`classify_sbatch_error`, ...
* :class:`SlurmBackend` (here), the only code that runs commands, always through its ``Runner``;
  the builders and parsers are in :mod:`batchman.backends.batch.slurm_text`.

Observation costs a bounded number of commands whatever the number of jobs: one ``squeue``
scoped to our user (``-t all``, so jobs that ended less than ``MinJobAge`` seconds ago are
still there with their exit code), then at most one ``sacct`` for the asked jobs squeue did
not show. Two accounting set-ups are supported:

* ``slurmdbd``: plain ``sacct`` (site with a database);
* ``jobcomp``: ``sacct -c`` reads the ``jobcomp/filetxt`` file (no database). sacct reads
  that file itself (no RPC to slurmctld), so it must be readable where batchman runs.

``auto`` asks ``scontrol show config`` once (AccountingStorageType) and caches the answer.

Facts measured on SLURM 22.05.8 (see tests/backends/test_slurm_parse.py for captured text):
``squeue -O exit_code`` is the raw wait status (768 = exit 3, 9 = SIGKILL); ``sacct`` gives
``code:signal``; ``sacct -c`` ignores ``--name`` (we filter here) and has no Reason; a job
killed for memory by ``JobAcctGatherParams=OverMemoryKill`` ends FAILED with reason
JobLaunchFailure and signal 9, not OUT_OF_MEMORY -- only its stderr says "exceeded memory
limit" (see :func:`log_failure_hint`).
"""

from __future__ import annotations

import getpass
import re

from batchman.backends.base import (
    ABSENT, QUEUED, RUNNING, ArrayForm, BackendUnavailable, BatchBase, Capabilities, JobInfo, JobSpec, Rejected,
    Runner,
)
from batchman.backends.batch.slurm_states import (  # noqa: F401 - also used as slurm.X
    PENDING_REASONS, SHORT_STATES, STATE_TABLE, Mapped, log_failure_hint, map_state,
)
from batchman.backends.batch.slurm_text import (  # noqa: F401 - the pure half, also used as slurm.X
    SACCT_FIELDS, SQUEUE_FIELDS, SQUEUE_FORMAT, accounting_mode, build_config_argv, build_details_argv, build_partition_argv, build_sacct_argv,
    build_sbatch_argv, build_scancel_argv, build_squeue_argv, classify_sbatch_error,
    is_transient_error, match_jobs, parse_partitions, partition_names, partition_refusals,
    parse_sacct, parse_sbatch_output, parse_scontrol_config, parse_squeue, partition_time_limits,
    sbatch_message, slurm_duration,
)
from batchman.backends.batch import slurm_array as SA

# ----------------------------------------------------------------------------- the backend
class AccountingUnavailable(BackendUnavailable):
    """squeue answered, sacct did not. ``partial`` holds what squeue said (jobs it showed);
    the other asked jobs are unknown for now (NOT absent)."""

    def __init__(self, message: str, partial: dict[str, JobInfo]):
        super().__init__(message, partial=partial)


class SlurmBackend(BatchBase):
    """:class:`batchman.backends.base.BatchBackend` for SLURM (tested on 22.05)."""

    name = "slurm"
    capabilities = Capabilities(time_limits=True, failure_hints=True, listing_reuse=True, command_log=True,
                                arrays=True)
    array_form = ArrayForm(index_var="SLURM_ARRAY_TASK_ID", first=0, log_token="%a")

    def __init__(self, runner: Runner, accounting: str = "auto", user: str | None = None,
                 sacct_since: str = "now-7days"):
        if accounting not in ("auto", "slurmdbd", "jobcomp"):
            raise ValueError(f"accounting must be auto, slurmdbd or jobcomp, not {accounting!r}")
        self.runner = runner
        self._accounting = None if accounting == "auto" else accounting
        self.user = user or getpass.getuser()
        self.sacct_since = sacct_since
        self.squeue_reuse = 0.0        # list_ours: reuse the last squeue if younger than this (s)
        self._last_squeue: tuple[float, list[JobInfo]] | None = None
        self._limits: dict[str, tuple[int, int]] = {}
        self._partitions_text = ""     # the last answer of known_queues, read by access_problems
        self._config: dict[str, str] | None = None   # scontrol show config, asked once

    # -- the one place that runs commands -------------------------------------------------
    def _run(self, argv: list[str], **kw):
        """Run through the runner; any failure to ask becomes BackendUnavailable."""
        return self.runner(argv, **kw)

    def _unavailable(self, argv: list[str], cp) -> BackendUnavailable:
        msg = (cp.stderr.strip() or cp.stdout.strip() or f"exit {cp.returncode}")
        return BackendUnavailable(f"{argv[0]} failed (exit {cp.returncode}): {msg}")

    # -- accounting mode ---------------------------------------------------------------------
    def config(self) -> dict[str, str]:
        """``scontrol show config``, asked once (accounting mode, MaxArraySize)."""
        if self._config is None:
            argv = build_config_argv()
            cp = self._run(argv)
            if cp.returncode != 0:
                raise self._unavailable(argv, cp)
            self._config = parse_scontrol_config(cp.stdout)
        return self._config

    @property
    def accounting(self) -> str:
        """'slurmdbd' or 'jobcomp'; asks ``scontrol show config`` once when 'auto'."""
        if self._accounting is None:
            self._accounting = accounting_mode(self.config())
        return self._accounting

    def max_array_size(self) -> int:
        """The site's MaxArraySize (asked once; SLURM's default when the config does not say it);
        1 (no arrays) with jobcomp accounting: ``sacct -c`` (22.05) lists elements by their raw
        ids only, so an element that left squeue could not be told from the others. Raises
        BackendUnavailable when scontrol cannot be asked now."""
        if self.accounting == "jobcomp":
            return 1
        return SA.max_array_size(self.config())

    # -- BatchBackend ------------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        return self._sbatch(build_sbatch_argv(spec))

    def submit_array(self, spec: JobSpec, size: int) -> str:
        """One ``sbatch --array=0-(size-1)``; returns the array's id (its elements: ``<id>_<i>``)."""
        return self._sbatch(SA.build_sbatch_array_argv(spec, size))

    def element_id(self, array_id: str, index: int) -> str:
        return SA.element_id(array_id, index)

    def element_index(self, job_id: str) -> int | None:
        return SA.element_index(job_id)

    def _sbatch(self, argv: list[str]) -> str:
        try:
            cp = self._run(argv)
        except BackendUnavailable as e:      # "env timed out ...": say which program hung
            msg = str(e)
            raise BackendUnavailable("sbatch" + msg[3:] if msg.startswith("env ") else msg,
                                     timed_out=e.timed_out) from None
        if cp.returncode in (126, 127) and argv[0] == "env":
            # env could not start sbatch (not on PATH): an outage of this host, not a refusal
            raise BackendUnavailable(f"cannot run sbatch: {cp.stderr.strip() or f'exit {cp.returncode}'}")
        if cp.returncode != 0:
            err = cp.stderr.strip() or cp.stdout.strip()
            if classify_sbatch_error(err) == "unavailable":
                msg = sbatch_message(err)     # "Socket timed out": the job may be in
                raise BackendUnavailable(f"sbatch failed (exit {cp.returncode}): {msg}", timed_out="timed out" in msg)
            raise Rejected(sbatch_message(err))
        try:
            return parse_sbatch_output(cp.stdout)
        except ValueError as e:
            # Submitted or not? Unknown: transient, the daemon looks the name up next round.
            raise BackendUnavailable(str(e)) from None

    def _squeue(self) -> list[JobInfo]:
        # JobArrayID: array elements as 948_4 (pending ones as one row 948_[2-5%2], expanded
        # here), plain jobs by their id as with JobID; one squeue either way.
        argv = build_squeue_argv(self.user, fmt=SA.SQUEUE_ARRAY_FORMAT)
        cp = self._run(argv)
        if cp.returncode != 0:
            raise self._unavailable(argv, cp)
        rows = SA.expand_all(parse_squeue(cp.stdout))
        import time
        self._last_squeue = (time.monotonic(), rows)
        return rows

    def time_limits(self, partition: str | None = None) -> tuple[int, int]:
        """(MaxTime, DefaultTime) in seconds of a partition (None: the default), 0 = unlimited;
        asked once per partition with ``scontrol show partition`` (for timeout retries)."""
        key = partition or ""
        if key not in self._limits:
            argv = build_partition_argv(partition)
            cp = self._run(argv)
            if cp.returncode != 0:
                raise self._unavailable(argv, cp)
            self._limits[key] = partition_time_limits(cp.stdout, partition)
        return self._limits[key]

    def known_queues(self) -> set[str]:
        """Every partition, from one ``scontrol show partition`` (kept for ``access_problems``)."""
        argv = build_partition_argv()
        cp = self._run(argv)
        if cp.returncode != 0:
            raise self._unavailable(argv, cp)
        self._partitions_text = cp.stdout
        return partition_names(cp.stdout)

    def access_problems(self, partition: str | None, account: str | None, qos: str | None) -> list[str]:
        """What the partition refuses of account and QOS, from the answer of ``known_queues``."""
        return partition_refusals(self._partitions_text, partition, account, qos)

    def query(self, jobs: dict[str, str], arrays: dict[str, tuple[str, int]] | None = None) -> dict[str, JobInfo]:
        """``arrays``: job name -> (array name, index) of the asked jobs that are array elements;
        an element without an id is found through its array's name (after a crash)."""
        if not jobs:
            return {}
        jobs = dict(jobs)
        arrays = {n: a for n, a in (arrays or {}).items() if n in jobs}
        adopting = {n for n in arrays if not jobs[n]}
        rows = self._squeue()
        found = self._match(jobs, arrays, rows)
        missing = {n: i for n, i in jobs.items() if n not in found}
        if missing:
            mode = self.accounting
            if all(missing.values()):
                # an element's array id too: slurmdbd keeps elements that never started as one
                # range record (123_[0-2]), which it shows for the array's id, not the element's
                ids = set(missing.values()) | {SA.split_id(i)[0] for i in missing.values() if "_" in i}
                argv = build_sacct_argv(mode, job_ids=sorted(ids))
            else:
                names = {arrays[n][0] if n in arrays else n for n, i in missing.items()}
                argv = build_sacct_argv(mode, names=sorted(names), since=self.sacct_since, user=self.user)
            try:
                cp = self._run(argv)
            except BackendUnavailable as e:
                raise AccountingUnavailable(str(e), dict(found)) from None
            if cp.returncode != 0:
                raise AccountingUnavailable(str(self._unavailable(argv, cp)), dict(found))
            rows = SA.expand_all(parse_sacct(cp.stdout))
            if any(not i for i in missing.values()):
                rows = [r for r in rows if r.name in names]
            for name, info in self._match(missing, {n: a for n, a in arrays.items() if n in missing}, rows).items():
                if info.state in (QUEUED, RUNNING) and not info.reason:
                    info.reason = "known to sacct only, not in squeue"
                found[name] = info
            jobs.update(missing)
        for name in adopting:
            if name not in found and jobs[name]:
                # the array exists (found by its name), this element is not listed yet: never
                # "absent", which would submit the task again; followed by its id from now on
                found[name] = JobInfo(name=name, job_id=jobs[name], state=QUEUED,
                                      reason=f"element of array {arrays[name][0]}, not listed yet")
        return {name: found.get(name) or JobInfo(name=name, job_id=job_id, state=ABSENT,
                                                 reason="unknown to SLURM")
                for name, job_id in jobs.items()}

    @staticmethod
    def _match(jobs: dict[str, str], arrays: dict[str, tuple[str, int]], rows: list[JobInfo]) -> dict[str, JobInfo]:
        """Rows of the asked jobs: plain ones by id or name, array elements by element id (ids
        of elements asked without one are resolved through their array's name, in ``jobs``)."""
        jobs.update(SA.resolve({n: a for n, a in arrays.items() if not jobs[n]}, rows))
        found = match_jobs({n: i for n, i in jobs.items() if n not in arrays}, rows)
        found.update(SA.match_elements({n: jobs[n] for n in arrays}, arrays, rows))
        return found

    def list_ours(self, prefix: str) -> list[JobInfo]:
        """Jobs squeue shows (``-t all``: finished ones for MinJobAge s too) named ``prefix*``."""
        rows = self._last_squeue[1] if self.listing_fresh() else self._squeue()
        return [j for j in rows if j.name.startswith(prefix)]

    # -- optional capabilities ----------------------------------------------------------------
    def reuse_listing(self, seconds: float) -> None:
        self.squeue_reuse = seconds

    def listing_fresh(self) -> bool:
        import time
        last = self._last_squeue
        return last is not None and time.monotonic() - last[0] < self.squeue_reuse

    def failure_hint(self, stderr_tail: str) -> str:
        return log_failure_hint(stderr_tail)

    def cancel(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        argv = build_scancel_argv(job_ids)
        cp = self._run(argv)
        if cp.returncode != 0:
            err = cp.stderr.strip()
            if is_transient_error(err):
                raise self._unavailable(argv, cp)
            # "already completing or completed", "Invalid job id specified": nothing to cancel
            bad = [l for l in err.splitlines()
                   if l.strip() and not re.search(r"already complet|Invalid job id|"
                                                  r"Job/step already|has already finished", l)]
            if bad:
                raise self._unavailable(argv, cp)

    def details(self, job_id: str) -> str:
        argv = build_details_argv(job_id)
        cp = self._run(argv)
        if cp.returncode == 0:
            return cp.stdout
        err = cp.stderr.strip()
        if is_transient_error(err):
            raise self._unavailable(argv, cp)
        # gone from slurmctld (MinJobAge): what accounting still knows
        argv = build_sacct_argv(self.accounting, job_ids=[job_id])
        argv = [a for a in argv if not a.startswith("--format=")] + [
            "--format=JobID,JobName,State,ExitCode,Reason,Partition,Account,NodeList,"
            "Submit,Start,End,Elapsed,Timelimit,ReqMem,NCPUS,WorkDir"]
        acp = self._run(argv)
        head = f"scontrol: {err}\n"
        if acp.returncode == 0 and acp.stdout.strip():
            fields = argv[-1].split("=", 1)[1].split(",")
            lines = [dict(zip(fields, l.split("|"))) for l in acp.stdout.strip().splitlines()]
            return head + "\n".join(" ".join(f"{k}={v}" for k, v in d.items()) for d in lines) + "\n"
        return head + (acp.stderr.strip() or "no accounting record") + "\n"
