"""Grid Engine batch backend (Son of Grid Engine 8.x, Sun Grid Engine 6.x, their forks).

Three layers, as in every backend (see ``batchman.backends.base``):

* argv builders (pure): ``build_qsub_argv``, ``build_qstat_argv``, ``build_qstat_j_argv``,
  ``build_qacct_argv``, ``build_qdel_argv``;
* parsers (pure): ``parse_qsub_output``, ``parse_qstat_xml``, ``parse_qstat_j_errors``,
  ``parse_qacct``, and the mappings ``map_state`` (queue state letters) and ``map_accounting``
  (a finished job's ``failed`` / ``exit_status``);
* :class:`GridEngineBackend`, the only code that runs commands, all through its ``Runner``.

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
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

from batchman.backends.base import (
    BatchBase, Capabilities, ABSENT, FINISHED, QUEUED, RUNNING,
    BackendUnavailable, JobInfo, JobSpec, Rejected, Runner,
)

# ---------------------------------------------------------------------------------------------
# Grid Engine facts, as data
# ---------------------------------------------------------------------------------------------

# Words in a client's stderr that mean "qmaster could not be asked", not "your request is bad".
OUTAGE_MARKERS = (
    "commlib error",
    "unable to contact qmaster",
    "unable to send message to qmaster",
    "failed receiving gdi request",
    "no answer from qmaster",
    "can't get configuration",
    "cell directory",          # "cell directory ... doesn't exist": SGE_ROOT/SGE_CELL wrong
    "sge_root",
    "timeout",
)

# Queue state letters (qstat(1)): d deleted, E error, h hold, r running, R restarted,
# s suspended, S queue suspended, T threshold suspended, t transferring, w waiting, q queued.
RUNNING_LETTERS = set("rtsST")
STATE_WORDS = {
    "E": "error",
    "h": "held",
    "d": "being deleted",
    "R": "restarted",
    "s": "suspended",
    "S": "queue suspended",
    "T": "suspended by threshold",
    "t": "starting",
}

# qacct `failed` codes (sge_status(5) / accounting(5)). Codes in this set failed before the job
# script ran: nothing the job did explains them.
NOT_STARTED_FAILURES = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 26, 27, 28, 29,
                                  31, 32, 33, 34, 35, 36, 38})
FAILED_LIMIT = 37        # qmaster enforced h_rt, h_cpu, or h_vmem limit
FAILED_KILLED = 100      # assumedly after job: ran, then killed by a signal (qdel, limit, ...)

# A job that left qstat reaches qacct after the accounting flush (flush_time, 15 s by default).
ACCOUNTING_LAG = 60.0

SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2,
              "G": 1024**3, "GB": 1024**3, "T": 1024**4, "TB": 1024**4}


# ---------------------------------------------------------------------------------------------
# argv builders
# ---------------------------------------------------------------------------------------------

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def build_qsub_argv(spec: JobSpec, *, pe_name: str = "smp",
                    memory_resource: str = "h_vmem") -> list[str]:
    """argv submitting ``spec``; prints the job id alone (``-terse``).

    The environment: ``qsub -v`` splits values at commas and has no escape, so the variables
    are put into qsub's own environment with ``env`` and ``-V`` exports it (the job also sees
    the submitter's environment, as with SLURM's default ``--export=ALL``).
    ``-S /bin/bash``: Grid Engine runs scripts with the queue's shell (``/bin/sh``), ignoring
    the ``#!`` line. The memory request is per slot in Grid Engine: ``memory_mb`` is divided by
    ``cpus``. ``qos`` has no Grid Engine equivalent and is ignored; ``reservation`` is an
    advance reservation id (``-ar``).
    """
    argv: list[str] = []
    if spec.env:
        bad = [k for k in spec.env if not _ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"invalid environment variable name(s): {', '.join(map(repr, bad))}")
        argv += ["env", "--", *(f"{k}={v}" for k, v in spec.env.items())]
    argv += ["qsub", "-terse", "-N", spec.name, "-S", "/bin/bash", "-wd", spec.workdir]
    if spec.stdout == spec.stderr:
        argv += ["-o", spec.stdout, "-j", "y"]
    else:
        argv += ["-o", spec.stdout, "-e", spec.stderr]
    if spec.time_limit is not None:
        argv += ["-l", f"h_rt={int(spec.time_limit)}"]
    if spec.memory_mb is not None:
        per_slot = math.ceil(spec.memory_mb / max(spec.cpus, 1))
        argv += ["-l", f"{memory_resource}={per_slot}M"]
    if spec.cpus > 1:
        argv += ["-pe", pe_name, str(spec.cpus)]
    if spec.queue:
        argv += ["-q", spec.queue]
    if spec.account:
        argv += ["-P", spec.account]
    if spec.reservation:
        argv += ["-ar", spec.reservation]
    argv += ["-V", *spec.extra_args, spec.script]
    return argv


def build_qstat_argv(user: str) -> list[str]:
    return ["qstat", "-xml", "-u", user]


def build_qstat_j_argv(job_ids: list[str]) -> list[str]:
    return ["qstat", "-j", ",".join(job_ids)]


def build_qacct_argv(user: str, names: list[str]) -> list[str]:
    return ["qacct", "-o", user, "-j", name_pattern(names)]


def build_qdel_argv(job_ids: list[str]) -> list[str]:
    return ["qdel", *job_ids]


_GLOB_SPECIAL = frozenset("*?[]\\!^-")


def _glob_position(chars: set[str], first: bool) -> str:
    """fnmatch text matching exactly the characters in ``chars`` at one position.

    Specials are backslash-escaped (qacct calls fnmatch without FNM_NOESCAPE, which honours
    that inside brackets too). A first character that is a digit or ``-`` is bracketed: qacct
    would take ``-j 12...`` for a job number and ``-j -...`` for a bare ``-j``.
    """
    def esc(c: str) -> str:
        return "\\" + c if c in _GLOB_SPECIAL else c
    if len(chars) == 1:
        (c,) = chars
        return f"[{esc(c)}]" if first and (c.isdigit() or c == "-") else esc(c)
    return "[" + "".join(esc(c) for c in sorted(chars)) + "]"


def name_pattern(names: list[str]) -> str:
    """One fnmatch pattern for ``qacct -j`` matching every name in ``names``.

    Position by position, the characters found there (one, or a bracket expression); past the
    shortest name, ``*``. For names of one store submitted together the superset is tight:
    ``bm.s.00123.reco.1`` and ``bm.s.00456.reco.1`` give ``bm.s.00[14][25][36].reco.1``.
    """
    if not names:
        raise ValueError("no names")
    shortest = min(map(len, names))
    parts = [_glob_position({n[i] for n in names}, i == 0) for i in range(shortest)]
    if any(len(n) != shortest for n in names):
        parts.append("*")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------------------------

def parse_qsub_output(text: str) -> str:
    """Job id from ``qsub -terse`` (``26``, array ``2.1-3:1``) or plain qsub
    (``Your job 4 ("x") has been submitted``, ``Your job-array 3.1-2:1 ("y") has been submitted``)."""
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"(\d+)(?:\.\S*)?$", line) or re.match(r"Your job(?:-array)? (\d+)", line)
        if m:
            return m.group(1)
    raise ValueError(f"no job id in qsub output: {text.strip()!r}")


@dataclass
class QueuedJob:
    """One ``<job_list>`` element of ``qstat -xml`` (an array job gives one per task or range)."""
    job_id: str
    name: str
    owner: str
    state: str                  # the letters: qw, hqw, r, t, Eqw, dr, ...
    queue: str = ""             # all.q@host, empty while pending
    slots: int = 1
    tasks: str = ""             # array task id(s): "1" or "2,3" / "4-10:1"
    since: str = ""             # JAT_start_time (running) or JB_submission_time (pending)

    @property
    def node(self) -> str:
        return self.queue.partition("@")[2]


def parse_qstat_xml(text: str) -> list[QueuedJob]:
    """Every job of ``qstat -xml``, running (queue_info) and pending (job_info) alike."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"qstat -xml output is not XML ({e}): {text[:200]!r}") from None
    jobs = []
    for el in root.iter("job_list"):
        def get(tag: str) -> str:
            return (el.findtext(tag) or "").strip()
        jobs.append(QueuedJob(
            job_id=get("JB_job_number"), name=get("JB_name"), owner=get("JB_owner"),
            state=get("state"), queue=get("queue_name"), slots=int(get("slots") or 1),
            tasks=get("tasks"), since=get("JAT_start_time") or get("JB_submission_time"),
        ))
    return jobs


