"""Counters a job reports about itself (ARP's "Report" column), with no network needed.

Inside a job, ``batchman report events=1200 "Current time=04:00:01"`` appends one JSON line to
the attempt's spool file (``$BATCHMAN_REPORT_SPOOL``): an O_APPEND write of a short line is
atomic, so no lock is needed and the job never waits for the daemon. The daemon (and
``batchman list``/``show`` for running tasks) folds the lines into the task's counters.

A counter's name is a label people choose (SLAC ARP's example reports ``Current time``): any
printable text of at most ``KEY_MAX`` characters without ``=``. What a job may put in the status
file is capped, whether it comes through ``batchman report`` or is written straight to the spool:

* a value of more than ``VALUE_MAX`` characters is cut and ends with ``CUT_MARK``;
* a task keeps at most ``COUNTERS_MAX`` counters; further names are refused (and dropped when read).

A bad pair is refused with a message naming it; the good pairs of the same call are kept.
Names and values are stored as written and shown escaped by every face.
"""

from __future__ import annotations

import json
import os
import time

ENV = "BATCHMAN_REPORT_SPOOL"
KEY_MAX = 64
VALUE_MAX = 256
COUNTERS_MAX = 32
CUT_MARK = "…[cut]"


class ReportError(ValueError):
    pass


def key_problem(key) -> str | None:
    """Why ``key`` cannot name a counter, or None."""
    if not isinstance(key, str) or not key.strip():
        return f"{key!r} is not a counter name (an empty name)"
    if len(key) > KEY_MAX:
        return f"{key[:20]!r}... is not a counter name (longer than {KEY_MAX} characters)"
    if not key.isprintable() or "=" in key:
        return f"{key!r} is not a counter name (control characters or '=')"
    return None


def clean_value(v):
    """A reported value as it is kept: numbers stay numbers, text is cut at VALUE_MAX."""
    if isinstance(v, bool) or v is None:
        return str(v).lower() if isinstance(v, bool) else ""
    if isinstance(v, (int, float)):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    s = v if isinstance(v, str) else json.dumps(v)
    return s if len(s) <= VALUE_MAX else s[: VALUE_MAX - len(CUT_MARK)] + CUT_MARK


def split_pairs(pairs: list[str]) -> tuple[dict, list[str]]:
    """['events=10', 'Current time=04:00'] -> ({'events': 10, 'Current time': '04:00'}, problems)."""
    out: dict = {}
    problems = []
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            problems.append(f"{p!r} is not KEY=VALUE (example: batchman report events=1200)")
            continue
        why = key_problem(key.strip())
        if why:
            problems.append(why)
            continue
        out[key.strip()] = clean_value(_number(value))
    return out, problems


def parse_pairs(pairs: list[str]) -> dict:
    """Like split_pairs, but the first bad pair is an error."""
    out, problems = split_pairs(pairs)
    if problems:
        raise ReportError(problems[0])
    return out


def _number(v: str):
    try:
        return int(v)
    except ValueError:
        try:
            f = float(v)
            return f if f == f and f not in (float("inf"), float("-inf")) else v
        except ValueError:
            return v


def report(spool: str, pairs: list[str]) -> dict:
    """Append the good pairs to the spool; raise ReportError naming the bad ones after that."""
    counters, problems = split_pairs(pairs)
    known = read(spool)
    room = COUNTERS_MAX - len(known)
    for k in [k for k in counters if k not in known]:
        if room > 0:
            room -= 1
            continue
        del counters[k]
        problems.append(f"{k!r} refused: a task keeps at most {COUNTERS_MAX} counters")
    if counters:
        append(spool, counters)
    if problems:
        kept = f"kept {', '.join(map(repr, counters))}; " if counters else ""
        raise ReportError(kept + "; ".join(problems))
    return counters


def append(spool: str, counters: dict) -> None:
    line = json.dumps({"t": round(time.time(), 3), "c": counters}, separators=(",", ":")) + "\n"
    fd = os.open(spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def fold(lines) -> dict:
    """The latest value of every counter in spool lines, under the same rules as ``report``."""
    out: dict = {}
    for line in lines:
        try:
            items = json.loads(line)["c"].items()
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        for k, v in items:
            if key_problem(k) is None and (k in out or len(out) < COUNTERS_MAX):
                out[k] = clean_value(v)
    return out


def read(spool: str) -> dict:
    """The latest value of every counter in a spool ({} if none)."""
    try:
        with open(spool, encoding="utf-8", errors="replace") as f:
            return fold(f)
    except OSError:
        return {}
