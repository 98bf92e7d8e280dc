"""The status file's data: tasks, daemons, unknown jobs. No I/O here.

Typed ``msgspec`` structs: decoding 100,000 tasks into them is about four times faster
than stdlib ``json`` into dicts and validates the schema in the same pass (see
shared/notes/status-file-speed.md), which is what lets one daemon iteration stay under
a second at that size. The history of transitions is not kept here but in an
append-only journal beside the file (``batchman.store``), so the hot file stays small.
"""

from __future__ import annotations

import re
from typing import Any, Literal, NamedTuple

import msgspec

from batchman.core import states as S
from batchman.core.taskindex import TaskIndex

# The status file's schema version, written by this batchman. 2 (issue 18): the file may have a
# change log beside it (status.json.log) and per: segment tasks (key RUN.JOB.SEG). A batchman that
# reads only 1 knows neither: it would miss the log's changes or take a run's segment tasks for
# one task, so it refuses a file of 2 (saying the version) instead. A file of 1 is read as before
# and written as 2.
SCHEMA = 2
READS = (1, 2)

# A job definition name: letters, digits, '_' and '-' (it becomes part of batch job names).
JOB_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


# A state as a type: decoding gives every task the one string object of its state (as these
# constants are), not a copy per task, and a state no batchman knows makes the file unreadable.
State = Literal[S.ALL]
StateOrNone = Literal[S.ALL + ("",)]      # a state a task was in (killed_in, an attempt's), or ""


class _Empty(dict):
    """The empty dict that every task's dict fields (counters, meta, ...) share when they have
    nothing: a task decoded without them allocates nothing for them (five dicts a task, ~0.3 GB
    at 1,000,000 tasks). Being shared, it refuses changes in place; assign a new dict instead
    (which ``Task.__setattr__`` records). An empty dict assigned to a task becomes this one, so
    the file omits it as it always did (``omit_defaults`` compares a default by identity)."""
    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a task's empty dict is shared by all tasks: assign a new dict instead")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> "_Empty":
        return self

    def __deepcopy__(self, memo: dict) -> "_Empty":
        return self

    def __reduce__(self) -> tuple:
        return _empty, ()


EMPTY: dict = _Empty()


def _empty() -> dict:
    return EMPTY


def frozen(d: dict | None) -> dict:
    """A copy of ``d`` to give a new task or attempt, or the shared ``EMPTY`` when it is empty."""
    return dict(d) if d else EMPTY


class Segment(msgspec.Struct, array_like=True, gc=False):
    """One raw data file of a run: its path on tape (the stub) and whether it is on disk."""
    path: str
    staged: bool = False


class Intent(msgspec.Struct, omit_defaults=True, gc=False):
    """Slow actions a daemon decided on and has not yet confirmed as done.

    Recorded under the lock before the daemon runs them outside it; cleared when their
    results are recorded. A daemon that finds an intent of a dead daemon redoes it
    (every action is idempotent; a submission first looks for the job by its name).
    """
    actions: list[str]          # stage, release, cancel_stage, submit, cancel
    owner: str                  # daemon id: host:pid
    at: float


class Attempt(msgspec.Struct, omit_defaults=True, gc=False):
    """A finished earlier attempt, kept when a task is restarted."""
    n: int
    job_id: str = ""
    state: StateOrNone = ""
    exit_code: int | None = None
    failure: str = ""
    reason: str = ""
    submitted_at: float | None = None
    finished_at: float | None = None
    failure_class: str = ""       # retry class (batchman.retry): out-of-memory, timeout, node-fail, ...
    node: str = ""                # where it ran
    resources: dict[str, Any] = EMPTY   # what it ran with: memory_mb, time_limit, cpus, queue, exclude
    retry: str = ""               # what the retry policy made of it ("out-of-memory: retry 1 of 2, ...")


# Tasks changed in place since their store last wrote them (id -> task). Setting any field of a
# Task puts it here, so the store writes what changed without comparing a million tasks. Its
# dicts and tuples are only ever replaced (the empty ones are shared, see ``EMPTY``); a change
# inside a segment (``segment.staged = ...``) is not seen: call ``touch(task)``. The tests check
# every write against the file.
CHANGED: dict[int, "Task"] = {}


def touch(task: "Task") -> None:
    """Mark a task changed (for a change made inside one of its segments)."""
    CHANGED[id(task)] = task


# Runs someone watches (core/triggers.Scan: the merge gates it keeps) -> how many times a field of
# one of their tasks was set in place since. Setting a field counts it here too (a run not
# watched costs a look-up), so a keeper of what a run's tasks say knows when to look again
# without reading them all each round. A task replaced by another object is not counted: the
# keeper of a list learns that from the list (store/replays.py). Runs are only added.
WATCHED: dict[int, int] = {}


def changed_in_place(task: "Task") -> None:
    """Count a change of ``task`` made without its ``__setattr__`` (a field set directly)."""
    n = WATCHED.get(task.run)
    if n is not None:
        WATCHED[task.run] = n + 1