def parse_qstat_j_errors(text: str) -> dict[str, str]:
    """job id -> error reason, from ``qstat -j ID,...`` (the ``error reason`` lines of Eqw jobs)."""
    reasons: dict[str, str] = {}
    job_id = ""
    for line in text.splitlines():
        if line.startswith("job_number:"):
            job_id = line.split(":", 1)[1].strip()
        elif line.startswith("error reason") and job_id:
            # "error reason    1:      11/22/2026 22:39:06 [0:12534]: error: can't chdir to ..."
            rest = line.split(":", 1)[1]
            m = re.search(r"\[[^\]]*\]:\s*(.*)", rest)
            reason = (m.group(1) if m else rest).strip()
            reasons[job_id] = f"{reasons[job_id]}; {reason}" if job_id in reasons else reason
    return reasons


@dataclass
class AcctRecord:
    """One ``qacct -j`` record (one per job, or per array task)."""
    job_id: str
    name: str
    owner: str = ""
    task_id: str = ""             # "undefined" for plain jobs
    hostname: str = ""
    qsub_time: float = 0.0        # seconds since the epoch (local time), 0 for "-/-"
    start_time: float = 0.0
    end_time: float = 0.0
    failed: int = 0
    failed_text: str = ""         # "qmaster enforced h_rt, h_cpu, or h_vmem limit"
    exit_status: int = 0
    wallclock: float = 0.0        # seconds
    maxvmem: float = 0.0          # bytes
    requests: dict[str, str] = field(default_factory=dict)   # -l resources from `category`

    @property
    def latest(self) -> float:
        return max(self.qsub_time, self.start_time, self.end_time)


