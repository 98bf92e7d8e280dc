"""Passes over the batch system's answer (job name -> JobInfo: 300,000 jobs at 1,000,000
tasks), made once a round and shared by observe's steps."""

from __future__ import annotations

from batchman.core.observed import QUEUED, RUNNING


def unlisted(jobs: dict | None) -> list[str]:
    """The jobs the answer ``jobs`` lists as neither queued nor running (finished, unknown to it),
    in its order: one pass over it for observe's _markers_after and _finished, not one each."""
    listed = (QUEUED, RUNNING)
    return [n for n, i in jobs.items() if i.state not in listed] if jobs else []


def not_listed(ask: dict[str, str], jobs: dict | None, listed_not: list[str] | None = None) -> list[str]:
    """The asked jobs ``jobs`` (the answer) does not list as queued or running: those it
    lists otherwise, then those it does not name. From the answer's side, in comprehensions.
    ``listed_not``: unlisted(jobs), if made already."""
    if jobs is None:
        return list(ask)
    listed_not = unlisted(jobs) if listed_not is None else listed_not
    return [n for n in listed_not if n in ask] + sorted(ask.keys() - jobs.keys())
