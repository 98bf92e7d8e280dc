"""The state machine's decisions, as pure functions.

``decide_task(task, obs, policy, budget)`` looks at one task, what the batch and staging
systems were observed to say, and the parameters, and returns the next state, the reason
and the slow actions to take (which the daemon runs outside the lock). ``core/plan.py`` calls
it for every task in the right order so that the staging limit and the job cap are shared
fairly. Nothing here reads the clock, a file or a process: ``now`` and every observation
come in as arguments, so every edge can be tested from a table.
"""

from __future__ import annotations

from typing import Callable

from batchman.core import retry as R
from batchman.core import states as S
from batchman.core.decision import (  # noqa: F401 - the decisions' vocabulary, used as decide.X
    CANCEL, CANCEL_STAGE, RELEASE, REMOVE, STAGE, SUBMIT, Budget, Decision, Marker, Observations, Policy,
    blocked_by_command, start_over, waiting_for_command,
)
from batchman.core.follow import follow_abort, follow_job
from batchman.core.model import Task, awaits_daemon
from batchman.core.observed import StagingView
from batchman.core.transition import Transition, change_state, check


def _owner_alive(task: Task, obs: Observations) -> bool:
    """Another daemon's intent that is still being carried out, or one recorded since we read the
    status we observed (our view of its job and our list of live daemons predate it; issue 15):
    leave the task alone, for the next round."""
    i = task.intent
    if i is None or i.owner == obs.me:
        return False
    return i.owner in obs.live_daemons or (obs.taken is not None and i.at >= obs.taken)

def _throttled(count: int, limit: int) -> bool:
    return bool(limit) and count >= limit


def decide_request(task: Task, obs: Observations, pol: Policy, budget: Budget | None = None) -> Decision | None:
    """Kill / restart / purge / skip queued by a person; None when there is none to act on now."""
    req = task.request
    if not req or _owner_alive(task, obs):
        return None
    st = task.state
    if budget is not None and st in S.IN_BATCH and st != S.ABORTING and req in ("kill", "restart", "purge", "skip") \
            and task.job_id and budget.spent("kill", budget.kills, pol.max_kill_per_iteration):
        return None          # kill throttle (bucket or per-iteration cap): its turn comes later
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
        if st in (S.NEW,):
            return Decision(S.NEW, "restart: already new", [], {"request": ""})
        if st in S.TERMINAL or st in (S.UNSTAGED, S.STAGING, S.STAGED):
            return start_over("restarted on request", task, request="", auto_restarts=0)
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
        return Decision(S.ABORTING, "kill requested", [CANCEL] if task.job_id else [], upd)
    acts = [CANCEL_STAGE, RELEASE] if st in (S.STAGING, S.STAGED) or st in S.IN_BATCH else []
    if keep_request and task.request == "restart":
        return Decision(S.ABORTED, f"killed in {st} for a restart", acts, upd)
    if keep_request and task.request == "skip":
        return Decision(S.SKIPPED, "skipped by hand" + (f": {task.note}" if task.note else ""), acts,
                        {**upd, "request": ""})
    return Decision(S.ABORTED, f"killed in {st} on request", acts, upd)


