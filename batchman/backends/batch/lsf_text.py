"""LSF's text, both ways: argv builders for bsub / bjobs / bhist / bkill and parsers of what
they print, with LSF's states and termination reasons as data. Pure: the backend
(:mod:`batchman.backends.batch.lsf`) runs the commands; tests feed captured text.
"""

from __future__ import annotations

import json
import math
import re
import shlex

from batchman.backends.base import FINISHED, QUEUED, RUNNING, JobInfo, JobSpec

# bjobs -o fields we ask for, in this order (bjobs.o.1 field names).
FIELDS = ("jobid", "job_name", "stat", "exit_code", "exit_reason", "pend_reason", "exec_host")
DELIMITER = "^"

QUEUED_STATES = {"PEND", "PSUSP", "WAIT", "PROV"}
RUNNING_STATES = {"RUN", "USUSP", "SSUSP"}
DONE_STATES = {"DONE", "PDONE", "POST_DONE", "POST_ERR", "PERR"}

_STATE_REASONS = {
    "PSUSP": "held: suspended by its owner or the LSF administrator while pending (PSUSP)",
    "WAIT": "chunk job waiting its turn (WAIT)",
    "PROV": "dispatched to a host that is being provisioned (PROV)",
    "USUSP": "suspended by its owner or the LSF administrator (USUSP)",
    "SSUSP": "suspended by LSF (SSUSP)",
    "ZOMBI": "ZOMBI: killed, but LSF cannot confirm it ended (execution host unreachable); not failed",
    "UNKWN": "UNKWN: LSF lost contact with the execution host; state unknown, not failed",
}

# TERM_* keyword -> our failure class ("Termination reasons displayed by bacct, bhist, and bjobs").
_FAILURES = {
    "TERM_RUNLIMIT": "timeout",
    "TERM_CPULIMIT": "timeout",
    "TERM_DEADLINE": "timeout",
    "TERM_MEMLIMIT": "out-of-memory",
    "TERM_SWAP": "out-of-memory",
    "TERM_OWNER": "cancelled",
    "TERM_ADMIN": "cancelled",
    "TERM_FORCE_OWNER": "cancelled",
    "TERM_FORCE_ADMIN": "cancelled",
    "TERM_BUCKET_KILL": "cancelled",
    "TERM_REQUEUE_OWNER": "cancelled",
    "TERM_REQUEUE_ADMIN": "cancelled",
    "TERM_PREEMPT": "preempted",
    "TERM_CWD_NOTEXIST": "boot-fail",
    "TERM_DATA": "boot-fail",
    "TERM_LOAD": "node-fail",
    "TERM_WINDOW": "preempted",
    "TERM_UNKNOWN": "lost",
    "TERM_ZOMBIE": "lost",
    "TERM_ORPHAN_SYSTEM": "lost",
}

# Messages meaning "LSF could not be asked" (mbatchd/LIM down or busy): transient.
_OUTAGE = re.compile(
    r"LSF is down|Cannot connect to LSF|Please wait|batch system daemon not responding|"
    r"LSF daemon \(LIM\) not responding|mbatchd|Communication time out|"
    r"Failed in an LSF library call|Unable to contact|Cannot contact|timed out",
    re.I,
)
NO_JOBS = re.compile(r"No (?:unfinished |matching )?job(?:s)? found|is not found", re.I)
SUBMITTED_LINE = re.compile(r"Job <(\d+)> is submitted to (?:default )?queue <([^>]*)>")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- argv builders

def _env_representable(env: dict[str, str]) -> bool:
    """Can bsub -env carry these variables? (no quotes, newlines or $ expansion surprises)."""
    return all(_ENV_NAME.match(k) and k not in ("all", "none")
               and not re.search(r"['\"\n$~]", v) for k, v in env.items())


def build_bsub_argv(spec: JobSpec, *, mem_units: bool = True) -> list[str]:
    """bsub argv for one job. When :func:`build_bsub_input` returns text, the job comes on stdin.

    ``-W`` takes [hour:]minute (rounded up), ``-M`` takes the limit with an MB unit (units are
    accepted since LSF 10.1.0.2; ``mem_units=False`` gives bare numbers for LSF_UNIT_FOR_LIMITS=MB
    sites). The environment goes through ``-env "all, NAME=value, ..."`` (bsub.env.1) when it can.
    """
    argv = ["bsub", "-J", spec.name, "-o", spec.stdout, "-e", spec.stderr, "-cwd", spec.workdir]
    if spec.time_limit is not None:
        minutes = max(1, math.ceil(spec.time_limit / 60))
        argv += ["-W", f"{minutes // 60}:{minutes % 60:02d}" if minutes >= 60 else str(minutes)]
    if spec.memory_mb is not None:
        argv += ["-M", f"{spec.memory_mb}MB" if mem_units else str(spec.memory_mb)]
    if spec.cpus and spec.cpus > 1:
        argv += ["-n", str(spec.cpus)]
    if spec.queue:
        argv += ["-q", spec.queue]
    if spec.account:
        argv += ["-P", spec.account]
    if spec.reservation:
        argv += ["-U", spec.reservation]
    argv += list(spec.extra_args)
    if spec.env and _env_representable(spec.env):
        items = ", ".join(f"{k}='{v}'" if "," in v else f"{k}={v}" for k, v in sorted(spec.env.items()))
        argv += ["-env", f"all, {items}"]
    if build_bsub_input(spec) is None:
        argv += ["/bin/bash", shlex.quote(spec.script)]
    return argv


