"""Grid Engine batch backend (Son of Grid Engine 8.x, Sun Grid Engine 6.x, their forks).

Three layers, as in every backend (see ``batchman.backends.base``):

* argv builders (pure): ``build_qsub_argv``, ``build_qstat_argv``, ``build_qstat_j_argv``,
  ``build_qacct_argv``, ``build_qdel_argv``;
* parsers (pure): ``parse_qsub_output``, ``parse_qstat_xml``, ``parse_qstat_j_errors``,
  ``parse_qacct``, and the mappings ``map_state`` (queue state letters) and ``map_accounting``
  (a finished job's ``failed`` / ``exit_status``);
* :class:`GridEngineBackend` (here), the only code that runs commands, all through its ``Runner``;
  the builders and parsers are in :mod:`batchman.backends.batch.gridengine_text`.

Commands per ``query`` whatever the number of jobs: one ``qstat -xml -u USER``; one
``qstat -j ID,ID,...`` only when some of our jobs sit in an error state (``Eqw``), for the reason;
one ``qacct`` only when some asked jobs are no longer in the queue.

The accounting look-up. ``qacct`` takes one ``-j`` only (a second one replaces the first;
``-j 1,2`` reads as job 1), and reads the whole accounting file whatever it is asked. Its ``-j``
also takes a job *name pattern* (``fnmatch``), so one call covers every job that left the queue:
``qacct -o USER -j PATTERN`` where PATTERN is built from the asked names by ``name_pattern``
(position by position the one character, or a bracket expression of those found there: a
tight superset, filtered here by exact name). Matching by name also finds jobs whose id we lost, and picks the right record when
ids were reused. No ``-b`` time window: ``-b`` compares start times, and a job that never started
(failed 26-28, shown as ``Eqw`` first) has none, so it would drop exactly the records that say why.
"""

from __future__ import annotations

import getpass
import math
import re
import time

from batchman.backends.base import (
    ABSENT, FINISHED, QUEUED, RUNNING, BackendUnavailable, BatchBase, Capabilities, JobInfo, JobSpec, Rejected,
    Runner,
)
from batchman.backends.batch.gridengine_text import (  # noqa: F401 - the pure half, also used as gridengine.X
    ACCOUNTING_LAG, QUEUE_LIST_ARGV, AcctRecord, QueuedJob, build_qacct_argv, build_qdel_argv, build_qstat_argv,
    build_qstat_j_argv, build_qsub_argv, is_outage, map_accounting, map_state, name_pattern,
    parse_category_requests, parse_duration, parse_qacct, parse_queue_list, parse_qstat_j_errors, parse_qstat_xml,
    parse_qsub_output, parse_size, pick_record, rejection_message,
)

# ---------------------------------------------------------------------------------------------
# the backend: the only place that runs commands
# ---------------------------------------------------------------------------------------------

