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

import dataclasses
import getpass
import math
import re
import time

from batchman.backends.base import (
    ABSENT, FINISHED, QUEUED, RUNNING, ArrayForm, BackendUnavailable, BatchBase, Capabilities, JobInfo, JobSpec,
    Rejected, Runner,
)
from batchman.backends.batch import gridengine_array as GA
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
    capabilities = Capabilities(command_log=True, arrays=True)
    array_form = ArrayForm(index_var="SGE_TASK_ID", first=1, log_token="$TASK_ID")

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
        self._max_array: int | None = None    # max_aj_tasks, asked once

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
            return GA.expand_queue(parse_qstat_xml(cp.stdout))   # an array's tasks: one row each
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
        return self._qsub(spec.name, argv)

    def submit_array(self, spec: JobSpec, size: int) -> str:
        """One ``qsub -t 1-size``; returns the array's id (its elements: ``<id>.<index + 1>``)."""
        try:
            argv = GA.build_qsub_array_argv(spec, size, pe_name=self.pe_name, memory_resource=self.memory_resource)
        except ValueError as e:
            raise Rejected(str(e)) from None
        return self._qsub(spec.name, argv)

    def element_id(self, array_id: str, index: int) -> str:
        return GA.element_id(array_id, index)

    def element_index(self, job_id: str) -> int | None:
        return GA.element_index(job_id)

    def max_array_size(self) -> int:
        """The site's ``max_aj_tasks`` (``qconf -sconf``, asked once; 0 "no limit" is capped at
        GA.UNLIMITED_CAP). Raises BackendUnavailable when qconf cannot be asked now."""
        if self._max_array is None:
            self._max_array = GA.max_array_size(self._ask(GA.CONFIG_ARGV).stdout)
        return self._max_array

    def _qsub(self, name: str, argv: list[str]) -> str:
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
        self._last_queued[name] = self.clock()
        return job_id

    def query(self, jobs: dict[str, str], arrays: dict[str, tuple[str, int]] | None = None) -> dict[str, JobInfo]:
        """``arrays``: job name -> (array name, index) of the asked jobs that are array elements;
        an element without an id is found through its array's name (after a crash)."""
        arrays = {n: a for n, a in (arrays or {}).items() if n in jobs}
        queue = self._queue()
        now = self.clock()
        by_id: dict[str, list[QueuedJob]] = {}
        by_name: dict[str, list[QueuedJob]] = {}
        for e in queue:
            by_id.setdefault(e.job_id, []).append(e)
            by_name.setdefault(e.name, []).append(e)
            if e.tasks:                            # an array: its elements' lag counts from it
                self._last_queued[e.name] = now
        result: dict[str, JobInfo] = {}
        gone: dict[str, str] = {}
        for name, job_id in jobs.items():
            if name in arrays:
                job_id, entries = self._element_entries(job_id, arrays[name], by_id, by_name)
            else:
                entries = self._plain_entries(name, job_id, by_name)
            if entries:
                result[name] = self._info(name, entries)
                self._last_queued[name] = now
                self._last_seen[name] = (result[name].job_id, result[name].native_state)
            else:
                gone[name] = job_id
        self._error_reasons(result)
        if gone:
            result.update(self._finished(gone, arrays, now))
        return result

    @staticmethod
    def _plain_entries(name: str, job_id: str, by_name: dict) -> list[QueuedJob]:
        """The rows of a job by its name and id (all its tasks' rows when it is an array job
        submitted as one job: not by batchman), or the newest job of that name when the id is
        unknown (or not this job's)."""
        mine = [dataclasses.replace(e, job_id=GA.split_id(e.job_id)[0]) for e in by_name.get(name, [])]
        entries = [e for e in mine if e.job_id == job_id] if job_id else []
        if not entries and mine:
            newest = max(mine, key=lambda e: int(e.job_id)).job_id
            entries = [e for e in mine if e.job_id == newest]
        return entries

    @staticmethod
    def _element_entries(job_id: str, where: tuple[str, int], by_id: dict,
                         by_name: dict) -> tuple[str, list[QueuedJob]]:
        """(element id, its queue row): by its id, which must carry the array's name (ids are
        reused), or when it is not known through the newest array of that name."""
        array_name, index = where
        if not job_id and array_name in by_name:
            newest = max((GA.split_id(e.job_id)[0] for e in by_name[array_name]), key=int)
            job_id = GA.element_id(newest, index)
        return job_id, [e for e in by_id.get(job_id, []) if e.name == array_name] if job_id else []

    def _error_reasons(self, result: dict[str, JobInfo]) -> None:
        """The reasons of jobs (or array tasks) in an error state, from one ``qstat -j``."""
        base = {name: GA.split_id(i.job_id)[0] for name, i in result.items() if "E" in i.native_state}
        if not base:
            return
        cp = self.runner(build_qstat_j_argv(sorted(set(base.values()), key=int)))
        reasons = parse_qstat_j_errors(cp.stdout) if cp.returncode == 0 else {}
        for name, job_id in base.items():
            if job_id in reasons:
                result[name].reason = f"error state (clear with qmod -cj or delete): {reasons[job_id]}"

    def _finished(self, gone: dict[str, str], arrays: dict[str, tuple[str, int]], now: float) -> dict[str, JobInfo]:
        """Jobs no longer in the queue: their accounting record, or why there is none."""
        records = self._accounting(sorted({arrays[n][0] if n in arrays else n for n in gone}))
        result = {}
        for name, job_id in gone.items():
            if name in arrays:
                rec = GA.pick_element(records, arrays[name][0], GA.split_id(job_id)[0] if job_id else "", arrays[name][1])
            else:
                rec = pick_record(records, name, job_id)
            if rec is not None:
                result[name] = self._ended(name, rec)
                self._forget(name)
            elif self._deleted_while_pending(name, job_id):
                self._forget(name)
                result[name] = JobInfo(name=name, job_id=job_id or self._last_seen_id(name),
                                       state=ABSENT, native_state="deleted", failure="cancelled",
                                       reason="deleted while pending: Grid Engine keeps no record of it")
            elif now - self._seen_at(name, arrays.get(name)) < self.accounting_lag:
                result[name] = JobInfo(name=name, job_id=job_id, state=RUNNING,
                                       native_state="left queue",
                                       reason="left the queue; accounting record not written yet")
            else:
                self._forget(name)
                result[name] = JobInfo(name=name, job_id=job_id, state=ABSENT,
                                       reason="neither in qstat nor in qacct")
        return result

    def _seen_at(self, name: str, where: tuple[str, int] | None) -> float:
        """When the job was last known in the queue; an element never seen there itself (just
        submitted, or adopted): when its array was."""
        if name in self._last_queued or where is None:
            return self._last_queued.get(name, -math.inf)
        return self._last_queued.get(where[0], -math.inf)

    @staticmethod
    def _ended(name: str, rec: AcctRecord) -> JobInfo:
        exit_code, failure, reason = map_accounting(rec)
        failed = f"failed {rec.failed}" if rec.failed else ""
        job_id = rec.job_id if rec.task_id in ("", "undefined") else f"{rec.job_id}.{rec.task_id}"
        return JobInfo(name=name, job_id=job_id, state=FINISHED, exit_code=exit_code,
                       native_state=failed or f"exit {rec.exit_status}", reason=reason,
                       node=rec.hostname, failure=failure)

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
        """``qstat -j`` (an element: of its array job), then ``qacct -j`` (an element: its task's)."""
        base, index = GA.split_id(job_id)
        cp = self.runner(build_qstat_j_argv([base]))
        if cp.returncode == 0 and cp.stdout.strip():
            return cp.stdout
        if is_outage(cp.stderr):
            raise BackendUnavailable(f"qstat -j {base}: {cp.stderr.strip()}")
        cp = self.runner(["qacct", "-j", base] + (["-t", str(index + 1)] if index is not None else []))
        return cp.stdout if cp.returncode == 0 else (cp.stderr.strip() or f"job {job_id} unknown")
