"""Why an attempt failed, and what to do about it: retry rules per failure class (pure).

Each finished attempt that did not complete is put in one class, from what the batch system
said (its state word, mapped by the backend to ``Task.failure``), the exit code, our marker
files and a hint from the job's stderr (``log_failure_hint``: without cgroups SLURM's
OverMemoryKill ends a job FAILED with signal 9, only slurmstepd's line in stderr says
"exceeded memory limit"). ``policies.retry`` in batchman.yaml gives, per class, a rule:
retry or not, how many times, what changes on the retry (memory x factor up to a ceiling,
time limit x factor up to the partition's maximum, the failed node excluded) and whether the
retry counts against the run's cap (``policies.max_auto_restarts``).

Nothing here reads a clock, a file or a process: ``decide`` calls :func:`plan_retry` with the
task and the rules, and every case is a row of tests/test_retry.py.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from typing import Any

# The classes, in the order people read them.
OUT_OF_MEMORY = "out-of-memory"
TIMEOUT = "timeout"
NODE_FAIL = "node-fail"
PREEMPTED = "preempted"
REQUEUED = "requeued"
CANCELLED = "cancelled-by-user"      # cancelled outside batchman (batchman's own kills end ABORTED)
BOOT_FAIL = "boot-fail"
EXIT_NONZERO = "exit-nonzero"
MISSING_OUTPUTS = "missing-outputs"
INCOMPLETE = "incomplete"
SUBMIT_REJECTED = "submit-rejected"
LOST = "lost"                        # vanished, no exit status, launch failed, deadline, ...
CLASSES = (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL, PREEMPTED, REQUEUED, CANCELLED, BOOT_FAIL,
           EXIT_NONZERO, MISSING_OUTPUTS, INCOMPLETE, SUBMIT_REJECTED, LOST)

# Task.failure words (set by the backends and decide) -> class.
_BY_FAILURE = {
    "out-of-memory": OUT_OF_MEMORY, "timeout": TIMEOUT, "node-fail": NODE_FAIL,
    "preempted": PREEMPTED, "requeued": REQUEUED, "cancelled": CANCELLED, "boot-fail": BOOT_FAIL,
    "exit-nonzero": EXIT_NONZERO, "missing-outputs": MISSING_OUTPUTS, "incomplete": INCOMPLETE,
    "submit-rejected": SUBMIT_REJECTED, "lost": LOST, "vanished": LOST, "launch-failed": LOST,
    "deadline": LOST, "revoked": LOST,
}
# A stderr hint may say better what happened than the batch system's word for these.
_HINT_OVERRIDES = {EXIT_NONZERO, LOST, CANCELLED}


def classify(state: str, failure: str = "", exit_code: int | None = None, hint: str = "") -> str:
    """The class of a finished attempt that did not complete ('' when it completed).

    ``state`` is the task state it ended in (failed, incomplete, error), ``failure`` the
    backend's / decide's word, ``hint`` the class the job's stderr suggests ('' if none).
    """
    if state == "completed":
        return ""
    if state == "incomplete":
        return MISSING_OUTPUTS if failure == "missing-outputs" else INCOMPLETE
    if state == "error":
        return SUBMIT_REJECTED if failure == "submit-rejected" else (_BY_FAILURE.get(failure, ""))
    cls = _BY_FAILURE.get(failure, "")
    if not cls:
        cls = EXIT_NONZERO if exit_code not in (None, 0) else LOST
    if hint in CLASSES and cls in _HINT_OVERRIDES:
        cls = hint
    return cls


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    retry: bool = False
    max: int = 2                  # retries of this class per run
    counts: bool = True           # counts against policies.max_auto_restarts
    memory_factor: float = 1.0    # memory x factor on the retry ...
    memory_max_mb: int = 0        # ... up to this (0: no ceiling)
    memory_start_mb: int = 4000   # memory of the retry when the attempt ran with the site default
    time_factor: float = 1.0      # time limit x factor on the retry ...
    time_max: int = 0             # ... up to this many seconds (0: the partition's maximum)
    exclude_node: bool = False    # do not run the retry on the node that failed


RULE_KEYS: dict[str, tuple[str, str]] = {
    # key: (kind, help)
    "retry": ("bool", "retry attempts of this class"),
    "max": ("int", "most retries of this class per run"),
    "counts": ("bool", "the retry counts against policies.max_auto_restarts"),
    "memory_factor": ("factor", "memory of the retry = memory of the attempt x this"),
    "memory_max_mb": ("int", "ceiling for that memory in MB (0: none)"),
    "memory_start_mb": ("int", "memory of the retry in MB when the attempt ran with the site default"),
    "time_factor": ("factor", "time limit of the retry = time limit of the attempt x this"),
    "time_max": ("int", "ceiling for that time limit in seconds (0: the partition's maximum)"),
    "exclude_node": ("bool", "exclude the node the attempt failed on"),
}


def default_rules(auto_restart_failed: bool = False, max_auto_restarts: int = 2) -> dict[str, Rule]:
    """What a physicist wants without writing anything: out of memory or time -> again with
    twice as much (twice at most); the farm's fault (node failure, preemption, boot failure)
    -> again, not counted; a person's scancel, a refused submission -> left alone; the
    analysis' own failures (exit code, incomplete, missing outputs, lost) -> as the 2002
    tool's auto_restart_failed / max_auto_restarts say (off by default)."""
    own = Rule(retry=auto_restart_failed, max=max_auto_restarts, counts=True)
    return {
        OUT_OF_MEMORY: Rule(retry=True, max=2, memory_factor=2.0, memory_max_mb=64000),
        TIMEOUT: Rule(retry=True, max=2, time_factor=2.0),
        NODE_FAIL: Rule(retry=True, max=3, counts=False, exclude_node=True),
        PREEMPTED: Rule(retry=True, max=10, counts=False),
        REQUEUED: Rule(retry=True, max=10, counts=False),
        BOOT_FAIL: Rule(retry=True, max=3, counts=False, exclude_node=True),
        CANCELLED: Rule(retry=False, max=0),
        SUBMIT_REJECTED: Rule(retry=False, max=0),
        EXIT_NONZERO: own, INCOMPLETE: own, MISSING_OUTPUTS: own, LOST: own,
    }