# A Task's fields that hold a dict (shared EMPTY when empty) or a tuple (() when empty).
_DICTS = frozenset({"counters", "used", "resources", "retries", "meta"})
_TUPLES = frozenset({"past", "inputs", "outputs"})


class Task(msgspec.Struct, omit_defaults=True, gc=False):
    """One (run, job definition) pair, or (run, segment, job) for a ``per: segment`` job, and
    everything the daemon knows about it."""
    run: int
    job: str = "analysis"
    seg: int | None = None        # per: segment jobs: the run's raw file (segment number) this task analyses
    state: State = S.NEW
    since: float = 0.0            # when it entered ``state``
    reason: str = ""              # why it entered ``state``, for people
    segments: list[Segment] = []
    attempt: int = 0              # attempts submitted so far (the current one included)
    job_name: str = ""            # batch job name of the current attempt
    job_id: str = ""
    native_state: str = ""        # the batch system's own word and reason
    exit_code: int | None = None
    failure: str = ""             # class of the failure: exit-nonzero, timeout, vanished, ...
    killed_in: StateOrNone = ""   # the state it was in when killed
    error: str = ""               # what a person must look at
    warning: str = ""             # not an error yet (e.g. staging for very long)
    request: str = ""             # kill | restart | purge | skip, queued by a person
    held: bool = False            # a person holds it: no new start until released
    note: str = ""                # a person's note (the reason given with skip)
    intent: Intent | None = None
    counters: dict[str, Any] = EMPTY
    priority: int = 0
    auto_restarts: int = 0
    analysed: int | None = None   # segments the job says it analysed
    added_at: float = 0.0
    requested_at: float | None = None   # staging requested
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    past: tuple[Attempt, ...] = ()
    failure_class: str = ""       # retry class of the current attempt's failure (batchman.retry)
    node: str = ""                # node the current attempt ran on
    used: dict[str, Any] = EMPTY  # resources the current attempt was submitted with
    resources: dict[str, Any] = EMPTY   # overrides for the next attempts, set by retries (memory_mb, time_limit, exclude)
    retries: dict[str, int] = EMPTY   # automatic retries so far, by failure class
    meta: dict[str, str] = EMPTY  # run list columns (dataset, quality, ...)
    inputs: tuple[str, ...] = ()  # files from the job it runs after (its outputs)
    outputs: tuple[str, ...] = ()  # declared outputs found when it completed
    array_name: str = ""          # the job array this attempt went in (issue 14): its SLURM job name
    array_index: int | None = None   # this attempt's index in that array (its job id is <array id>_<index>)

    @property
    def key(self) -> str:
        # task_key() written out: called millions of times an iteration, a call costs more than the key
        if self.seg is None:
            return f"{self.run}.{self.job}"
        return f"{self.run}.{self.job}.{self.seg}"

    @property
    def run_key(self) -> str:
        """The (run, job) this task belongs to: its key, or its run's for a segment task."""
        return f"{self.run}.{self.job}"

    def __setattr__(self, name: str, value: Any) -> None:
        CHANGED[id(self)] = self
        if WATCHED:                     # (changed_in_place written out: every field set passes here)
            n = WATCHED.get(self.run)
            if n is not None:
                WATCHED[self.run] = n + 1
        if name in _DICTS:
            value = value or EMPTY
        elif name in _TUPLES:
            value = tuple(value)
        msgspec.Struct.__setattr__(self, name, value)


def awaits_daemon(t: Task) -> bool:
    """Is ``t`` work for a daemon: active, and not held where a hold stops it (such a task waits
    for a person: decide.has_work; the page's tally counts them so, page.tally.Progress.held)?"""
    return t.state in S.ACTIVE and not (t.held and t.state in S.HELD_WAITS)


def update(task: Task, fields: dict[str, Any]) -> None:
    """``setattr(task, name, value)`` for each of ``fields``, recorded in CHANGED once instead of
    once a field (a decision sets ~7 fields of each of 10,000 tasks a round at 1,000,000 tasks)."""
    CHANGED[id(task)] = task
    changed_in_place(task)
    put = msgspec.Struct.__setattr__
    for name, value in fields.items():
        put(task, name, (value or EMPTY) if name in _DICTS else tuple(value) if name in _TUPLES else value)


class Daemon(msgspec.Struct, omit_defaults=True):
    id: str                       # host:pid
    host: str
    pid: int
    started: float
    heartbeat: float
    mode: str = "loop"
    iterations: int = 0


class UnknownJob(msgspec.Struct, omit_defaults=True):
    """A job under our name pattern that no task of this file accounts for."""
    name: str
    job_id: str
    state: str
    seen: float
    array_name: str = ""          # an element of one of our job arrays (listed under this name)
    array_index: int | None = None


class IterationLog(msgspec.Struct, omit_defaults=True):
    """What the last daemon iteration did, for people and for admins."""
    at: float = 0.0
    seconds: float = 0.0
    commands: list[str] = []      # "squeue 0.012s" ...
    errors: list[str] = []
    changes: int = 0
    queried: bool = False         # the batch system was asked this round (min_query_interval, back-off)
    calls_hour: int = 0           # batch commands in the last hour (for admins)


