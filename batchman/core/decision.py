"""The vocabulary of the decisions: the slow actions, the policy (parameters the decisions
depend on), the observations, the shared budget, and the :class:`Decision` itself, with the
constructors several decisions share. Pure, like ``decide``."""

from __future__ import annotations

from dataclasses import dataclass, field

from batchman.core import retry as R
from batchman.core import states as S
from batchman.core.model import EMPTY, Task
from batchman.core.observed import JobInfo, StagingView

# Slow actions the daemon runs outside the lock.
STAGE = "stage"                # request the task's missing segments
RELEASE = "release"            # release the task's segments
CANCEL_STAGE = "cancel_stage"  # cancel outstanding staging requests
SUBMIT = "submit"              # submit the current attempt (looking it up by name first if resumed)
CANCEL = "cancel"              # cancel the batch job
REMOVE = "remove"              # drop the task from the file (purge), after the others


@dataclass(frozen=True)
class Policy:
    """The parameters the decisions depend on (a plain copy of some of Params)."""
    staging_limit: int = 100
    max_jobs: int = 200
    verify_queue: bool = True
    awol_grace: float = 300.0
    max_staging_time: float = 86400.0
    submit_grace: float = 300.0
    release_failed_files: bool = False
    auto_restart_failed: bool = False
    max_auto_restarts: int = 2
    require_stats: bool = False
    recancel_after: float = 120.0
    max_submit_per_iteration: int = 0     # throttles (0: no limit)
    max_stage_per_iteration: int = 0
    max_kill_per_iteration: int = 0
    array_size: int = 1                   # most tasks per job array (1: no arrays; set once the daemon knows)
    job_limits: dict = field(default_factory=dict)   # job name -> most of its tasks in the batch system
    retry_rules: dict = field(default_factory=dict)  # failure class -> retry.Rule ({}: the defaults)
    limits: R.Limits = field(default_factory=R.Limits)   # what a retry may ask for

    @classmethod
    def from_params(cls, p) -> "Policy":
        v = p.values
        return cls(staging_limit=v["staging.limit"], max_jobs=v["batch.max_jobs"],
                   verify_queue=v["staging.verify_queue"], awol_grace=v["staging.awol_grace"],
                   max_staging_time=v["staging.max_staging_time"], submit_grace=v["daemon.submit_grace"],
                   release_failed_files=v["policies.release_failed_files"],
                   auto_restart_failed=v["policies.auto_restart_failed"],
                   max_auto_restarts=v["policies.max_auto_restarts"],
                   require_stats=v["policies.require_stats"],
                   max_submit_per_iteration=v["batch.max_submit_per_iteration"],
                   max_stage_per_iteration=v["staging.max_requests_per_iteration"],
                   max_kill_per_iteration=v["batch.max_kill_per_iteration"],
                   job_limits=p.jobs.limits() if hasattr(p, "jobs") else {},
                   retry_rules=R.parse_rules(v["policies.retry"], v["policies.auto_restart_failed"],
                                             v["policies.max_auto_restarts"])[0],
                   limits=R.Limits(max_time=v["batch.max_time_limit"], base_memory_mb=v["batch.memory_mb"],
                                   base_time=v["batch.time_limit"]))

    def rules(self) -> dict:
        return self.retry_rules or R.default_rules(self.auto_restart_failed, self.max_auto_restarts)


@dataclass
class Marker:
    """What the job script left in its attempt directory."""
    started: float | None = None
    exit_code: int | None = None     # present only when the job's command returned
    node: str = ""


@dataclass
class Observations:
    """Everything the daemon saw this iteration (outside the lock)."""
    now: float
    me: str = ""                                   # this daemon's id
    live_daemons: frozenset[str] = frozenset()     # ids of daemons with a fresh heartbeat (me included)
    segments: dict[str, tuple[list[str], str]] = field(default_factory=dict)  # task key -> (paths, searched)
    staging: StagingView | None = None             # None: not asked, or could not be asked
    jobs: dict[str, JobInfo] | None = None         # by job name; None: batch system not asked/unreachable
    markers: dict[str, Marker] = field(default_factory=dict)    # by job name
    analysed: dict[str, int] = field(default_factory=dict)      # by job name: segments analysed
    stats_seen: frozenset[str] = frozenset()       # job names whose stats file exists
    paused: bool = False                           # no new starts (drain)
    cache_full: bool = False                       # cache filesystem above staging.max_cache_fraction
    gates: dict = field(default_factory=dict)      # task key -> jobs.Gate (after: / needs_staging: false)
    outputs: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # job name -> (found, problems)
    hints: dict[str, str] = field(default_factory=dict)   # job name -> failure class its stderr suggests
    no_submit: bool = False                        # the batch system is being backed off: no submissions
    taken: float | None = None                     # when the status these observations are about was read
    unsubmittable_jobs: dict[str, str] = field(default_factory=dict)   # job -> why its command cannot run: not staged
    staging_moved: set[int] | None = None          # ids of the staging tasks that may change (core/stagingwait); None: any


