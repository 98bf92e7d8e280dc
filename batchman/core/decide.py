"""The state machine's decisions, as pure functions.

``decide_task(task, obs, policy, budget)`` looks at one task, what the batch and staging
systems were observed to say, and the parameters, and returns the next state, the reason
and the slow actions to take (which the daemon runs outside the lock). ``plan`` calls it
for every task in the right order so that the staging limit and the job cap are shared
fairly. Nothing here reads the clock, a file or a process: ``now`` and every observation
come in as arguments, so every edge can be tested from a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from batchman.core import retry as R
from batchman.core import states as S
from batchman.core.observed import FINISHED, QUEUED as JQUEUED, RUNNING as JRUNNING, JobInfo, StagingView
from batchman.core.model import Task

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


@dataclass
class Budget:
    """Shared limits, consumed as tasks are decided in priority order."""
    staged_segments: int = 0     # segments held by tasks in HOLDS_CACHE
    jobs: int = 0                # tasks in IN_BATCH
    submits: int = 0             # consumed this iteration (throttles)
    stages: int = 0
    kills: int = 0
    per_job: dict[str, int] = field(default_factory=dict)   # tasks in IN_BATCH, by job name

    @classmethod
    def of(cls, tasks: list[Task]) -> "Budget":
        b = cls()
        for t in tasks:
            if t.state in S.HOLDS_CACHE:
                b.staged_segments += len(t.segments)
            if t.state in S.IN_BATCH:
                b.jobs += 1
                b.per_job[t.job] = b.per_job.get(t.job, 0) + 1
        return b


@dataclass
class Decision:
    state: str
    reason: str = ""
    actions: list[str] = field(default_factory=list)
    updates: dict = field(default_factory=dict)      # other task fields to set

    def __bool__(self) -> bool:
        return True


def _owner_alive(task: Task, obs: Observations) -> bool:
    """Another daemon's intent that is still being carried out: leave the task alone."""
    return task.intent is not None and task.intent.owner in obs.live_daemons and task.intent.owner != obs.me


def _judge_finished(task: Task, exit_code: int | None, info: JobInfo | None, obs: Observations,
                    pol: Policy) -> Decision:
    """A job that left the queue: completed, incomplete or failed, and what to release."""
    analysed = obs.analysed.get(task.job_name)
    n = len(task.segments)
    upd = {"exit_code": exit_code, "finished_at": obs.now, "analysed": analysed}
    if info is not None and info.node:
        upd["native_state"] = info.native_state
    node = (info.node if info is not None and info.node else "") or \
        (obs.markers[task.job_name].node if task.job_name in obs.markers else "")
    if node:
        upd["node"] = node
    if exit_code == 0 and not (info is not None and info.failure and info.failure != "exit-nonzero"):
        outs = obs.outputs.get(task.job_name)
        if outs is not None:
            upd["outputs"] = outs[0]
            if outs[1]:
                why = "exit 0 but " + "; ".join(outs[1][:3]) + (f" (+{len(outs[1]) - 3} more)" if len(outs[1]) > 3 else "")
                return Decision(S.FAILED, why, _release_if(pol.release_failed_files),
                                {**upd, "failure": "missing-outputs", "error": why, "failure_class": R.MISSING_OUTPUTS})
        if analysed is not None and analysed < n:
            return Decision(S.INCOMPLETE, f"exit 0 but analysed {analysed} of {n} segments",
                            _release_if(pol.release_failed_files), {**upd, "failure": "incomplete",
                                                                   "failure_class": R.INCOMPLETE})
        if analysed is None and pol.require_stats and n:
            return Decision(S.INCOMPLETE, "exit 0 but no stats file says how many segments were analysed",
                            _release_if(pol.release_failed_files), {**upd, "failure": "incomplete",
                                                                   "failure_class": R.INCOMPLETE})
        return Decision(S.COMPLETED, "exit 0" + (f", {analysed} of {n} segments analysed" if analysed is not None else ""),
                        [RELEASE], {**upd, "failure": "", "failure_class": ""})
    failure = (info.failure if info is not None and info.failure else "exit-nonzero")
    if exit_code is None and failure == "exit-nonzero":
        failure = "lost"
    why = info.reason if info is not None and info.reason else ""
    if exit_code is not None:
        why = f"exit {exit_code}" + (f" ({why})" if why else "")
    hint = obs.hints.get(task.job_name, "")
    cls = R.classify(S.FAILED, failure, exit_code, hint)
    if hint and cls == hint and R._BY_FAILURE.get(failure) != cls:
        why = (why or failure) + f"; its stderr says {hint}"
    return Decision(S.FAILED, why or failure, _release_if(pol.release_failed_files),
                    {**upd, "failure": failure, "error": why or failure, "failure_class": cls})