def decide_task(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    """The next step of one task, or None to leave it as it is this iteration."""
    if task.intent is not None or task.request:      # (most tasks have neither: no calls for them)
        if _owner_alive(task, obs):
            return None
        if task.intent is not None:
            return _resume(task, obs, pol)
        d = decide_request(task, obs, pol, budget)
        if d is not None:
            return d
    st = task.state
    if task.held and st in (S.NEW, S.UNSTAGED, S.STAGED):
        return None     # held by a person: no new start (in-flight staging is still followed)
    step = _STEPS.get(st)
    return step(task, obs, pol, budget) if step is not None else None


def _resume(task: Task, obs: Observations, pol: Policy) -> Decision | None:
    """Actions recorded by a daemon that is gone (or by this one in an iteration that failed
    half-way): carry them out again. All are idempotent but submitting, which first looks for
    the job by its name and adopts it if it exists."""
    acts = [a for a in task.intent.actions if a != SUBMIT]
    if SUBMIT in task.intent.actions:
        d = follow_job(task, obs, pol)
        if d is None:
            return None     # cannot tell whether the job exists: wait
        d.actions = acts + d.actions
        d.resumed = True
        return d
    return Decision(task.state, "", acts, resumed=True)


def _decide_new(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    """Look for the run's segments (or, for an after: job, wait for its upstream)."""
    if obs.paused:
        return None
    gate = obs.gates.get(task.key)
    extra = {}
    if gate is not None:
        if gate.wait:
            return Decision(S.NEW, gate.wait) if gate.wait != task.reason else None
        extra = {"inputs": tuple(gate.inputs)}
        if not gate.staging:
            return Decision(S.STAGED, "no staging needed" + (f"; {len(gate.inputs)} input file(s)" if gate.inputs else ""),
                            [], {"segments": [], **extra})
    found = obs.segments.get(task.key)
    if found is None:
        return None
    paths, searched = found
    if not paths:
        return Decision(S.ERROR, f"no raw data segment found: searched {searched}", [],
                        {"error": f"no segment found ({searched})"})
    if gate is not None and gate.split:
        return None     # a per: segment job's run task: the daemon splits it into segment tasks (Engine._create)
    from batchman.core.model import Segment
    return Decision(S.UNSTAGED, f"{len(paths)} segment(s) found", [],
                    {"segments": [Segment(p) for p in paths], **extra})


def _decide_unstaged(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    """Request the segments when there is room under the staging limit."""
    view = obs.staging
    if view is None or obs.paused:
        return None
    n = len(task.segments)
    if all(s.path in view.present for s in task.segments):
        # Already on disk: goes ahead whatever the limit (nothing to request).
        budget.staged_segments += n
        return Decision(S.STAGED, "all segments already on disk", [], {}, mark_staged=True)
    blocked = obs.unsubmittable_jobs.get(task.job)
    if blocked:
        why = waiting_for_command(blocked)    # no data staged for a job that cannot be submitted; said once
        return Decision(S.UNSTAGED, why) if task.reason != why else None
    if budget.staged_segments and budget.staged_segments + n > pol.staging_limit:
        return None   # waiting for room under the staging limit
    if obs.cache_full:
        return None   # the cache filesystem is too full: no new requests (AlCap's spacelim)
    if budget.spent("stage", budget.stages, pol.max_stage_per_iteration):
        return None   # staging throttle (bucket or per-iteration cap): later
    budget.stages += 1
    budget.staged_segments += n
    return Decision(S.STAGING, f"requested {sum(1 for s in task.segments if s.path not in view.present)} segment(s)",
                    [STAGE], {"requested_at": obs.now}, mark_staged=True)


def _decide_staging(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    """Wait for the segments; a failed or lost (AWOL) request is an error."""
    view = obs.staging
    if view is None:
        return None
    failed, on_disk, missing, moved = _staging_look(task, view)
    if failed is not None:
        return Decision(S.ERROR, f"staging failed for {failed}: {view.failed[failed]}", [CANCEL_STAGE, RELEASE],
                        {"error": f"staging failed: {failed}: {view.failed[failed]}"}, mark_staged=True)
    if on_disk:
        return Decision(S.STAGED, "all segments on disk", [], {}, mark_staged=True)
    waited = obs.now - (task.requested_at or obs.now)
    if missing and pol.verify_queue and waited > pol.awol_grace:
        return Decision(S.ERROR, f"AWOL: {missing[0]} is neither on disk nor in the staging queue "
                        f"{waited:.0f} s after the request", [CANCEL_STAGE, RELEASE],
                        {"error": f"AWOL file {missing[0]}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else "")},
                        mark_staged=True)
    warn = staging_warning(task, pol, obs.now)
    if warn != task.warning:
        return Decision(S.STAGING, "", [], {"warning": warn}, mark_staged=True)
    return Decision(S.STAGING, "", [], {}, mark_staged=True) if moved else None


def staging_warning(task: Task, pol: Policy, now: float) -> str:
    """The warning a staging task's wait calls for ('' for none)."""
    if not pol.verify_queue and now - (task.requested_at or now) > pol.max_staging_time:
        # (no running figure in it: a text that changed every 0.1 h rewrote every long-staging
        # task, 50,000 at 1,000,000 tasks, each time; the time in state is shown beside it)
        return f"staging for more than {pol.max_staging_time:g} s: check the staging system"
    return ""


def _staging_look(task: Task, view: StagingView) -> tuple[str | None, bool, list[str], bool]:
    """What the view says of a staging task's segments, in one pass (it runs for every staging
    task each iteration: 50,000 at 1,000,000 tasks): the first failed one (None if none), whether
    all are on disk, those neither on disk nor pending, and whether any segment's ``staged``
    differs from the view."""
    failed, on_disk, missing, moved = None, True, [], False
    present, pending, lost = view.present, view.pending, view.failed
    for s in task.segments:
        p = s.path
        if failed is None and p in lost:
            failed = p
        if p in present:
            moved = moved or not s.staged
        else:
            on_disk, moved = False, moved or s.staged
            if p not in pending:
                missing.append(p)
    return failed, on_disk, missing, moved


def _decide_staged(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    """Submit when the job caps allow; a segment gone from the cache is requested again."""
    view = obs.staging
    if view is not None:
        gone = [s.path for s in task.segments if s.path not in view.present and s.path not in view.pending]
        if gone:
            return Decision(S.STAGING, f"{gone[0]} vanished from the cache before the job ran: requested again",
                            [STAGE], {"requested_at": obs.now}, mark_staged=True)
    if obs.paused or obs.no_submit or budget.jobs >= pol.max_jobs:
        return None
    # With job arrays (pol.array_size > 1) the tasks of one job definition decided in one
    # iteration share an sbatch per array_size of them (daemon/record.record_arrays groups them
    # the same way): the token bucket counts sbatch commands, the per-iteration cap tasks. A
    # task whose retry changed its resources goes alone, with its own sbatch.
    joins = pol.array_size > 1 and not task.resources and budget.grouped.get(task.job, 0) % pol.array_size != 0
    if budget.spent("submit", budget.submits, pol.max_submit_per_iteration, budget.sbatches if not joins else -1):
        return None   # submission throttle (bucket or per-iteration cap): later
    if _throttled(budget.per_job.get(task.job, 0), pol.job_limits.get(task.job, 0)):
        return None   # the job's own max_running
    budget.jobs += 1
    budget.per_job[task.job] = budget.per_job.get(task.job, 0) + 1
    budget.submits += 1
    budget.sbatches += 0 if joins else 1
    if pol.array_size > 1 and not task.resources:
        budget.grouped[task.job] = budget.grouped.get(task.job, 0) + 1
    return Decision(S.SUBMITTING, f"submitting attempt {task.attempt + 1}", [SUBMIT],
                    {"attempt": task.attempt + 1}, new_job_name=True)


def _decide_unsuccessful(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    """An automatic restart, when the retry rules allow one."""
    r = _retry(task, pol)
    if r is None:
        return None
    n = task.auto_restarts + (1 if r.counted else 0)
    why = f"automatic restart {n} of {pol.max_auto_restarts}" if r.counted else "automatic restart"
    d = start_over(f"{why}: {r.reason}", task, auto_restarts=n, retries=r.retries, resources=r.resources)
    d.retry_note = r.reason
    return d


def _following(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    return follow_job(task, obs, pol)


def _aborting(task: Task, obs: Observations, pol: Policy, budget: Budget) -> Decision | None:
    return follow_abort(task, obs, pol)


# What each state's task does next (states not here wait for a person).
_STEPS = {
    S.NEW: _decide_new, S.UNSTAGED: _decide_unstaged, S.STAGING: _decide_staging, S.STAGED: _decide_staged,
    S.SUBMITTING: _following, S.SUBMITTED: _following, S.QUEUED: _following, S.RUNNING: _following,
    S.ABORTING: _aborting,
    S.FAILED: _decide_unsuccessful, S.INCOMPLETE: _decide_unsuccessful, S.ERROR: _decide_unsuccessful,
}


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


def has_work(tasks: list[Task], pol: Policy, stuck: frozenset[str] | Callable[[], frozenset[str]] = frozenset(),
             only: Callable[[Task], bool] | None = None) -> bool:
    """Is anything left for a daemon to do (active tasks, queued requests, unfinished intents,
    failed tasks due for an automatic restart)? ``stuck``: keys of tasks waiting for what only a
    person can change (new ones whose upstream job failed, unstaged ones whose command does not
    run), or a function that finds them, called only if such a task is met before any work (at
    the end of every round, over every task: at 1,000,000 tasks the gates of every NEW task
    cost ~0.6 s, and the first task with work is mostly met long before); ``only``: the tasks
    this daemon advances."""
    for t in tasks:
        if only is not None and not only(t):
            continue
        if stuck and not t.request and t.state in _MAY_BE_STUCK:
            if callable(stuck):
                stuck = stuck()
            if t.key in stuck:
                continue
        if t.request or t.intent is not None:
            return True
        if t.state in S.ACTIVE and awaits_daemon(t):
            return True   # (a held task waits for a person, not for the daemon; the call only for active ones)
        if t.state in (S.FAILED, S.INCOMPLETE, S.ERROR) and _retry(t, pol) is not None:
            return True
    return False


_MAY_BE_STUCK = (S.NEW, S.UNSTAGED)      # (gates are of NEW tasks; a broken command holds UNSTAGED ones)


def apply(task: Task, d: Decision, now: float, me: str, store_id: str,
          view: StagingView | None) -> Transition | None:
    """Carry a decision into the task (in place). Returns the state change, if any, for the journal.

    The slow actions are recorded as an intent owned by ``me``; the daemon runs them
    after the write and clears the intent when their results are recorded.
    """
    from batchman.core.model import Attempt, Intent, frozen, job_name, touch, update
    check(task, d.state)          # before anything is touched
    if d.archive and task.attempt and task.job_name:
        task.past = (*task.past, Attempt(n=task.attempt, job_id=task.job_id, state=task.state, exit_code=task.exit_code,
                                 failure=task.failure, reason=task.reason,
                                 submitted_at=task.submitted_at, finished_at=task.finished_at,
                                 failure_class=failure_class(task), node=task.node, resources=frozen(task.used),
                                 retry=d.retry_note),)
    if d.mark_staged and view is not None:
        touch(task)
        for s in task.segments:
            s.staged = s.path in view.present
    if d.new_job_name:
        task.job_name = job_name(store_id, task, d.updates.get("attempt", task.attempt))
        task.job_id = ""
    if d.updates:
        update(task, d.updates)
    if d.actions:
        task.intent = Intent(actions=list(d.actions), owner=me, at=now)
        if RELEASE in d.actions:
            touch(task)
            for s in task.segments:   # released: no longer ours on the cache disk
                s.staged = False
    elif d.resumed:
        task.intent = None
    tr = change_state(task, d.state, d.reason, now, me)
    if tr is None and d.reason:
        task.reason = d.reason
    return tr