class Status(msgspec.Struct, omit_defaults=True, dict=True):
    schema: int = 0               # stamped SCHEMA by the store on write; a file without it is refused
    generation: int = 0
    store_id: str = ""
    experiment: str = ""
    created: float = 0.0
    tasks: list[Task] = []
    daemons: list[Daemon] = []
    unknown: list[UnknownJob] = []
    last_iteration: IterationLog | None = None
    batch_unreachable_since: float | None = None
    batch_next_try: float | None = None     # back-off: when the batch system is asked again
    batch_last_error: str = ""
    batch_last_error_at: float | None = None
    batch_calls: list[list[float]] = []     # [minute start, commands] for the last hour
    paused: bool = False          # drain: no new staging or submission by any daemon
    paused_by: str = ""
    staging_unreachable_since: float | None = None
    watched: list[int] = []       # runs given to `batchman watch` (jobs with watch: listed)
    purged_total: int = 0         # tasks removed on purpose since the file was created (shrink guard)
    params_problem: str = ""      # the daemon's batchman.yaml does not validate: the first problem (it keeps its old settings)
    params_problem_since: float | None = None
    last_round: float | None = None   # when a daemon process that has since ended did its last round (a oneshot)

    def index(self) -> TaskIndex:
        """Task key -> task (a mapping as a dict of key strings, core/taskindex.py), kept with the
        status (the store keeps it current as it replays changes; tasks appended to the same
        list are added; any other change rebuilds it)."""
        cached = self.__dict__.get("_index")
        tasks = self.tasks
        if cached is not None and cached[0] is tasks:
            idx = cached[1]
            if len(idx) == len(tasks):
                return idx
            if len(idx) < len(tasks) and all(idx.of(t) is None for t in tasks[len(idx):]) \
                    and len({t.key for t in tasks[len(idx):]}) == len(tasks) - len(idx):
                idx.add(tasks[len(idx):])
                return idx
        idx = TaskIndex(tasks)
        self.__dict__["_index"] = (tasks, idx)
        return idx

    def known_index(self) -> TaskIndex | None:
        """The index by key when it is made and current; None when ``index()`` would make it."""
        cached = self.__dict__.get("_index")
        if cached is not None and cached[0] is self.tasks and len(cached[1]) == len(self.tasks):
            return cached[1]
        return None

    def set_index(self, idx: TaskIndex) -> None:
        """Give the status an index known to match its tasks (the store's, after a replay)."""
        self.__dict__["_index"] = (self.tasks, idx)


def task_key(run: int, job: str, seg: int | None = None) -> str:
    """``2120.reco``, or ``2120.reco.17`` for segment 17 of a ``per: segment`` job (a job name
    starts with a letter and has no dot, so the three parts read back unambiguously)."""
    return f"{run}.{job}" if seg is None else f"{run}.{job}.{seg}"


_KEY_RE = re.compile(r"^(\d+)\.([A-Za-z][A-Za-z0-9_-]*)(?:\.(\d+))?$")


def parse_key(key: str) -> tuple[int, str, int | None] | None:
    """(run, job, segment or None) from a task key, or None if it is not one."""
    m = _KEY_RE.match(key)
    if not m:
        return None
    return int(m.group(1)), m.group(2), (None if m.group(3) is None else int(m.group(3)))


def job_name(store_id: str, task: Task, attempt: int) -> str:
    """The batch job name: identifies the status file, the task (its key) and the attempt."""
    return f"bm.{store_id}.{task.key}.{attempt}"


_JOB_NAME_RE = re.compile(r"^bm\.([0-9a-z]+)\.(\d+)\.([A-Za-z][A-Za-z0-9_-]*)(?:\.(\d+))?\.(\d+)$")


class JobName(NamedTuple):
    store_id: str
    run: int
    job: str
    attempt: int
    seg: int | None = None

    @property
    def key(self) -> str:
        return task_key(self.run, self.job, self.seg)


def parse_job_name(name: str) -> JobName | None:
    """(store id, run, job, attempt, segment) from a batch job name, or None if not ours.
    ``bm.<store>.<run>.<job>.<attempt>``, or ``bm.<store>.<run>.<job>.<segment>.<attempt>``."""
    m = _JOB_NAME_RE.match(name)
    if not m:
        return None
    seg = m.group(4)
    return JobName(m.group(1), int(m.group(2)), m.group(3), int(m.group(5)), None if seg is None else int(seg))


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Status)


def encode(status: Status) -> bytes:
    return _encoder.encode(status)


def decode(data: bytes) -> Status:
    """Decode a status file; raises msgspec.DecodeError / ValidationError when malformed."""
    st = _decoder.decode(data)
    if st.schema == 0:
        raise msgspec.ValidationError("it lacks the schema version")
    if st.schema not in READS:
        raise msgspec.ValidationError(f"schema version {st.schema} is not supported (this batchman reads "
                                      f"{' and '.join(map(str, READS))}: a newer batchman wrote it; use that one)")
    return st


def to_builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)