class GridEngineBackend(BatchBase):
    """``BatchBackend`` for Grid Engine; every command goes through ``runner``."""

    name = "gridengine"
    capabilities = Capabilities(command_log=True)

    def __init__(self, runner: Runner, user: str | None = None, pe_name: str = "smp",
                 memory_resource: str = "h_vmem"):
        self.runner = runner
        self.user = user or getpass.getuser()
        self.pe_name = pe_name
        self.memory_resource = memory_resource
        self.accounting_lag = ACCOUNTING_LAG
        self.clock = time.monotonic
        # name -> when we last knew it in the queue (submit or qstat): a job that just left the
        # queue is not in qacct until the accounting flush; it counts as running meanwhile.
        self._last_queued: dict[str, float] = {}
        # name -> (id, state letters) when last seen in the queue, and the ids we qdel'ed: a job
        # deleted while still pending never reaches qacct, so waiting accounting_lag for its
        # record would show a job that never ran as running for a minute.
        self._last_seen: dict[str, tuple[str, str]] = {}
        self._cancelled: set[str] = set()

    # -- helpers ----------------------------------------------------------------------------
    def _ask(self, argv: list[str]):
        """Run a query command; a non-zero exit is an outage (callers filter "not found")."""
        cp = self.runner(argv)
        if cp.returncode != 0:
            msg = (cp.stderr.strip() or cp.stdout.strip()).replace("\n", "; ")
            raise BackendUnavailable(f"{argv[0]} failed (exit {cp.returncode}): {msg}")
        return cp

    def known_queues(self) -> set[str]:
        """Every cluster queue, from one ``qconf -sql``."""
        return parse_queue_list(self._ask(QUEUE_LIST_ARGV).stdout)

    def _queue(self) -> list[QueuedJob]:
        cp = self._ask(build_qstat_argv(self.user))
        try:
            return parse_qstat_xml(cp.stdout)
        except ValueError as e:
            raise BackendUnavailable(str(e)) from None

    @staticmethod
    def _info(name: str, entries: list[QueuedJob]) -> JobInfo:
        """One JobInfo from the queue entries of one job (several for an array job)."""
        states = [map_state(e.state) for e in entries]
        i = next((k for k, (state, _) in enumerate(states) if state == RUNNING), 0)
        main, (state, reason) = entries[i], states[i]
        return JobInfo(name=name, job_id=main.job_id, state=state, native_state=main.state,
                       reason=reason, node=main.node)

    # -- BatchBackend -----------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        try:
            argv = build_qsub_argv(spec, pe_name=self.pe_name, memory_resource=self.memory_resource)
        except ValueError as e:
            raise Rejected(str(e)) from None
        cp = self.runner(argv)
        if cp.returncode != 0:
            message = rejection_message(cp.stderr, cp.stdout)
            if is_outage(cp.stderr + cp.stdout):
                raise BackendUnavailable(f"qsub: {message}", timed_out="timed out" in message)
            raise Rejected(message)
        try:
            job_id = parse_qsub_output(cp.stdout)
        except ValueError as e:
            raise BackendUnavailable(str(e)) from None
        self._last_queued[spec.name] = self.clock()
        return job_id

    def query(self, jobs: dict[str, str]) -> dict[str, JobInfo]:
        queue = self._queue()
        now = self.clock()
        by_id: dict[str, list[QueuedJob]] = {}
        by_name: dict[str, list[QueuedJob]] = {}
        for e in queue:
            by_id.setdefault(e.job_id, []).append(e)
            by_name.setdefault(e.name, []).append(e)

        result: dict[str, JobInfo] = {}
        gone: dict[str, str] = {}
        for name, job_id in jobs.items():
            entries = [e for e in by_id.get(job_id, []) if e.name == name] if job_id else []
            if not entries and name in by_name:
                # id unknown (or not this job's): the newest job of that name
                newest = max(by_name[name], key=lambda e: int(e.job_id)).job_id
                entries = [e for e in by_name[name] if e.job_id == newest]
            if entries:
                result[name] = self._info(name, entries)
                self._last_queued[name] = now
                self._last_seen[name] = (result[name].job_id, result[name].native_state)
            else:
                gone[name] = job_id

        errored = sorted({i.job_id for i in result.values() if "E" in i.native_state}, key=int)
        if errored:
            cp = self.runner(build_qstat_j_argv(errored))
            reasons = parse_qstat_j_errors(cp.stdout) if cp.returncode == 0 else {}
            for info in result.values():
                if info.job_id in reasons:
                    info.reason = f"error state (clear with qmod -cj or delete): {reasons[info.job_id]}"

        if gone:
            records = self._accounting(list(gone))
            for name, job_id in gone.items():
                rec = pick_record(records, name, job_id)
                if rec is not None:
                    exit_code, failure, reason = map_accounting(rec)
                    failed = f"failed {rec.failed}" if rec.failed else ""
                    result[name] = JobInfo(
                        name=name, job_id=rec.job_id, state=FINISHED, exit_code=exit_code,
                        native_state=failed or f"exit {rec.exit_status}", reason=reason,
                        node=rec.hostname, failure=failure)
                    self._forget(name)
                elif self._deleted_while_pending(name, job_id):
                    self._forget(name)
                    result[name] = JobInfo(name=name, job_id=job_id or self._last_seen_id(name),
                                           state=ABSENT, native_state="deleted", failure="cancelled",
                                           reason="deleted while pending: Grid Engine keeps no record of it")
                elif now - self._last_queued.get(name, -math.inf) < self.accounting_lag:
                    result[name] = JobInfo(name=name, job_id=job_id, state=RUNNING,
                                           native_state="left queue",
                                           reason="left the queue; accounting record not written yet")
                else:
                    self._forget(name)
                    result[name] = JobInfo(name=name, job_id=job_id, state=ABSENT,
                                           reason="neither in qstat nor in qacct")
        return result

    def _last_seen_id(self, name: str) -> str:
        return self._last_seen.get(name, ("", ""))[0]

    def _deleted_while_pending(self, name: str, job_id: str) -> bool:
        """We qdel'ed this job and the queue last showed it pending (not in error, never started)."""
        seen_id, letters = self._last_seen.get(name, ("", ""))
        if not seen_id or seen_id not in self._cancelled or (job_id and job_id != seen_id):
            return False
        return map_state(letters)[0] == QUEUED and "E" not in letters

    def _forget(self, name: str) -> None:
        self._last_queued.pop(name, None)
        seen_id, _ = self._last_seen.pop(name, ("", ""))
        self._cancelled.discard(seen_id)

    def _accounting(self, names: list[str]) -> list[AcctRecord]:
        cp = self.runner(build_qacct_argv(self.user, names))
        if cp.returncode != 0:
            out = cp.stderr + cp.stdout
            # nothing matched, or no job ever ended on this cluster (no accounting file yet)
            if re.search(r"job (name|id) .* not found|no jobs running since startup", out):
                return []
            raise BackendUnavailable(f"qacct failed (exit {cp.returncode}): {out.strip()}")
        return parse_qacct(cp.stdout)

    def list_ours(self, prefix: str) -> list[JobInfo]:
        grouped: dict[str, list[QueuedJob]] = {}
        for e in self._queue():
            if e.name.startswith(prefix):
                grouped.setdefault(e.job_id, []).append(e)
        return [self._info(entries[0].name, entries) for entries in grouped.values()]

    def cancel(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        cp = self.runner(build_qdel_argv(job_ids))
        self._cancelled.update(job_ids)
        if cp.returncode == 0:
            return
        problems = [ln for ln in (cp.stderr + "\n" + cp.stdout).splitlines()
                    if ln.strip() and "does not exist" not in ln
                    and "for deletion" not in ln and "has deleted" not in ln]
        if not problems:
            return                       # only "denied: job "N" does not exist": already gone
        message = "; ".join(ln.strip() for ln in problems)
        if is_outage(message):
            raise BackendUnavailable(f"qdel: {message}")
        raise Rejected(f"qdel: {message}")

    def details(self, job_id: str) -> str:
        cp = self.runner(build_qstat_j_argv([job_id]))
        if cp.returncode == 0 and cp.stdout.strip():
            return cp.stdout
        if is_outage(cp.stderr):
            raise BackendUnavailable(f"qstat -j {job_id}: {cp.stderr.strip()}")
        cp = self.runner(["qacct", "-j", job_id])
        return cp.stdout if cp.returncode == 0 else (cp.stderr.strip() or f"job {job_id} unknown")