def _release_if(flag: bool) -> list[str]:
    return [RELEASE] if flag else []


def _reset_for_new(task: Task) -> dict:
    """Fields to clear when a task starts over (its finished attempt goes to ``past``)."""
    return {"job_name": "", "job_id": "", "native_state": "", "exit_code": None, "failure": "",
            "error": "", "warning": "", "analysed": None, "requested_at": None, "submitted_at": None,
            "started_at": None, "finished_at": None, "failure_class": "", "node": "", "used": {},
            "_archive": True}


def _throttled(count: int, limit: int) -> bool:
    return bool(limit) and count >= limit


def decide_request(task: Task, obs: Observations, pol: Policy, budget: Budget | None = None) -> Decision | None:
    """Kill / restart / purge / skip queued by a person; None when there is none to act on now."""
    req = task.request
    if not req or _owner_alive(task, obs):
        return None
    st = task.state
    if budget is not None and st in S.IN_BATCH and st != S.ABORTING and req in ("kill", "restart", "purge", "skip") \
            and task.job_id and _throttled(budget.kills, pol.max_kill_per_iteration):
        return None          # kill throttle: its turn comes next iteration
    d = _decide_request(task, obs, pol)
    if d is not None and budget is not None and CANCEL in d.actions:
        budget.kills += 1
    return d


def _decide_request(task: Task, obs: Observations, pol: Policy) -> Decision | None:
    req = task.request
    st = task.state
    if req == "skip":
        if st in S.IN_BATCH:
            return None if st == S.ABORTING else _kill(task, obs, keep_request=True)
        acts = [CANCEL_STAGE, RELEASE] if task.segments and st not in (S.NEW, S.UNSTAGED, S.COMPLETED, S.SKIPPED) else []
        why = "skipped by hand" + (f": {task.note}" if task.note else "")
        return Decision(S.SKIPPED, why, acts, {"request": ""})
    if req == "purge":
        if st in S.ACTIVE and st not in (S.NEW, S.UNSTAGED):
            # Kill first; the purge stays queued and removes it once aborted.
            if st == S.ABORTING:
                return None
            return _kill(task, obs, keep_request=True)
        acts = [CANCEL_STAGE, RELEASE] if task.segments and (st in S.HOLDS_CACHE or st in (S.FAILED, S.INCOMPLETE, S.ERROR, S.ABORTED)) else []
        return Decision(st, "purged on request", acts + [REMOVE])
    if req == "kill":
        if not S.request_applies(S.KILL, st):
            return Decision(st, f"kill ignored: already {st}", [], {"request": ""})
        if st == S.ABORTING:
            return None
        return _kill(task, obs)
    if req == "restart":
        if st in S.TERMINAL:
            return Decision(S.NEW, "restarted on request", [], {**_reset_for_new(task), "request": "",
                                                                 "auto_restarts": 0})
        if st in (S.NEW,):
            return Decision(S.NEW, "restart: already new", [], {"request": ""})
        if st in (S.UNSTAGED, S.STAGING, S.STAGED):
            return Decision(S.NEW, "restarted on request", [], {**_reset_for_new(task), "request": "", "auto_restarts": 0})
        if st == S.ABORTING:
            return None
        return _kill(task, obs, keep_request=True)
    return Decision(st, f"unknown request {req!r} ignored", [], {"request": ""})


