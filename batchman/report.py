"""Counters a job reports about itself (ARP's "Report" column), with no network needed.

Inside a job, ``batchman report events=1200 rate=35.2`` appends one JSON line to the
attempt's spool file (``$BATCHMAN_REPORT_SPOOL``): an O_APPEND write of a short line is
atomic, so no lock is needed and the job never waits for the daemon. The daemon (and
``batchman list``/``show`` for running tasks) folds the lines into the task's counters.
"""

from __future__ import annotations

import json
import os
import re
import time

ENV = "BATCHMAN_REPORT_SPOOL"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class ReportError(ValueError):
    pass


def parse_pairs(pairs: list[str]) -> dict:
    """['events=10', 'status=ok'] -> {'events': 10, 'status': 'ok'} (numbers stay numbers)."""
    out: dict = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise ReportError(f"{p!r} is not KEY=VALUE (example: batchman report events=1200)")
        if not _KEY.match(key):
            raise ReportError(f"{key!r} is not a counter name (letters, digits, _ . -; starting with a letter)")
        out[key] = _number(value)
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


def append(spool: str, counters: dict) -> None:
    line = json.dumps({"t": round(time.time(), 3), "c": counters}, separators=(",", ":")) + "\n"
    fd = os.open(spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read(spool: str) -> dict:
    """The latest value of every counter in a spool ({} if none)."""
    out: dict = {}
    try:
        with open(spool, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    out.update(json.loads(line)["c"])
                except (ValueError, KeyError, TypeError):
                    continue
    except OSError:
        pass
    return out