def parse_rules(raw: Any, auto_restart_failed: bool = False, max_auto_restarts: int = 2,
                key: str = "policies.retry") -> tuple[dict[str, Rule], list[str]]:
    """``policies.retry`` as written -> (rules for every class, problems naming class and key).

    Only what is written changes the defaults; a class left out keeps its default."""
    rules = default_rules(auto_restart_failed, max_auto_restarts)
    problems: list[str] = []
    if raw is None or raw == {}:
        return rules, problems
    if not isinstance(raw, dict):
        return rules, [f"{key}: must be a mapping of failure class to rule ({', '.join(CLASSES)}), not {raw!r}"]
    for cls, body in raw.items():
        if cls not in CLASSES:
            hint = difflib.get_close_matches(str(cls), CLASSES, n=1)
            problems.append(f"{key}: unknown failure class {cls!r}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else f"; classes are {', '.join(CLASSES)}"))
            continue
        if isinstance(body, bool):
            body = {"retry": body}       # out-of-memory: false
        if not isinstance(body, dict):
            problems.append(f"{key}.{cls}: must be a mapping of {', '.join(RULE_KEYS)} (or true/false), not {body!r}")
            continue
        changes: dict[str, Any] = {}
        for k, v in body.items():
            where = f"{key}.{cls}.{k}"
            if k not in RULE_KEYS:
                hint = difflib.get_close_matches(str(k), list(RULE_KEYS), n=1)
                problems.append(f"{where}: unknown key" + (f" (did you mean {hint[0]!r}?)" if hint
                                                           else f"; keys are {', '.join(RULE_KEYS)}"))
                continue
            kind = RULE_KEYS[k][0]
            if kind == "bool":
                if not isinstance(v, bool):
                    problems.append(f"{where}: {v!r} is not true or false")
                    continue
            elif kind == "int":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v) or v < 0:
                    problems.append(f"{where}: {v!r} is not a whole number >= 0")
                    continue
                v = int(v)
            else:   # factor
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 1:
                    problems.append(f"{where}: {v!r} is not a number >= 1 (1: unchanged)")
                    continue
                v = float(v)
            changes[k] = v
        if "retry" in changes and changes["retry"] and "max" not in changes and rules[cls].max == 0:
            changes["max"] = 1
        rules[cls] = replace(rules[cls], **changes)
    return rules, problems


def describe(rules: dict[str, Rule]) -> list[str]:
    """One line per class, for `batchman check` / the parameter view."""
    out = []
    for cls in CLASSES:
        r = rules[cls]
        if not r.retry:
            out.append(f"{cls}: not retried")
            continue
        what = []
        if r.memory_factor > 1:
            what.append(f"memory x{r.memory_factor:g}" + (f" up to {r.memory_max_mb} MB" if r.memory_max_mb else ""))
        if r.time_factor > 1:
            what.append(f"time x{r.time_factor:g} up to " + (f"{r.time_max} s" if r.time_max else "the partition maximum"))
        if r.exclude_node:
            what.append("without the failed node")
        out.append(f"{cls}: retried up to {r.max}x" + (", " + ", ".join(what) if what else ", unchanged")
                   + ("" if r.counts else ", not counted against the cap"))
    return out


