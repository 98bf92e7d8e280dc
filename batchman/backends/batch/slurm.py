"""SLURM batch backend: sbatch / squeue / sacct / scancel / scontrol.

Three layers, as in :mod:`batchman.backends.base`:

* argv builders (pure): :func:`build_sbatch_argv`, :func:`build_squeue_argv`,
  :func:`build_sacct_argv`, ...
* parsers (pure): :func:`parse_sbatch_output`, :func:`parse_squeue`, :func:`parse_sacct`,
  :func:`map_state`, :func:`classify_sbatch_error`, ...
* :class:`SlurmBackend`, the only code that runs commands, always through its ``Runner``.

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

import dataclasses
import getpass
import math
import re
import signal as _signal
from typing import NamedTuple

from batchman.backends.base import (
    ABSENT, FINISHED, QUEUED, RUNNING,
    BackendUnavailable, JobInfo, JobSpec, Rejected, Runner,
)

# ----------------------------------------------------------------------------- state table
# SLURM's job states (squeue long names; sacct adds "CANCELLED by <uid>") -> ours.
# Failure class "" means success; None means "not finished".
# (state, failure class, text for people)
STATE_TABLE: dict[str, tuple[str, str | None, str]] = {
    # waiting
    "PENDING":       (QUEUED, None, ""),
    "CONFIGURING":   (QUEUED, None, "nodes being configured"),
    "REQUEUED":      (QUEUED, None, "requeued by SLURM, will run again"),
    "REQUEUE_HOLD":  (QUEUED, None, "requeued and held"),
    "REQUEUE_FED":   (QUEUED, None, "requeued (federation)"),
    "RESV_DEL_HOLD": (QUEUED, None, "held: its reservation was deleted"),
    "SPECIAL_EXIT":  (QUEUED, None, "requeued and held after a special exit code"),
    "POWER_UP_NODE": (QUEUED, None, "waiting for a node to power up"),
    # alive
    "RUNNING":       (RUNNING, None, ""),
    "COMPLETING":    (RUNNING, None, "completing (epilog)"),
    "SUSPENDED":     (RUNNING, None, "suspended"),
    "STOPPED":       (RUNNING, None, "stopped (SIGSTOP), keeps its allocation"),
    "RESIZING":      (RUNNING, None, "being resized"),
    "SIGNALING":     (RUNNING, None, "being signalled"),
    "STAGE_OUT":     (RUNNING, None, "staging out"),
    "UPDATE_DB":     (RUNNING, None, "updating the database"),
    # ended
    "COMPLETED":     (FINISHED, "", ""),
    "FAILED":        (FINISHED, "exit-nonzero", ""),
    "CANCELLED":     (FINISHED, "cancelled", "CANCELLED: job cancelled"),
    "TIMEOUT":       (FINISHED, "timeout", "TIMEOUT: time limit reached"),
    "OUT_OF_MEMORY": (FINISHED, "out-of-memory", "OUT_OF_MEMORY: job exceeded its memory"),
    "NODE_FAIL":     (FINISHED, "node-fail", "NODE_FAIL: a node of the job failed"),
    "BOOT_FAIL":     (FINISHED, "boot-fail", "BOOT_FAIL: a node failed to boot"),
    "PREEMPTED":     (FINISHED, "preempted", "PREEMPTED: job preempted"),
    "DEADLINE":      (FINISHED, "deadline", "DEADLINE: job reached its deadline"),
    "REVOKED":       (FINISHED, "revoked", "REVOKED: job revoked (runs on another cluster)"),
    "LAUNCH_FAILED": (FINISHED, "launch-failed", "LAUNCH_FAILED: job could not be launched"),
    "RECONFIG_FAIL": (FINISHED, "node-fail", "RECONFIG_FAIL: node configuration failed"),
}
# squeue/sacct short codes (squeue %t), accepted too
SHORT_STATES = {
    "PD": "PENDING", "CF": "CONFIGURING", "RQ": "REQUEUED", "RH": "REQUEUE_HOLD",
    "RF": "REQUEUE_FED", "RD": "RESV_DEL_HOLD", "SE": "SPECIAL_EXIT", "PU": "POWER_UP_NODE",
    "R": "RUNNING", "CG": "COMPLETING", "S": "SUSPENDED", "ST": "STOPPED", "RS": "RESIZING",
    "SI": "SIGNALING", "SO": "STAGE_OUT", "CD": "COMPLETED", "F": "FAILED", "CA": "CANCELLED",
    "TO": "TIMEOUT", "OOM": "OUT_OF_MEMORY", "NF": "NODE_FAIL", "BF": "BOOT_FAIL",
    "PR": "PREEMPTED", "DL": "DEADLINE", "RV": "REVOKED", "LF": "LAUNCH_FAILED",
}

# Pending reasons people meet most, with a few words of explanation.
PENDING_REASONS = {
    "Resources": "waiting for free resources",
    "Priority": "jobs with higher priority go first",
    "JobHeldUser": "held by the user (scontrol release)",
    "JobHeldAdmin": "held by an administrator",
    "Dependency": "waiting for a dependency",
    "DependencyNeverSatisfied": "its dependency can never be satisfied",
    "BeginTime": "start time not reached",
    "PartitionTimeLimit": "time limit above the partition's maximum",
    "PartitionDown": "partition down",
    "PartitionInactive": "partition inactive",
    "ReqNodeNotAvail": "requested node not available",
    "Reservation": "waiting for its reservation",
    "QOSMaxJobsPerUserLimit": "QOS limit on running jobs per user",
    "AssocMaxJobsLimit": "association limit on running jobs",
    "AssocGrpCPULimit": "group CPU limit reached",
    "launch failed requeued held": "launch failed, requeued and held",
}

# Unknown words never end a job: an unknown state is treated as alive.
_UNKNOWN = (RUNNING, None, "")


class Mapped(NamedTuple):
    state: str              # QUEUED | RUNNING | FINISHED
    exit_code: int | None
    failure: str            # "" = ok or not finished
    reason: str


def _signame(sig: int) -> str:
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def map_state(native: str, exit_code: int | None = None, signal: int | None = None,
              reason: str = "") -> Mapped:
    """Map a SLURM state word (+ exit code, terminating signal, SLURM reason) to ours.

    ``native`` may carry extra words ("CANCELLED by 0") or a trailing "+" (squeue/sacct
    abbreviations); ``reason`` is SLURM's Reason field ("None" counts as empty).

    Success is ``state == FINISHED and failure == ""``; ``exit_code`` is for people: a FAILED
    job killed by a signal gets 128 + signal, as a shell would report it.
    """
    words = native.strip().split()
    word = words[0].rstrip("+").upper() if words else ""
    word = SHORT_STATES.get(word, word)
    rest = " ".join(words[1:])
    state, failure, text = STATE_TABLE.get(word, _UNKNOWN)
    reason = "" if reason.strip() in ("", "None", "(null)") else reason.strip()

    if state == QUEUED:
        if reason:
            expl = PENDING_REASONS.get(reason)
            text = f"{reason}: {expl}" if expl else reason
        return Mapped(state, None, "", text)
    if state == RUNNING:
        if word not in STATE_TABLE:
            text = f"unknown SLURM state {native.strip()!r}"
        return Mapped(state, None, "", text)

    # FAILED: the script's exit code, or 128 + the signal that killed it. Other endings
    # (TIMEOUT, CANCELLED, ...) keep only a real non-zero exit code: the signal SLURM used
    # to end them is reported by squeue (15) but not by sacct (0:0), so it is dropped.
    if word == "FAILED":
        code = exit_code if exit_code or not signal else 128 + signal
    else:
        code = exit_code or None
    if word == "COMPLETED":
        return Mapped(FINISHED, code or 0, "" if not code else "exit-nonzero",
                      "" if not code else f"COMPLETED with exit code {code}")
    if word == "FAILED":
        if signal:
            text = f"FAILED: killed by {_signame(signal)}"
        elif exit_code:
            text = f"FAILED: exit code {exit_code}"
        else:
            text = "FAILED"
        if reason and reason != "NonZeroExitCode":
            text += f" ({reason})"
        return Mapped(FINISHED, code, failure, text)
    if word == "CANCELLED" and rest:
        m = re.fullmatch(r"by (\d+)", rest)
        text = f"CANCELLED by uid {m.group(1)}" if m else f"CANCELLED {rest}"
    if reason and reason not in text and word != "TIMEOUT":
        text += f" ({reason})"
    return Mapped(FINISHED, code, failure, text)


def log_failure_hint(text: str) -> str:
    """Failure class suggested by a job's stderr text, or ''.

    Without cgroups, OverMemoryKill makes the job FAILED (signal 9); only slurmstepd's line
    in the job's stderr tells it was memory.
    """
    if re.search(r"exceeded (job )?memory limit|oom-kill|Out Of Memory", text, re.I):
        return "out-of-memory"
    if "DUE TO TIME LIMIT" in text:
        return "timeout"
    if "DUE TO PREEMPTION" in text:
        return "preempted"
    if "DUE TO NODE FAILURE" in text:
        return "node-fail"
    return ""


# ----------------------------------------------------------------------------- sbatch
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def build_sbatch_argv(spec: JobSpec) -> list[str]:
    """``sbatch --parsable ...`` for one job. Time limit in seconds is rounded up to minutes
    (SLURM's granularity, at least 1).

    The job's environment goes into sbatch's OWN environment (``env -- K=V ... sbatch``) and
    ``--export=ALL`` carries it to the job, any value included (commas, quotes, newlines).
    Not as ``--export=ALL,K=V,...``: with a variable list SLURM (22.05) loads the submitting
    user's login environment for every job (the job gets ``SLURM_GET_USER_ENV=1``), 0.5-0.9 s
    before it starts (issue 14). batchman's job.sh exports the same variables itself.
    """
    argv: list[str] = []
    if spec.env:
        bad = [k for k in spec.env if not _ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"invalid environment variable name(s): {', '.join(map(repr, bad))}")
        argv += ["env", "--", *(f"{k}={v}" for k, v in spec.env.items())]
    argv += ["sbatch", "--parsable", f"--job-name={spec.name}",
            f"--output={spec.stdout}", f"--error={spec.stderr}", f"--chdir={spec.workdir}",
            "--nodes=1", "--ntasks=1", f"--cpus-per-task={spec.cpus}"]
    if spec.queue:
        argv.append(f"--partition={spec.queue}")
    if spec.account:
        argv.append(f"--account={spec.account}")
    if spec.qos:
        argv.append(f"--qos={spec.qos}")
    if spec.reservation:
        argv.append(f"--reservation={spec.reservation}")
    if spec.time_limit is not None:
        argv.append(f"--time={max(1, math.ceil(spec.time_limit / 60))}")
    if spec.memory_mb is not None:
        argv.append(f"--mem={spec.memory_mb}M")
    if spec.exclude_nodes:
        argv.append("--exclude=" + ",".join(spec.exclude_nodes))
    argv.append("--export=ALL")
    argv.extend(spec.extra_args)
    argv.append(spec.script)
    return argv


_JOB_ID = re.compile(r"\d+(?:_\d+|_\[[^\]]*\]|\+\d+)?")


def parse_sbatch_output(text: str) -> str:
    """Job id from ``sbatch --parsable`` stdout: "123" or "123;cluster" -> "123".

    Raises ValueError when no id is found (the caller must not assume nothing was submitted).
    """
    for line in reversed(text.strip().splitlines()):
        head = line.strip().split(";", 1)[0].strip()
        if _JOB_ID.fullmatch(head):
            return head
    raise ValueError(f"no job id in sbatch output {text.strip()[:200]!r}")


# stderr of any SLURM client when the controller (or slurmdbd) cannot be asked
_TRANSIENT = re.compile(
    r"Unable to contact slurm controller|Socket timed out|Zero Bytes were transmitted"
    r"|Connection refused|Connection reset|Communication connection failure"
    r"|temporarily unable|Resource temporarily unavailable|not responding"
    r"|Transport endpoint|Slurm backup controller in standby mode"
    r"|Unable to establish control machine|Unable to process configuration file"
    r"|Unable to connect to database|slurmdbd.*(down|not responding)"
    r"|accounting storage is disabled|Problem talking to the database"
    r"|Job violates accounting/QOS policy \(job submit limit"
    r"|QOSMaxSubmitJob|AssocMaxSubmitJob|Batch job submission failed: Slurm temporarily",
    re.I)


def is_transient_error(stderr: str) -> bool:
    """True if a SLURM client's error text means "could not ask", not "refused"."""
    return bool(_TRANSIENT.search(stderr))


def classify_sbatch_error(stderr: str) -> str:
    """'unavailable' or 'rejected' for a failed sbatch, from its stderr."""
    return "unavailable" if is_transient_error(stderr) else "rejected"


def sbatch_message(stderr: str) -> str:
    """SLURM's own words for a refused submission, without the "sbatch: error:" noise."""
    lines = [re.sub(r"^sbatch:\s*(error:\s*)?", "", l).strip() for l in stderr.strip().splitlines()]
    lines = [l for l in lines if l and not l.startswith("Try \"sbatch --help\"")]
    return "; ".join(dict.fromkeys(lines)) or "sbatch failed"


# ----------------------------------------------------------------------------- squeue
# -O fields, each with "|" as suffix and width 0 (= no padding, no truncation).
# The name goes last: split("|", n-1) then keeps any "|" inside it.
SQUEUE_FIELDS = ["JobID", "State", "Reason", "exit_code", "NodeList", "Name"]
SQUEUE_FORMAT = ",".join(f"{f}:0|" for f in SQUEUE_FIELDS[:-1]) + f",{SQUEUE_FIELDS[-1]}:0"


def build_squeue_argv(user: str | None = None, names: list[str] | None = None) -> list[str]:
    """One ``squeue`` for all our jobs, finished ones too (``-t all``: kept MinJobAge s).

    Scoped by user; ``names`` narrows it further. Both filters are applied by squeue itself:
    on 22.05 every squeue costs slurmctld the same two RPCs (REQUEST_JOB_INFO for all jobs +
    REQUEST_PARTITION_INFO, measured with sdiag), so the filters save output, not RPCs.
    """
    argv = ["squeue", "--noheader", "--states=all", f"--Format={SQUEUE_FORMAT}"]
    if user:
        argv.append(f"--user={user}")
    if names:
        argv.append("--name=" + ",".join(names))
    return argv


def _wait_status(text: str) -> tuple[int | None, int | None]:
    """squeue's exit_code is a raw wait status: 768 -> (3, 0), 9 -> (0, 9)."""
    try:
        raw = int(text)
    except ValueError:
        return None, None
    if raw < 0 or raw > 0xFFFF:
        return None, None
    return (raw >> 8) & 0xFF, raw & 0x7F


def parse_squeue(text: str) -> list[JobInfo]:
    """Rows of ``squeue --Format=SQUEUE_FORMAT`` -> JobInfo. Garbage lines are skipped."""
    out = []
    n = len(SQUEUE_FIELDS)
    for line in text.splitlines():
        parts = line.split("|", n - 1)
        if len(parts) != n:
            continue
        job_id, native, reason, raw, node, name = (p.strip() for p in parts)
        if not _JOB_ID.fullmatch(job_id) or not native or not native[0].isalpha():
            continue
        code, sig = _wait_status(raw)
        m = map_state(native, code, sig, reason)
        out.append(JobInfo(name=name, job_id=job_id, state=m.state, native_state=native,
                           exit_code=m.exit_code if m.state == FINISHED else None,
                           reason=m.reason, node="" if node == "(null)" else node,
                           failure=m.failure))
    return out


# ----------------------------------------------------------------------------- sacct
SACCT_FIELDS = ["JobID", "State", "ExitCode", "Reason", "NodeList", "JobName"]


def build_sacct_argv(mode: str, job_ids: list[str] = (), names: list[str] = (),
                     since: str = "now-7days", user: str | None = None) -> list[str]:
    """One ``sacct`` for the jobs squeue no longer shows.

    ``mode`` is ``slurmdbd`` (plain sacct) or ``jobcomp`` (``sacct -c``). By id when every
    job has one; otherwise by name over a start window (``since``), and the caller matches
    ids and names in the answer (``sacct -c`` ignores ``--name``: it filters nothing).
    """
    argv = ["sacct"]
    if mode == "jobcomp":
        argv.append("--completion")
    argv += ["--noheader", "--parsable2", "--allocations", "--format=" + ",".join(SACCT_FIELDS)]
    if names:
        argv += [f"--starttime={since}", "--name=" + ",".join(names)]
        if user and mode != "jobcomp":
            argv.append(f"--user={user}")
    else:
        argv.append("--jobs=" + ",".join(job_ids))
    return argv


def _code_signal(text: str) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", text)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def parse_sacct(text: str) -> list[JobInfo]:
    """Rows of ``sacct -P --format=SACCT_FIELDS`` -> JobInfo (steps and garbage skipped).

    A job listed twice (requeued, or ``sacct -c`` after a restart) keeps its last row.
    """
    rows: dict[str, JobInfo] = {}
    n = len(SACCT_FIELDS)
    for line in text.splitlines():
        parts = line.split("|", n - 1)
        if len(parts) != n:
            continue
        job_id, native, exitcode, reason, node, name = (p.strip() for p in parts)
        if not _JOB_ID.fullmatch(job_id) or not native or not native[0].isalpha():
            continue
        code, sig = _code_signal(exitcode)
        m = map_state(native, code, sig, reason)
        rows[job_id] = JobInfo(name=name, job_id=job_id, state=m.state, native_state=native,
                               exit_code=m.exit_code if m.state == FINISHED else None,
                               reason=m.reason, node="" if node in ("None assigned", "(null)") else node,
                               failure=m.failure)
    return list(rows.values())


# ----------------------------------------------------------------------------- misc commands
def build_scancel_argv(job_ids: list[str]) -> list[str]:
    return ["scancel", *job_ids]


def build_details_argv(job_id: str) -> list[str]:
    return ["scontrol", "show", "job", job_id]


def build_config_argv() -> list[str]:
    return ["scontrol", "show", "config"]


def build_partition_argv(partition: str | None = None) -> list[str]:
    return ["scontrol", "show", "partition", "--oneliner"] + ([partition] if partition else [])


def slurm_duration(text: str) -> int:
    """SLURM time ('UNLIMITED', 'INFINITE', 'NONE', 'MM', 'HH:MM:SS', 'D-HH:MM:SS', 'D-HH') ->
    seconds; 0 for unlimited / none / unparsable."""
    text = text.strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        return 0
    days, a, b, c = (int(x) if x else None for x in m.groups())
    if days is not None:       # D-HH[:MM[:SS]]
        return days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if c is not None:          # HH:MM:SS
        return a * 3600 + b * 60 + c
    if b is not None:          # MM:SS
        return a * 60 + b
    return a * 60              # MM


def parse_partitions(text: str) -> dict[str, dict[str, str]]:
    """``scontrol show partition --oneliner`` -> {name: {key: value}}; the default partition
    is also under the key '' ."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
        name = kv.get("PartitionName")
        if name:
            out[name] = kv
            if kv.get("Default") == "YES":
                out[""] = kv
    return out


def partition_time_limits(text: str, partition: str | None) -> tuple[int, int]:
    """(MaxTime, DefaultTime) of ``partition`` (None: the default one) in seconds; 0 = unlimited."""
    p = parse_partitions(text).get(partition or "")
    if p is None:
        return 0, 0
    return slurm_duration(p.get("MaxTime", "")), slurm_duration(p.get("DefaultTime", ""))


def parse_scontrol_config(text: str) -> dict[str, str]:
    """``scontrol show config`` -> {key: value}."""
    conf = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip() and " " not in k.strip():
            conf[k.strip()] = v.strip()
    return conf


def accounting_mode(conf: dict[str, str]) -> str:
    """'slurmdbd' when accounting goes to slurmdbd, else 'jobcomp' (sacct -c)."""
    return "slurmdbd" if conf.get("AccountingStorageType", "").endswith("/slurmdbd") else "jobcomp"


def _rank(info: JobInfo) -> tuple[int, int]:
    """Among jobs with one name: alive first, then the newest."""
    alive = info.state in (QUEUED, RUNNING)
    num = re.match(r"\d+", info.job_id)
    return (1 if alive else 0, int(num.group()) if num else -1)


def match_jobs(jobs: dict[str, str], rows: list[JobInfo]) -> dict[str, JobInfo]:
    """Pick, for each asked name -> id, its row: by id when the id is known, else by name.
    Names with no row are left out.

    A row found by id must also carry the asked name: job ids are reused when a cluster's
    state is reset, and an old job's ending must not be taken for ours. (slurmdbd may call a
    job that just ended "allocation" for a few seconds: that name is accepted.)"""
    by_id = {r.job_id: r for r in rows}
    by_name: dict[str, JobInfo] = {}
    for r in rows:
        if r.name not in by_name or _rank(r) > _rank(by_name[r.name]):
            by_name[r.name] = r
    found = {}
    for name, job_id in jobs.items():
        r = by_id.get(job_id) if job_id else by_name.get(name)
        if r is not None and job_id and r.name not in (name, "allocation", ""):
            r = None
        if r is not None:
            found[name] = r if r.name == name else dataclasses.replace(r, name=name)
    return found


# ----------------------------------------------------------------------------- the backend
class AccountingUnavailable(BackendUnavailable):
    """squeue answered, sacct did not. ``partial`` holds what squeue said (jobs it showed);
    the other asked jobs are unknown for now (NOT absent)."""

    def __init__(self, message: str, partial: dict[str, JobInfo]):
        super().__init__(message)
        self.partial = partial


class SlurmBackend:
    """:class:`batchman.backends.base.BatchBackend` for SLURM (tested on 22.05)."""

    name = "slurm"

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

    # -- the one place that runs commands -------------------------------------------------
    def _run(self, argv: list[str], **kw):
        """Run through the runner; any failure to ask becomes BackendUnavailable."""
        return self.runner(argv, **kw)

    def _unavailable(self, argv: list[str], cp) -> BackendUnavailable:
        msg = (cp.stderr.strip() or cp.stdout.strip() or f"exit {cp.returncode}")
        return BackendUnavailable(f"{argv[0]} failed (exit {cp.returncode}): {msg}")

    # -- accounting mode ---------------------------------------------------------------------
    @property
    def accounting(self) -> str:
        """'slurmdbd' or 'jobcomp'; asks ``scontrol show config`` once when 'auto'."""
        if self._accounting is None:
            argv = build_config_argv()
            cp = self._run(argv)
            if cp.returncode != 0:
                raise self._unavailable(argv, cp)
            self._accounting = accounting_mode(parse_scontrol_config(cp.stdout))
        return self._accounting

    # -- BatchBackend ------------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        argv = build_sbatch_argv(spec)
        try:
            cp = self._run(argv)
        except BackendUnavailable as e:      # "env timed out ...": say which program hung
            msg = str(e)
            raise BackendUnavailable("sbatch" + msg[3:] if msg.startswith("env ") else msg) from None
        if cp.returncode in (126, 127) and argv[0] == "env":
            # env could not start sbatch (not on PATH): an outage of this host, not a refusal
            raise BackendUnavailable(f"cannot run sbatch: {cp.stderr.strip() or f'exit {cp.returncode}'}")
        if cp.returncode != 0:
            err = cp.stderr.strip() or cp.stdout.strip()
            if classify_sbatch_error(err) == "unavailable":
                raise BackendUnavailable(f"sbatch failed (exit {cp.returncode}): {sbatch_message(err)}")
            raise Rejected(sbatch_message(err))
        try:
            return parse_sbatch_output(cp.stdout)
        except ValueError as e:
            # Submitted or not? Unknown: transient, the daemon looks the name up next round.
            raise BackendUnavailable(str(e)) from None

    def _squeue(self) -> list[JobInfo]:
        argv = build_squeue_argv(self.user)
        cp = self._run(argv)
        if cp.returncode != 0:
            raise self._unavailable(argv, cp)
        rows = parse_squeue(cp.stdout)
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

    def query(self, jobs: dict[str, str]) -> dict[str, JobInfo]:
        if not jobs:
            return {}
        found = match_jobs(jobs, self._squeue())
        missing = {n: i for n, i in jobs.items() if n not in found}
        if missing:
            mode = self.accounting
            if all(missing.values()):
                argv = build_sacct_argv(mode, job_ids=sorted(set(missing.values())))
            else:
                argv = build_sacct_argv(mode, names=sorted(missing), since=self.sacct_since,
                                        user=self.user)
            try:
                cp = self._run(argv)
            except BackendUnavailable as e:
                raise AccountingUnavailable(str(e), dict(found)) from None
            if cp.returncode != 0:
                raise AccountingUnavailable(str(self._unavailable(argv, cp)), dict(found))
            rows = parse_sacct(cp.stdout)
            if any(not i for i in missing.values()):
                rows = [r for r in rows if r.name in missing]
            for name, info in match_jobs(missing, rows).items():
                if info.state in (QUEUED, RUNNING) and not info.reason:
                    info.reason = "known to sacct only, not in squeue"
                found[name] = info
        return {name: found.get(name) or JobInfo(name=name, job_id=job_id, state=ABSENT,
                                                 reason="unknown to SLURM")
                for name, job_id in jobs.items()}

    def list_ours(self, prefix: str) -> list[JobInfo]:
        """Jobs squeue shows (``-t all``: finished ones for MinJobAge s too) named ``prefix*``."""
        import time
        last = self._last_squeue
        rows = last[1] if last is not None and time.monotonic() - last[0] < self.squeue_reuse else self._squeue()
        return [j for j in rows if j.name.startswith(prefix)]

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