def _kill(task: Task, obs: Observations, keep_request: bool = False) -> Decision:
    st = task.state
    upd = {"killed_in": st}
    if not keep_request:
        upd["request"] = ""
    if st in S.IN_BATCH and (task.job_id or st == S.SUBMITTING):
        # SUBMITTING without an id: the submit may have happened; cancel by the id we learn,
        # or, if none, the ABORTING step looks the job up by name.
        return Decision(S.ABORTING, "kill requested", [CANCEL] if task.job_id else [], {**upd, "cancel_at": obs.now})
    acts = [CANCEL_STAGE, RELEASE] if st in (S.STAGING, S.STAGED) or st in S.IN_BATCH else []
    if keep_request and task.request == "restart":
        return Decision(S.ABORTED, f"killed in {st} for a restart", acts, upd)
    if keep_request and task.request == "skip":
        return Decision(S.SKIPPED, "skipped by hand" + (f": {task.note}" if task.note else ""), acts,
                        {**upd, "request": ""})
    return Decision(S.ABORTED, f"killed in {st} on request", acts, upd)


def decide_task(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    """The next step of one task, or None to leave it as it is this iteration."""
    if _owner_alive(task, obs):
        return None
    if task.intent is not None:
        # Actions recorded by a daemon that is gone (or by this one in an iteration that
        # failed half-way): carry them out again. All are idempotent but submitting, which
        # first looks for the job by its name and adopts it if it exists.
        acts = [a for a in task.intent.actions if a != SUBMIT]
        if SUBMIT in task.intent.actions:
            d = _follow_job(task, obs, pol)
            if d is None:
                return None     # cannot tell whether the job exists: wait
            d.actions = acts + d.actions
            d.updates["_resumed"] = True
            return d
        return Decision(task.state, "", acts, {"_resumed": True})
    d = decide_request(task, obs, pol, budget)
    if d is not None:
        return d
    st = task.state
    key = task.key
    if task.held and st in (S.NEW, S.UNSTAGED, S.STAGED):
        return None     # held by a person: no new start (in-flight staging is still followed)

    if st == S.NEW:
        if obs.paused:
            return None
        gate = obs.gates.get(key)
        extra = {}
        if gate is not None:
            if gate.wait:
                return Decision(S.NEW, gate.wait) if gate.wait != task.reason else None
            extra = {"inputs": list(gate.inputs)}
            if not gate.staging:
                return Decision(S.STAGED, "no staging needed" + (f"; {len(gate.inputs)} input file(s)" if gate.inputs else ""),
                                [], {"segments": [], **extra})
        found = obs.segments.get(key)
        if found is None:
            return None
        paths, searched = found
        if not paths:
            return Decision(S.ERROR, f"no raw data segment found: searched {searched}", [],
                            {"error": f"no segment found ({searched})"})
        from batchman.core.model import Segment
        return Decision(S.UNSTAGED, f"{len(paths)} segment(s) found", [],
                        {"segments": [Segment(p) for p in paths], **extra})

    if st == S.UNSTAGED:
        view = obs.staging
        if view is None or obs.paused:
            return None
        n = len(task.segments)
        if all(s.path in view.present for s in task.segments):
            # Already on disk: goes ahead whatever the limit (nothing to request).
            budget.staged_segments += n
            return Decision(S.STAGED, "all segments already on disk", [], {"_mark_staged": True})
        if budget.staged_segments and budget.staged_segments + n > pol.staging_limit:
            return None   # waiting for room under the staging limit
        if obs.cache_full:
            return None   # the cache filesystem is too full: no new requests (AlCap's spacelim)
        if _throttled(budget.stages, pol.max_stage_per_iteration):
            return None   # staging throttle: next iteration
        budget.stages += 1
        budget.staged_segments += n
        return Decision(S.STAGING, f"requested {sum(1 for s in task.segments if s.path not in view.present)} segment(s)",
                        [STAGE], {"requested_at": obs.now, "_mark_staged": True})

    if st == S.STAGING:
        view = obs.staging
        if view is None:
            return None
        failed = [s.path for s in task.segments if s.path in view.failed]
        if failed:
            return Decision(S.ERROR, f"staging failed for {failed[0]}: {view.failed[failed[0]]}", [CANCEL_STAGE, RELEASE],
                            {"error": f"staging failed: {failed[0]}: {view.failed[failed[0]]}", "_mark_staged": True})
        if all(s.path in view.present for s in task.segments):
            return Decision(S.STAGED, "all segments on disk", [], {"_mark_staged": True})
        waited = obs.now - (task.requested_at or obs.now)
        missing = [s.path for s in task.segments if s.path not in view.present and s.path not in view.pending]
        if missing and pol.verify_queue and waited > pol.awol_grace:
            return Decision(S.ERROR, f"AWOL: {missing[0]} is neither on disk nor in the staging queue "
                            f"{waited:.0f} s after the request", [CANCEL_STAGE, RELEASE],
                            {"error": f"AWOL file {missing[0]}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""),
                             "_mark_staged": True})
        warn = ""
        if not pol.verify_queue and waited > pol.max_staging_time:
            warn = f"staging for {waited / 3600:.1f} h (more than {pol.max_staging_time:g} s): check the staging system"
        if warn != task.warning:
            return Decision(S.STAGING, "", [], {"warning": warn, "_mark_staged": True})
        return Decision(S.STAGING, "", [], {"_mark_staged": True}) if _staged_changed(task, view) else None

    if st == S.STAGED:
        view = obs.staging
        if view is not None:
            gone = [s.path for s in task.segments if s.path not in view.present and s.path not in view.pending]
            if gone:
                return Decision(S.STAGING, f"{gone[0]} vanished from the cache before the job ran: requested again",
                                [STAGE], {"requested_at": obs.now, "_mark_staged": True})
        if obs.paused or obs.no_submit or budget.jobs >= pol.max_jobs or \
                _throttled(budget.submits, pol.max_submit_per_iteration):
            return None
        if _throttled(budget.per_job.get(task.job, 0), pol.job_limits.get(task.job, 0)):
            return None   # the job's own max_running
        budget.jobs += 1
        budget.per_job[task.job] = budget.per_job.get(task.job, 0) + 1
        budget.submits += 1
        return Decision(S.SUBMITTING, f"submitting attempt {task.attempt + 1}", [SUBMIT],
                        {"attempt": task.attempt + 1, "_new_job_name": True})

    if st in (S.SUBMITTING, S.SUBMITTED, S.QUEUED, S.RUNNING):
        return _follow_job(task, obs, pol)

    if st == S.ABORTING:
        return _follow_abort(task, obs, pol)

    if st in (S.FAILED, S.INCOMPLETE, S.ERROR):
        r = _retry(task, pol)
        if r is not None:
            n = task.auto_restarts + (1 if r.counted else 0)
            why = f"automatic restart {n} of {pol.max_auto_restarts}" if r.counted else "automatic restart"
            return Decision(S.NEW, f"{why}: {r.reason}", [],
                            {**_reset_for_new(task), "auto_restarts": n, "retries": r.retries,
                             "resources": r.resources, "_retry_note": r.reason})
    return None


def failure_class(task: Task) -> str:
    """The retry class of a task's finished attempt ('' when it did not fail)."""
    if task.state not in (S.FAILED, S.INCOMPLETE, S.ERROR):
        return ""
    return task.failure_class or R.classify(task.state, task.failure, task.exit_code)


def _retry(task: Task, pol: Policy):
    """What the retry policy makes of a failed / incomplete / refused attempt: retry.Retry or None."""
    cls = failure_class(task)
    if not cls or (task.state == S.ERROR and cls != R.SUBMIT_REJECTED) or not task.attempt:
        return None
    r, _why = R.plan_retry(cls, retries=task.retries, counted_so_far=task.auto_restarts,
                           cap=pol.max_auto_restarts, used=task.used, overrides=task.resources,
                           node=task.node, rules=pol.rules(), limits=pol.limits)
    return r


def retry_verdict(task: Task, pol: Policy) -> str:
    """Why a failed task is (not) retried, for people."""
    cls = failure_class(task)
    if not cls:
        return ""
    r, why = R.plan_retry(cls, retries=task.retries, counted_so_far=task.auto_restarts,
                          cap=pol.max_auto_restarts, used=task.used, overrides=task.resources,
                          node=task.node, rules=pol.rules(), limits=pol.limits)
    return r.reason if r is not None else why


def _staged_changed(task: Task, view: StagingView) -> bool:
    return any(s.staged != (s.path in view.present) for s in task.segments)


def _follow_job(task: Task, obs: Observations, pol: Policy) -> Decision | None:
    st = task.state
    marker = obs.markers.get(task.job_name)
    info = obs.jobs.get(task.job_name) if obs.jobs is not None else None
    if marker is not None and marker.exit_code is not None:
        d = _judge_finished(task, marker.exit_code, info if info is not None and info.state == FINISHED else None, obs, pol)
        d.updates.setdefault("started_at", marker.started or task.started_at)
        if not task.job_id and info is not None and info.job_id:
            d.updates["job_id"] = info.job_id
        return d
    if info is None:
        if st == S.SUBMITTING and obs.jobs is not None:
            return None
        return None       # batch system not asked or unreachable: change nothing
    if info.job_id and info.job_id != task.job_id and info.state != "absent":
        adopt = {"job_id": info.job_id}
    else:
        adopt = {}
    if info.state == JQUEUED:
        if st == S.QUEUED and task.native_state == info.reason and not adopt:
            return None
        return Decision(S.QUEUED, "seen in the queue" if st != S.QUEUED else "",
                        [], {**adopt, "native_state": info.reason or info.native_state})
    if info.state == JRUNNING:
        if st == S.RUNNING and not adopt:
            return None
        started = (marker.started if marker and marker.started else obs.now)
        return Decision(S.RUNNING, "seen running" + (f" on {info.node}" if info.node else ""), [],
                        {**adopt, "native_state": info.native_state, "started_at": task.started_at or started})
    if info.state == FINISHED:
        d = _judge_finished(task, info.exit_code, info, obs, pol)
        d.updates.update(adopt)
        return d
    # ABSENT: the batch system does not know the job.
    if st == S.SUBMITTING:
        # No job of that name anywhere and no marker: submit (again).
        return Decision(S.SUBMITTING, "no job of this name found: submitting", [SUBMIT], {})
    since = task.submitted_at or task.since
    if obs.now - since < pol.submit_grace:
        return None
    if (marker is not None and marker.started) or st == S.RUNNING:
        why = "job vanished while running: no exit status (killed, or its node died)"
    else:
        why = f"job vanished: not in the batch system {obs.now - since:.0f} s after submission and never started"
    hint = obs.hints.get(task.job_name, "")
    return Decision(S.FAILED, why, _release_if(pol.release_failed_files),
                    {"failure": "vanished", "error": why, "finished_at": obs.now,
                     "failure_class": R.classify(S.FAILED, "vanished", None, hint)})


def _follow_abort(task: Task, obs: Observations, pol: Policy) -> Decision | None:
    info = obs.jobs.get(task.job_name) if obs.jobs is not None and task.job_name else None
    marker = obs.markers.get(task.job_name)
    gone = (marker is not None and marker.exit_code is not None) or not task.job_name or \
           (info is not None and info.state in (FINISHED, "absent"))
    if not gone:
        if info is None:
            return None
        if not task.job_id and info.job_id:
            return Decision(S.ABORTING, "found the job to kill", [CANCEL], {"job_id": info.job_id, "cancel_at": obs.now})
        if obs.now - (task.finished_at or task.since) > pol.recancel_after:
            return Decision(S.ABORTING, "still alive after the kill: cancelling again", [CANCEL],
                            {"finished_at": obs.now})
        return None
    if task.request == "restart":
        return Decision(S.NEW, f"killed in {task.killed_in} and restarted", [CANCEL_STAGE, RELEASE],
                        {**_reset_for_new(task), "request": "", "auto_restarts": 0})
    if task.request == "skip":
        return Decision(S.SKIPPED, "skipped by hand" + (f": {task.note}" if task.note else ""),
                        [CANCEL_STAGE, RELEASE], {"request": ""})
    return Decision(S.ABORTED, f"killed in {task.killed_in}", [CANCEL_STAGE, RELEASE], {})


# Order in which tasks compete for the staging limit and the job cap.
def _rank(task: Task) -> tuple:
    return (-task.priority, task.run, task.job)


def plan(tasks: list[Task], obs: Observations, pol: Policy,
         only: Callable[[Task], bool] | None = None) -> list[tuple[Task, Decision]]:
    """Decide every task; tasks that free room go first, those that take room in rank order.

    ``only``: decide just the tasks it accepts (a daemon for one dataset); the limits still
    count every task of the file."""
    budget = Budget.of(tasks)
    out: list[tuple[Task, Decision]] = []
    waiting: list[Task] = []
    for t in tasks:
        if only is not None and not only(t):
            continue
        if t.state in (S.UNSTAGED, S.STAGED) and not t.request and t.intent is None and not t.held:
            waiting.append(t)
            continue
        d = decide_task(t, obs, pol, budget)
        if d is None:
            continue
        _account(budget, t, d)
        out.append((t, d))
    waiting.sort(key=_rank)
    for t in waiting:
        d = decide_task(t, obs, pol, budget)
        if d is not None:
            out.append((t, d))
    return out


def _account(budget: Budget, task: Task, d: Decision) -> None:
    """Free the room a task gives up by leaving the states that hold it."""
    if task.state in S.HOLDS_CACHE and d.state not in S.HOLDS_CACHE:
        budget.staged_segments -= len(task.segments)
    elif task.state not in S.HOLDS_CACHE and d.state in S.HOLDS_CACHE:
        budget.staged_segments += len(task.segments)
    if task.state in S.IN_BATCH and d.state not in S.IN_BATCH:
        budget.jobs -= 1
        budget.per_job[task.job] = budget.per_job.get(task.job, 0) - 1


def has_work(tasks: list[Task], pol: Policy, stuck: frozenset[str] = frozenset(),
             only: Callable[[Task], bool] | None = None) -> bool:
    """Is anything left for a daemon to do (active tasks, queued requests, unfinished intents,
    failed tasks due for an automatic restart)? ``stuck``: keys of tasks waiting for what only a
    person can change (an upstream job that failed); ``only``: the tasks this daemon advances."""
    for t in tasks:
        if only is not None and not only(t):
            continue
        if t.key in stuck and not t.request:
            continue
        if t.request or t.intent is not None:
            return True
        if t.state in S.ACTIVE and not (t.held and t.state in (S.NEW, S.UNSTAGED, S.STAGED)):
            return True   # (a held task waits for a person, not for the daemon)
        if t.state in (S.FAILED, S.INCOMPLETE, S.ERROR) and _retry(t, pol) is not None:
            return True
    return False


def apply(task: Task, d: Decision, now: float, me: str, store_id: str,
          view: StagingView | None) -> tuple[str, str] | None:
    """Carry a decision into the task (in place). Returns (old, new) state if it changed.

    The slow actions are recorded as an intent owned by ``me``; the daemon runs them
    after the write and clears the intent when their results are recorded.
    """
    from batchman.core.model import Attempt, job_name
    old = task.state
    if not S.allowed(old, d.state):
        raise ValueError(f"task {task.key}: {old} -> {d.state} is not an allowed transition")
    upd = dict(d.updates)
    note = upd.pop("_retry_note", "")
    if upd.pop("_archive", False) and task.attempt and task.job_name:
        task.past.append(Attempt(n=task.attempt, job_id=task.job_id, state=old, exit_code=task.exit_code,
                                 failure=task.failure, reason=task.reason,
                                 submitted_at=task.submitted_at, finished_at=task.finished_at,
                                 failure_class=failure_class(task), node=task.node, resources=dict(task.used),
                                 retry=note))
    if upd.pop("_mark_staged", False) and view is not None:
        for s in task.segments:
            s.staged = s.path in view.present
    if upd.pop("_new_job_name", False):
        task.job_name = job_name(store_id, task, upd.get("attempt", task.attempt))
        task.job_id = ""
    resumed = upd.pop("_resumed", False)
    upd.pop("cancel_at", None)
    for k, v in upd.items():
        setattr(task, k, v)
    if d.actions:
        from batchman.core.model import Intent
        task.intent = Intent(actions=list(d.actions), owner=me, at=now)
        if RELEASE in d.actions:
            for s in task.segments:   # released: no longer ours on the cache disk
                s.staged = False
    elif resumed:
        task.intent = None
    if d.state != old:
        task.state = d.state
        task.since = now
        task.reason = d.reason
        return old, d.state
    if d.reason:
        task.reason = d.reason
    return None
