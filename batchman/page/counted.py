"""What the page counts a task as, besides its state, run and job: the end it counts in the
rate of ends, its run time, the problem group it is listed in; and the figures made of them.
Pure (batchman.page.tally keeps them per position; summary and html show them)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from batchman.core import states as S
from batchman.page.bags import RunSet

RATE_STATES = S.TERMINAL - {S.SKIPPED}


@dataclass
class Progress:
    total: int = 0
    counts: Counter = field(default_factory=Counter)
    done: int = 0                 # completed or skipped
    finished: int = 0             # in any terminal state
    pending: int = 0              # the daemon still has work for these
    held: int = 0                 # of them, held where a hold stops them (new, unstaged, staged): no end estimated
    problems: int = 0
    last_hour: int = 0            # tasks that ended in the last hour (any terminal state)
    rate_per_hour: float = 0.0    # ends per hour, over the last hours
    eta_s: float | None = None    # seconds until the pending tasks are done at that rate
    failure_rate: float | None = None   # problems among the tasks ended in the last hours


@dataclass
class ProblemGroup:
    state: str
    cause: str        # failure class, or the kind of failure
    reason: str       # the shared reason, as a person reads it
    runs: RunSet     # len() and ranges(); its runs in .tasks
    retry: str = ""   # what the retry policy made of it (from the last attempt)

    @property
    def ranges(self) -> str:
        return self.runs.ranges()


def cause(t) -> str:
    return t.failure_class or t.failure or t.state


def reason(t) -> str:
    """The reason a problem group shares: the first line of the task's error or reason, its
    file paths left out (a job's missing output names its own file: "exit 0 but
    /data/out/reco2120_17.txt is missing" -- one group for every such task, not one each; the
    task's own row keeps the whole text)."""
    text = (t.error or t.reason or "").strip()
    return _PATH.sub("…", text.splitlines()[0])[:160] if text else "no reason recorded"


_PATH = re.compile(r"(?<![^\s(\[='\"])/[^\s;,)\]'\"]+")     # an absolute path, where a word starts


def problem_key(t) -> tuple[str, str, str]:
    return t.state, cause(t), reason(t)


def dataset_of(meta) -> str:
    """The dataset a task's ``meta`` names ('' for none), as the page counts it."""
    return meta.get("dataset", "") if meta else ""


def end_of(t) -> float | None:
    """When a task in an end state ended, as the rate of ends counts it (None: not counted)."""
    return ((t.finished_at or t.since) if t.state in RATE_STATES else None) or None


def run_time_of(t) -> tuple[float, int] | None:
    """(run time, run) of a completed task that has both times, else None."""
    if t.state == S.COMPLETED and t.started_at and t.finished_at and t.finished_at >= t.started_at:
        return t.finished_at - t.started_at, t.run
    return None
