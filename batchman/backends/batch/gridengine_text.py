"""Grid Engine's text, both ways: facts as data, argv builders for qsub / qstat / qacct /
qdel and parsers of what they print. Pure: the backend
(:mod:`batchman.backends.batch.gridengine`) runs the commands; tests feed captured text.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

from batchman.backends.base import QUEUED, RUNNING, JobSpec, env_prefix

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

def build_qsub_argv(spec: JobSpec, *, pe_name: str = "smp",
                    memory_resource: str = "h_vmem") -> list[str]:
    """argv submitting ``spec``; prints the job id alone (``-terse``).

    The environment: ``qsub -v`` splits values at commas and has no escape, so the variables
    are put into qsub's own environment with ``env`` and ``-V`` exports it (the job also sees
    the submitter's environment, as with SLURM's default ``--export=ALL``).
    ``-S /bin/bash``: Grid Engine runs scripts with the queue's shell (``/bin/sh``), ignoring
    the ``#!`` line. The memory request is per slot in Grid Engine: ``memory_mb`` is divided by
    ``cpus``. ``qos`` has no Grid Engine equivalent and is ignored; ``reservation`` is an
    advance reservation id (``-ar``). An empty name is refused here: qsub sends ``-N ""`` on
    (its empty-argument check tests the pointer) and qmaster answers "there is no job_name in
    the request", which hides where the empty name came from.
    """
    if not spec.name:
        raise ValueError("empty job name (batchman finds its jobs by their names)")
    argv = env_prefix(spec.env)
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


QUEUE_LIST_ARGV = ["qconf", "-sql"]     # every cluster queue, one per line: parse_queue_list


def parse_queue_list(text: str) -> set[str]:
    return {ln.strip() for ln in text.splitlines() if ln.strip()}


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


def rejection_message(stderr: str, stdout: str) -> str:
    """``Unable to run job: unknown resource "x"\\nExiting.`` -> ``unknown resource "x"``."""
    lines = [re.sub(r"^Unable to run job:\s*", "", ln.strip()) for ln in (stderr or stdout).splitlines()
             if ln.strip() and ln.strip() != "Exiting."]
    return "; ".join(lines) or "qsub refused the job"
