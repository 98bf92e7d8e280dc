"""What the daemon observed: the batch system's word on a job and the staging system's on files.

Backends produce these; the pure decisions read them. They live in the core so that the core
needs nothing from the backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Our normalised job states, whatever the batch system calls them.
QUEUED = "queued"        # known to the batch system, not yet running (pending, held, ...)
RUNNING = "running"      # running (or completing / suspended: still alive)
FINISHED = "finished"    # left the queue; exit_code / reason say how
ABSENT = "absent"        # the batch system does not know this job (any more)


@dataclass(slots=True)
class JobInfo:
    """What a batch system says about one job, normalised."""
    name: str
    job_id: str
    state: str                     # QUEUED | RUNNING | FINISHED | ABSENT
    native_state: str = ""         # the batch system's own word (PENDING, qw, PEND, ...)
    exit_code: int | None = None   # for FINISHED
    reason: str = ""               # pending reason / failure reason, for people
    node: str = ""
    failure: str = ""              # for FINISHED and not ok: timeout, out-of-memory, cancelled,
                                   # node-fail, preempted, boot-fail, exit-nonzero, lost, ...


@dataclass
class StagingView:
    """What a staging system says about the files we asked about."""
    present: set[str] = field(default_factory=set)   # on disk, usable
    pending: set[str] = field(default_factory=set)   # requested and in the staging queue
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason the system gave