def _qacct_time(value: str) -> float:
    try:
        return datetime.strptime(value.strip(), "%a %b %d %H:%M:%S %Y").timestamp()
    except ValueError:
        return 0.0                # "-/-": never started / ended


def parse_size(value: str) -> float:
    """``5.105MB`` / ``100M`` / ``0.000B`` -> bytes (1024-based, as Grid Engine)."""
    m = re.match(r"\s*([0-9.]+)\s*([KMGT]?B?)", value.strip(), re.I)
    if not m:
        return 0.0
    return float(m.group(1)) * SIZE_UNITS.get(m.group(2).upper(), 1)


def parse_duration(value: str) -> float:
    """``4s`` / ``0.011s`` / ``3`` / ``0:0:3`` / ``01:00:00`` -> seconds."""
    value = value.strip().rstrip("s")
    try:
        if ":" in value:
            total = 0.0
            for part in value.split(":"):
                total = total * 60 + float(part or 0)
            return total
        return float(value)
    except ValueError:
        return 0.0


def parse_category_requests(category: str) -> dict[str, str]:
    """``-l h_rt=3,h_vmem=100M -pe smp 2`` -> {"h_rt": "3", "h_vmem": "100M"}."""
    requests: dict[str, str] = {}
    words = category.split()
    for i, word in enumerate(words[:-1]):
        if word == "-l":
            for item in words[i + 1].split(","):
                key, _, val = item.partition("=")
                if key:
                    requests[key] = val
    return requests


def parse_qacct(text: str) -> list[AcctRecord]:
    """Every record of ``qacct -j`` output, in file order (records start with a line of ``=``)."""
    records: list[AcctRecord] = []
    fields: dict[str, str] | None = None

    def close() -> None:
        if fields and "jobnumber" in fields:
            failed_word, _, failed_text = fields.get("failed", "0").partition(":")
            records.append(AcctRecord(
                job_id=fields["jobnumber"], name=fields.get("jobname", ""),
                owner=fields.get("owner", ""), task_id=fields.get("taskid", ""),
                hostname=fields.get("hostname", ""),
                qsub_time=_qacct_time(fields.get("qsub_time", "")),
                start_time=_qacct_time(fields.get("start_time", "")),
                end_time=_qacct_time(fields.get("end_time", "")),
                failed=int(failed_word.strip() or 0), failed_text=failed_text.strip(),
                exit_status=int((fields.get("exit_status", "0").split() or ["0"])[0]),
                wallclock=parse_duration(fields.get("ru_wallclock", "0")),
                maxvmem=parse_size(fields.get("maxvmem", "0")),
                requests=parse_category_requests(fields.get("category", "")),
            ))

    for line in text.splitlines():
        if line.startswith("====="):
            close()
            fields = {}
        elif fields is not None and line.strip():
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
    close()
    return records


