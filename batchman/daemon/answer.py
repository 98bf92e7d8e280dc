"""Passes over the batch system's answer (job name -> JobInfo: 300,000 jobs at 1,000,000
tasks), made once a round and shared by observe's steps. Each job's state is looked at once
(:func:`said`); the rest is made in C over lists and the answer's own methods, or by a look at
each of the few names that matter (:func:`not_listed_in`): at that size a pass that touches
every job costs ~50-150 ms, memory-bound."""

from __future__ import annotations

from itertools import compress, filterfalse
from operator import attrgetter, not_

from batchman.core.observed import FINISHED, QUEUED, RUNNING

_STATE = attrgetter("state")
LISTED = (QUEUED, RUNNING)


def said(jobs: dict | None) -> tuple[list[str], list[str]]:
    """(:func:`unlisted`, the jobs the answer says finished), in its order, from one look at
    each job's state; the finished ones are among the unlisted (few), looked at again there
    instead of a second pass over every job's state (~25 ms at 270,000 jobs)."""
    if not jobs:
        return [], []
    states = list(map(_STATE, jobs.values()))
    unlisted = list(compress(jobs, map(not_, map(LISTED.__contains__, states))))
    return unlisted, list(compress(unlisted, map(FINISHED.__eq__, map(_STATE, map(jobs.__getitem__, unlisted)))))


def unlisted(jobs: dict | None) -> list[str]:
    """The jobs the answer ``jobs`` lists as neither queued nor running (finished, unknown to it),
    in its order: one pass over it for observe's _markers_after and _finished, not one each."""
    return said(jobs)[0]


def not_listed(ask: dict[str, str], jobs: dict | None, listed_not: list[str] | None = None) -> list[str]:
    """The asked jobs ``jobs`` (the answer) does not list as queued or running: those it
    lists otherwise, then those it does not name (sorted). ``listed_not``: unlisted(jobs), if
    made already."""
    if jobs is None:
        return list(ask)
    listed_not = unlisted(jobs) if listed_not is None else listed_not
    named = list(filter(ask.__contains__, listed_not))
    if answers_all(ask, jobs):       # (most rounds)
        return named
    return named + sorted(filterfalse(jobs.__contains__, ask))


def answers_all(ask: dict[str, str], jobs: dict) -> bool:
    """Does the answer ``jobs`` name every asked job? The backends answer each asked job, in the
    order asked (BatchBase.query, a dict made by going through the question): the two dicts'
    names side by side, compared in C, then say so in ~28 ms at 270,000 jobs, where a look-up of
    each asked name costs ~100 ms (a cache miss each, on this machine). Another answer (another
    order, names left out or added): a look-up of each."""
    return (len(jobs) == len(ask) and list(jobs) == list(ask)) or all(map(jobs.__contains__, ask))


def about(ask: dict[str, str], jobs: dict | None, listed_not: list[str]) -> int:
    """About how many jobs :func:`not_listed` names, without making the list (exactly when the
    answer names only asked jobs): what observe weighs a listing of the attempts against."""
    return len(ask) if jobs is None else len(listed_not) + max(0, len(ask) - len(jobs))


def not_listed_in(names, ask: dict[str, str], jobs: dict | None) -> list[str]:
    """:func:`not_listed` of the jobs in ``names`` (those with an attempt directory: 10,000 of
    the 300,000 asked in oneshot's benchmark), sorted, by a look at each of ``names``."""
    get = (jobs or {}).get
    return sorted(n for n in names if n in ask and (jobs is None or (i := get(n)) is None or i.state not in LISTED))