def build_bsub_input(spec: JobSpec) -> str | None:
    """The job as a script on bsub's stdin, used when -env cannot carry the environment."""
    if not spec.env or _env_representable(spec.env):
        return None
    lines = ["#!/bin/bash"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(spec.env.items())]
    lines.append(f"exec /bin/bash {shlex.quote(spec.script)}")
    return "\n".join(lines) + "\n"


def build_bjobs_argv(*, user: str | None = None, json_output: bool = True,
                     name: str | None = None, all_states: bool = True) -> list[str]:
    """One bjobs for all our jobs, with an explicit output format."""
    argv = ["bjobs"]
    if all_states:
        argv.append("-a")            # also jobs that finished within CLEAN_PERIOD
    if user:
        argv += ["-u", user]
    if name:
        argv += ["-J", name]
    if json_output:
        argv += ["-o", " ".join(FIELDS), "-json"]
    else:
        argv += ["-noheader", "-o", " ".join(FIELDS) + f" delimiter='{DELIMITER}'"]
    return argv


def build_bhist_argv(job_ids: list[str]) -> list[str]:
    return ["bhist", "-a", "-l", *job_ids]


def build_bkill_argv(job_ids: list[str]) -> list[str]:
    return ["bkill", *job_ids]


# --------------------------------------------------------------------------- parsers

def build_bqueues_argv() -> list[str]:
    return ["bqueues", "-w"]


def parse_bqueues(text: str) -> set[str]:
    """``bqueues -w``: a QUEUE_NAME header, then one queue per line (its name first)."""
    names = {ln.split()[0] for ln in text.splitlines() if ln.strip()}
    return names - {"QUEUE_NAME"}


def parse_bsub_output(text: str) -> str:
    """Job id from ``Job <123> is submitted to [default] queue <normal>.``; ValueError if absent."""
    m = SUBMITTED_LINE.search(text)
    if not m:
        raise ValueError(f"no job id in bsub output: {text.strip()!r}")
    return m.group(1)


def _clean(v) -> str:
    v = "" if v is None else str(v).strip()
    return "" if v == "-" else v


def map_state(stat: str, exit_code: str | int | None = "", exit_reason: str = "",
              pend_reason: str = "") -> tuple[str, int | None, str, str]:
    """LSF state (+ exit code and reasons) -> (our state, exit code, failure class, reason)."""
    stat = (stat or "").strip().upper()
    code_s = _clean(exit_code)
    code = int(code_s) if re.fullmatch(r"-?\d+", code_s) else None
    exit_reason = _clean(exit_reason)
    pend_reason = _clean(pend_reason).rstrip(";")
    if stat in QUEUED_STATES:
        reason = "; ".join(r for r in (_STATE_REASONS.get(stat, ""), pend_reason) if r)
        return QUEUED, None, "", reason
    if stat in RUNNING_STATES:
        return RUNNING, None, "", _STATE_REASONS.get(stat, "")
    if stat in DONE_STATES:
        reason = "post-execution processing failed" if stat in ("POST_ERR", "PERR") else ""
        return FINISHED, 0, "", reason
    if stat == "EXIT":
        keyword = exit_reason.split(":")[0].strip().upper() if exit_reason else ""
        failure = _FAILURES.get(keyword, "exit-nonzero")
        if code == 0 and not keyword:
            code = None      # EXIT never means success
        return FINISHED, code, failure, exit_reason or (f"exit code {code}" if code is not None else "EXIT")
    if stat in ("ZOMBI", "UNKWN"):
        return RUNNING, None, "", _STATE_REASONS[stat]
    return RUNNING, None, "", f"unknown LSF state {stat!r}; assumed still alive"


def _node(exec_host: str) -> str:
    h = _clean(exec_host)
    if not h:
        return ""
    first = re.split(r"[:\s]", h)[0]
    return first.split("*", 1)[-1]


def _info(rec: dict[str, str]) -> JobInfo:
    stat = _clean(rec.get("stat"))
    state, code, failure, reason = map_state(stat, rec.get("exit_code", ""), rec.get("exit_reason", ""),
                                             rec.get("pend_reason", ""))
    return JobInfo(name=_clean(rec.get("job_name")), job_id=_clean(rec.get("jobid")), state=state,
                   native_state=stat, exit_code=code, reason=reason, node=_node(rec.get("exec_host", "")),
                   failure=failure)


