"""SLURM's text, both ways: argv builders for sbatch / squeue / sacct / scancel / scontrol and
parsers of what they print (states mapped by :mod:`batchman.backends.batch.slurm_states`). Pure: no command is run here (the
backend, :mod:`batchman.backends.batch.slurm`, runs them); the tests feed captured text.
"""

from __future__ import annotations

import dataclasses
import math
import re

from batchman.backends.base import FINISHED, QUEUED, RUNNING, JobInfo, JobSpec, env_prefix
from batchman.backends.batch.slurm_states import map_state

# ----------------------------------------------------------------------------- sbatch
def build_sbatch_argv(spec: JobSpec) -> list[str]:
    """``sbatch --parsable ...`` for one job. Time limit in seconds is rounded up to minutes
    (SLURM's granularity, at least 1).

    The job's environment goes into sbatch's OWN environment (``env -- K=V ... sbatch``) and
    ``--export=ALL`` carries it to the job, any value included (commas, quotes, newlines).
    Not as ``--export=ALL,K=V,...``: with a variable list SLURM (22.05) loads the submitting
    user's login environment for every job (the job gets ``SLURM_GET_USER_ENV=1``), 0.5-0.9 s
    before it starts (issue 14). batchman's job.sh exports the same variables itself.
    """
    argv = env_prefix(spec.env)
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


def build_squeue_argv(user: str | None = None, names: list[str] | None = None,
                      fmt: str = SQUEUE_FORMAT) -> list[str]:
    """One ``squeue`` for all our jobs, finished ones too (``-t all``: kept MinJobAge s).

    Scoped by user; ``names`` narrows it further. Both filters are applied by squeue itself:
    on 22.05 every squeue costs slurmctld the same two RPCs (REQUEST_JOB_INFO for all jobs +
    REQUEST_PARTITION_INFO, measured with sdiag), so the filters save output, not RPCs.
    """
    argv = ["squeue", "--noheader", "--states=all", f"--Format={fmt}"]
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


def partition_names(text: str) -> set[str]:
    """The partitions of ``scontrol show partition --oneliner`` output."""
    return {name for name in parse_partitions(text) if name}


def partition_refusals(text: str, partition: str | None, account: str | None, qos: str | None) -> list[str]:
    """What the partition's own lists (AllowAccounts/DenyAccounts, AllowQos/DenyQos in
    ``scontrol show partition`` output) refuse of ``account`` and ``qos``; the associations
    in slurmdbd are not seen here (sbatch still judges those)."""
    p = parse_partitions(text).get(partition or "")
    if p is None:
        return []
    out = []
    for what, value, allow, deny in (("account", account, "AllowAccounts", "DenyAccounts"),
                                     ("QOS", qos, "AllowQos", "DenyQos")):
        allowed = [a for a in p.get(allow, "ALL").split(",") if a]
        if not value:
            continue
        if value in p.get(deny, "").split(","):
            out.append(f"{what} {value!r} is denied on partition {p['PartitionName']} ({deny}={p[deny]})")
        elif "ALL" not in allowed and value not in allowed:
            out.append(f"{what} {value!r} is not allowed on partition {p['PartitionName']} ({allow}={p[allow]})")
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