@dataclass
class Budget:
    """Shared limits, consumed as tasks are decided in priority order."""
    staged_segments: int = 0     # segments held by tasks in HOLDS_CACHE
    jobs: int = 0                # tasks in IN_BATCH
    submits: int = 0             # consumed this iteration (throttles)
    sbatches: int = 0            # submit commands they take (fewer than submits with job arrays)
    grouped: dict[str, int] = field(default_factory=dict)   # job -> tasks that may share arrays this iteration
    stages: int = 0
    kills: int = 0
    per_job: dict[str, int] = field(default_factory=dict)   # tasks in IN_BATCH, by job name
    tokens: dict[str, int] = field(default_factory=dict)    # kind -> what its token bucket allows now
    held: set[str] = field(default_factory=set)             # kinds that held ready work back

    def spent(self, kind: str, used: int, cap: int, commands: int | None = None) -> bool:
        """Is ``kind`` ("submit", "stage", "kill") used up for now, by its per-iteration cap or
        its token bucket? A kind used up while work is ready is remembered in ``held``, so the
        daemon wakes when a token is back (core/pacing.next_wakeup). ``commands``: what the
        bucket counts when it is not ``used`` (job arrays: one token per sbatch, not per task;
        negative when this task joins an array and needs no command of its own)."""
        tokens = used if commands is None else commands
        out = (bool(cap) and used >= cap) or (kind in self.tokens and tokens >= self.tokens[kind])
        if out:
            self.held.add(kind)
        return out

    @classmethod
    def of(cls, tasks: list[Task]) -> "Budget":
        """The room ``tasks`` take now (one pass: it runs over every live task each iteration)."""
        staged, per_job = 0, {}
        holds, in_batch = S.HOLDS_CACHE, S.IN_BATCH
        for t in tasks:
            st = t.state
            if st in in_batch:
                per_job[t.job] = per_job.get(t.job, 0) + 1
            if st in holds:
                staged += len(t.segments)
        return cls(staged_segments=staged, jobs=sum(per_job.values()), per_job=per_job)


@dataclass
class Decision:
    """The next step of one task: its state, why, the slow actions, the fields to set, and
    what ``apply`` does beyond setting fields."""
    state: str
    reason: str = ""
    actions: list[str] = field(default_factory=list)
    updates: dict = field(default_factory=dict)      # task fields to set (names of Task fields only)
    archive: bool = False          # the finished attempt goes to the task's history (``past``)
    retry_note: str = ""           # why it is retried, kept with that archived attempt
    mark_staged: bool = False      # record which segments the staging view shows on disk
    new_job_name: bool = False     # name the attempt's job (bm.<store>.<run>.<job>.<attempt>), no id yet
    resumed: bool = False          # redoing a dead daemon's intent: cleared when nothing is left to do

    def __bool__(self) -> bool:
        return True


def release_if(flag: bool) -> list[str]:
    return [RELEASE] if flag else []


def reset_for_new(task: Task) -> dict:
    """Fields to clear when a task starts over (with ``archive``: its finished attempt goes to ``past``)."""
    return {"job_name": "", "job_id": "", "native_state": "", "exit_code": None, "failure": "",
            "error": "", "warning": "", "analysed": None, "requested_at": None, "submitted_at": None,
            "started_at": None, "finished_at": None, "failure_class": "", "node": "", "used": EMPTY}


def start_over(reason: str, task: Task, **updates) -> Decision:
    """Back to new with the attempt's fields cleared and the finished attempt archived."""
    return Decision(S.NEW, reason, [], {**reset_for_new(task), **updates}, archive=True)


def waiting_for_command(problem: str) -> str:
    """The reason of a task not staged because its job's command cannot run."""
    return f"not staged: {problem}; staging starts once it is fixed"


def blocked_by_command(tasks: list[Task], unsubmittable: dict[str, str]) -> frozenset[str]:
    """Keys of the tasks that wait only for a job command to be fixed (a person's move), once
    they say so."""
    if not unsubmittable:
        return frozenset()
    return frozenset(t.key for t in tasks if t.state == S.UNSTAGED and t.job in unsubmittable
                     and t.reason == waiting_for_command(unsubmittable[t.job]) and not t.request and t.intent is None)