def parse_bjobs_json(text: str) -> list[JobInfo]:
    """bjobs -o ... -json output -> JobInfo per record (records with an ERROR are skipped).

    Raises ValueError when the text is not bjobs JSON.
    """
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in bjobs output")
    data = json.loads(text[start:text.rfind("}") + 1])
    if not isinstance(data, dict) or "RECORDS" not in data:
        raise ValueError("bjobs JSON without RECORDS")
    out = []
    for rec in data["RECORDS"] or []:
        if not isinstance(rec, dict) or rec.get("ERROR"):
            continue
        out.append(_info({k.lower(): v for k, v in rec.items()}))
    return out


def parse_bjobs_plain(text: str, fields: tuple[str, ...] = FIELDS, delimiter: str = DELIMITER) -> list[JobInfo]:
    """Plain bjobs output -> JobInfo.

    Two forms: ``-noheader -o "<fields> delimiter='^'"`` (values in ``fields`` order, ``-`` for
    empty), and the default column output with its header line (JOBID USER STAT QUEUE
    FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME; EXEC_HOST blank while pending).
    Messages such as "No unfinished job found" yield no jobs.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    if lines[0].split()[:2] == ["JOBID", "USER"]:
        out = []
        for ln in lines[1:]:
            tok = ln.split()
            if len(tok) < 9 or not re.fullmatch(r"\d+(\[\d+\])?", tok[0]):
                continue
            rest = tok[:-3]           # SUBMIT_TIME is "Mon DD HH:MM"
            if len(rest) == 6:        # a pending job has no EXEC_HOST
                rest = rest[:5] + [""] + rest[5:]
            cols = dict(zip(("jobid", "user", "stat", "queue", "from_host", "exec_host"), rest))
            cols["job_name"] = " ".join(rest[6:])
            out.append(_info(cols))
        return out
    out = []
    for ln in lines:
        parts = ln.split(delimiter)
        if len(parts) != len(fields) or not re.fullmatch(r"\d+(\[\d+\])?", parts[0].strip()):
            continue
        out.append(_info(dict(zip(fields, parts))))
    return out


_EVENT = re.compile(r"^(?:\w{3} +)?\w{3} +\d+ +\d+:\d+:\d+(?: +\d{4})?: (.*)$")


def _unwrap(text: str) -> list[str]:
    """Join LSF's long-format continuation lines (indented by 21 spaces) onto their line."""
    out: list[str] = []
    for ln in text.splitlines():
        if ln.startswith(" " * 21) and out:
            out[-1] += ln[21:]
        else:
            out.append(ln)
    return out


def parse_bhist_long(text: str) -> dict[str, JobInfo]:
    """bhist -l output -> JobInfo per job id, from its events (Done successfully, Exited with
    exit code N, Completed <exit>; TERM_...)."""
    out: dict[str, JobInfo] = {}
    for block in re.split(r"^-{20,}\s*$", text, flags=re.M):
        lines = _unwrap(block)
        head = next((ln for ln in lines if ln.startswith("Job <")), None)
        if head is None:
            continue
        m = re.match(r"Job <([\d\[\]]+)>(?:, Job Name <(.*?)>)?,", head)
        if not m:
            continue
        jid, name = m.group(1), m.group(2) or ""
        state, native, code, reason, failure, node = QUEUED, "PEND", None, "", "", ""
        for ln in lines:
            ev = _EVENT.match(ln.strip())
            if not ev:
                continue
            e = ev.group(1)
            if e.startswith(("Dispatched", "Starting", "Started", "Running")):
                state, native = RUNNING, "RUN"
                hm = re.search(r"on (?:Host\(s\) )?<(?:\d+\*)?([^>]+)>", e)
                node = hm.group(1) if hm else node
            elif e.startswith("Done successfully"):
                state, native, code = FINISHED, "DONE", 0
            elif e.startswith("Exited"):
                state, native = FINISHED, "EXIT"
                cm = re.search(r"exit code (\d+)", e)
                code = int(cm.group(1)) if cm else None
            elif e.startswith("Completed <exit>"):
                state, native = FINISHED, "EXIT"
                rm = re.search(r"(TERM_\w+)(?::\s*([^;]*))?", e)
                if rm:
                    reason = f"{rm.group(1)}: {rm.group(2).strip()}" if rm.group(2) else rm.group(1)
        if native == "EXIT":
            _, code, failure, reason = map_state("EXIT", "" if code is None else str(code), reason)
        elif native == "DONE":
            reason = ""
        out[jid] = JobInfo(name=name, job_id=jid, state=state, native_state=native, exit_code=code,
                           reason=reason, node=node, failure=failure)
    return out


def is_outage(text: str) -> bool:
    return bool(_OUTAGE.search(text or ""))


def outage_in(cp) -> bool:
    """Did this command fail because LSF could not be asked?"""
    return is_outage(cp.stderr) or (cp.returncode != 0 and is_outage(cp.stdout))