# ----------------------------------------------------------------------------- deciding
@dataclass
class Limits:
    """What the batch system allows, where known (0: unknown / unlimited)."""
    max_time: int = 0            # partition MaxTime in seconds
    default_time: int = 0        # partition DefaultTime in seconds
    base_memory_mb: int = 0      # batch.memory_mb (0: site default)
    base_time: int = 0           # batch.time_limit (0: site default)


@dataclass
class Retry:
    reason: str                                   # "out-of-memory: retry 1 of 2 with 4000 MB"
    resources: dict[str, Any] = field(default_factory=dict)   # Task.resources for the next attempt
    retries: dict[str, int] = field(default_factory=dict)     # Task.retries after it
    counted: bool = True


def plan_retry(cls: str, *, retries: dict[str, int], counted_so_far: int, cap: int,
               used: dict[str, Any], overrides: dict[str, Any], node: str,
               rules: dict[str, Rule], limits: Limits) -> tuple[Retry | None, str]:
    """(Retry, '') to try again, or (None, why not) -- for a failed attempt of class ``cls``.

    ``used``: the resources the attempt ran with (memory_mb, time_limit, exclude; absent:
    site default); ``overrides``: Task.resources so far; ``counted_so_far``: retries of the
    run that counted against ``cap``."""
    rule = rules.get(cls)
    if rule is None or not rule.retry:
        return None, f"{cls}: not retried (policies.retry)"
    n = retries.get(cls, 0)
    if n >= rule.max:
        return None, f"{cls}: retried {n} time(s) already (policies.retry.{cls}.max {rule.max})"
    if rule.counts and counted_so_far >= cap:
        return None, f"{cls}: {counted_so_far} counted retries already (policies.max_auto_restarts {cap})"
    res = dict(overrides)
    what = []
    if rule.memory_factor > 1:
        cur = int(used.get("memory_mb") or res.get("memory_mb") or limits.base_memory_mb or 0)
        new = math.ceil(cur * rule.memory_factor) if cur else rule.memory_start_mb
        if rule.memory_max_mb:
            new = min(new, rule.memory_max_mb)
        if cur and new <= cur:
            return None, (f"{cls}: memory already at the ceiling {cur} MB "
                          f"(policies.retry.{cls}.memory_max_mb {rule.memory_max_mb})")
        res["memory_mb"] = new
        what.append(f"memory {cur or 'site default'} -> {new} MB")
    if rule.time_factor > 1:
        cur = int(used.get("time_limit") or res.get("time_limit") or limits.base_time or limits.default_time or 0)
        ceiling = rule.time_max or limits.max_time
        if cur:
            new = math.ceil(cur * rule.time_factor)
            new = min(new, ceiling) if ceiling else new
        else:
            new = ceiling
        if not new or (cur and new <= cur):
            return None, (f"{cls}: time limit already at the maximum {cur} s" if cur else
                          f"{cls}: the time limit it ran with is unknown and no maximum is known "
                          f"(policies.retry.{cls}.time_max)")
        res["time_limit"] = new
        what.append(f"time limit {cur or 'site default'} -> {new} s")
    if rule.exclude_node and node:
        ex = sorted(set(res.get("exclude", [])) | {node})
        res["exclude"] = ex
        what.append(f"excluding {','.join(ex)}")
    after = {**retries, cls: n + 1}
    why = (f"{cls}: retry {n + 1} of {rule.max}" + (" (not counted)" if not rule.counts else "")
           + (", " + ", ".join(what) if what else ""))
    return Retry(why, res, after, rule.counts), ""


def resources_text(res: dict[str, Any]) -> str:
    """'4000 MB, 120 s, not on vm' for people ('' when the site defaults were used)."""
    parts = []
    if res.get("memory_mb"):
        parts.append(f"{res['memory_mb']} MB")
    if res.get("time_limit"):
        parts.append(f"{res['time_limit']} s")
    if res.get("cpus") and res.get("cpus") != 1:
        parts.append(f"{res['cpus']} CPUs")
    if res.get("queue"):
        parts.append(f"partition {res['queue']}")
    if res.get("exclude"):
        parts.append("not on " + ",".join(res["exclude"]))
    return ", ".join(parts)
