"""What one iteration hands from step to step: the slow actions decided under the lock
(:class:`Work`) and what it did, for the log and the printed report (:class:`IterationReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from batchman.core.model import Task


@dataclass
class Work:
    """The slow actions for one task, as decided under the lock."""
    key: str
    actions: list[str]
    run: int
    job: str
    attempt: int
    job_name: str
    job_id: str
    files: list[str]
    inputs: list[str] = field(default_factory=list)
    resources: dict = field(default_factory=dict)    # retry overrides: memory_mb, time_limit, exclude
    array_name: str = ""                             # submitted as element array_index of this array
    array_index: int | None = None
    fresh: bool = False                              # a new attempt's submission (may join an array)
    seg: int | None = None                           # per: segment jobs: the segment number

    @classmethod
    def of(cls, t: Task, actions: list[str]) -> "Work":
        return cls(t.key, list(actions), t.run, t.job, t.attempt, t.job_name, t.job_id,
                   [s.path for s in t.segments], inputs=list(t.inputs), resources=dict(t.resources),
                   array_name=t.array_name, array_index=t.array_index, seg=t.seg)


@dataclass
class IterationReport:
    transitions: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds_own: float = 0.0      # our own code: read, decide, write (not external commands)
    seconds_total: float = 0.0
    lock_max: float = 0.0
    work_left: bool = True
    commands: int = 0
    batch: str = "idle"            # the batch query this round: ok | down | waiting (interval/back-off) | idle