def map_state(native: str) -> tuple[str, str]:
    """Queue state letters -> (QUEUED | RUNNING, reason for people).

    ``r``, ``t``, ``Rr``, ``dr``, ``dt`` and the suspended ``s``/``S``/``T`` (still holding a
    slot) are RUNNING; ``qw``, ``hqw``, ``hRwq``, ``Eqw`` ... are QUEUED. ``E`` is an error the
    user must act on (``qmod -cj`` after fixing, or ``qdel``): the reason says so.
    """
    letters = set(native)
    state = RUNNING if letters & RUNNING_LETTERS and not letters & set("qw") else QUEUED
    words = [STATE_WORDS[c] for c in native if c in STATE_WORDS]
    reason = ", ".join(dict.fromkeys(words))
    return state, reason


def _limit_hit(rec: AcctRecord) -> str:
    """Which requested limit the job reached: "timeout", "out-of-memory" or ""."""
    h_rt = rec.requests.get("h_rt")
    if h_rt is not None and rec.wallclock >= parse_duration(h_rt) > 0:
        return "timeout"
    for key in ("h_vmem", "s_vmem", "mem_free", "h_data"):
        if key in rec.requests and rec.maxvmem >= parse_size(rec.requests[key]) > 0:
            return "out-of-memory"
    return ""


def map_accounting(rec: AcctRecord) -> tuple[int | None, str, str]:
    """A finished job's record -> (exit_code, failure, reason).

    failure: "" (ok), "exit-nonzero", "timeout", "out-of-memory", "cancelled",
    "could-not-start" (exit_code None: the script never ran) or "node-fail" (Grid Engine failed
    around a job that ran: shepherd, epilog, execd). See the table in
    ../shared/notes/gridengine-single-node.md.
    """
    failed_desc = f"failed {rec.failed}: {rec.failed_text}" if rec.failed_text else f"failed {rec.failed}"
    if rec.failed == 0:
        if rec.exit_status == 0:
            return 0, "", ""
        if rec.exit_status > 128:
            return rec.exit_status, "exit-nonzero", f"exit status {rec.exit_status} (signal {rec.exit_status - 128})"
        return rec.exit_status, "exit-nonzero", f"exit status {rec.exit_status}"
    if rec.failed in NOT_STARTED_FAILURES:
        return None, "could-not-start", failed_desc
    if rec.failed == FAILED_LIMIT:
        # usage figures can be missing (maxvmem 0 here): then a memory request alone means memory
        memory_only = "h_rt" not in rec.requests and rec.requests.keys() & {"h_vmem", "s_vmem"}
        hit = _limit_hit(rec) or ("out-of-memory" if memory_only else "timeout")
        return rec.exit_status, hit, f"{failed_desc}; exit status {rec.exit_status}"
    if rec.failed == FAILED_KILLED:
        return rec.exit_status, _limit_hit(rec) or "cancelled", f"{failed_desc}; exit status {rec.exit_status}"
    return rec.exit_status, "node-fail", f"{failed_desc}; exit status {rec.exit_status}"


def pick_record(records: list[AcctRecord], name: str, job_id: str = "") -> AcctRecord | None:
    """The record for job ``name`` with id ``job_id`` ('' when unknown: any id).

    Ids are reused after an unclean qmaster restart, array tasks have one record each, and a
    name may have been used before: match the name and the id, take the latest record."""
    mine = [r for r in records if r.name == name and (not job_id or r.job_id == job_id)]
    return max(mine, key=lambda r: (r.latest, int(r.job_id or 0)), default=None)


def is_outage(message: str) -> bool:
    low = message.lower()
    return any(m in low for m in OUTAGE_MARKERS)


def _rejection_message(stderr: str, stdout: str) -> str:
    """``Unable to run job: unknown resource "x"\\nExiting.`` -> ``unknown resource "x"``."""
    lines = [re.sub(r"^Unable to run job:\s*", "", ln.strip()) for ln in (stderr or stdout).splitlines()
             if ln.strip() and ln.strip() != "Exiting."]
    return "; ".join(lines) or "qsub refused the job"


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
            message = _rejection_message(cp.stderr, cp.stdout)
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
