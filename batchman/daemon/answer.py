"""Passes over the batch system's answer (job name -> JobInfo: 300,000 jobs at 1,000,000
tasks), made once a round and shared by observe's steps. Made in C (filter, compress, map over
the answer's own methods): a comprehension with a test per job took ~20-40 ms a pass there."""

from __future__ import annotations

from itertools import compress, filterfalse, repeat
from operator import attrgetter, not_

from batchman.core.observed import ABSENT, FINISHED, QUEUED, RUNNING, JobInfo

_STATE = attrgetter("state")
_NONE = JobInfo("", "", ABSENT)      # what a job the answer no longer holds says (not finished)


def unlisted(jobs: dict | None) -> list[str]:
    """The jobs the answer ``jobs`` lists as neither queued nor running (finished, unknown to it),
    in its order: one pass over it for observe's _markers_after and _finished, not one each."""
    if not jobs:
        return []
    return list(compress(jobs, map(not_, map((QUEUED, RUNNING).__contains__, map(_STATE, jobs.values())))))


def not_listed(ask: dict[str, str], jobs: dict | None, listed_not: list[str] | None = None) -> list[str]:
    """The asked jobs ``jobs`` (the answer) does not list as queued or running: those it
    lists otherwise, then those it does not name (sorted).
    ``listed_not``: unlisted(jobs), if made already."""
    if jobs is None:
        return list(ask)
    listed_not = unlisted(jobs) if listed_not is None else listed_not
    named = list(filter(ask.__contains__, listed_not))
    if all(map(jobs.__contains__, ask)):       # (every asked job answered: most rounds)
        return named
    return named + sorted(filterfalse(jobs.__contains__, ask))


def finished(jobs: dict, listed_not: list[str]) -> list[str]:
    """The jobs of ``listed_not`` (unlisted(jobs) of the answer before some were taken out of
    it) that the answer ``jobs`` says finished."""
    return list(compress(listed_not, map(FINISHED.__eq__, map(_STATE, map(jobs.get, listed_not, repeat(_NONE))))))
