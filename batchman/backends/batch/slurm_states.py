"""SLURM's job states as data (long and short names, pending reasons) and what they mean to
us (:func:`map_state`), and what slurmstepd writes into a failed job's stderr
(:func:`log_failure_hint`). Pure."""

from __future__ import annotations

import re
import signal as _signal
from typing import NamedTuple

from batchman.backends.base import FINISHED, QUEUED, RUNNING

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
