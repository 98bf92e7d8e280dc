"""One daemon iteration's decisions over all tasks, under the shared limits (pure).

:func:`plan_budget` asks :func:`batchman.core.decide.decide_task` about every task: the ones
that free room first, then the ones that take room (a staging slot, a job slot, a token of the
pacing buckets) in rank order, each carried through every step that needs no outside event.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Callable

import msgspec

from batchman.core import states as S
from batchman.core.decide import Budget, Decision, Observations, Policy, apply, decide_task
from batchman.core.observed import ABSENT, QUEUED as JQUEUED, RUNNING as JRUNNING
from batchman.core.keeper import Keeper
from batchman.core.model import Task

# Finished for good: only a person's request (or an intent left to redo) moves them again.
SETTLED = frozenset({S.COMPLETED, S.ABORTED, S.SKIPPED})
_FOLLOWED = (S.QUEUED, S.RUNNING)
_UNSUCCESSFUL = (S.FAILED, S.INCOMPLETE, S.ERROR)    # retried or not by the retry rules alone
_QUIET = SETTLED | frozenset(_FOLLOWED + _UNSUCCESSFUL)   # left alone unless something is new


def live(tasks: list[Task]) -> list[Task]:
    """The tasks an iteration has to look at, in file order: all but the settled ones that carry
    no request and no intent. At a million tasks most are settled; the daemon makes this one
    pass per status it reads, and observes and decides (plan_budget) over what it returns, with
    the same result as over all tasks (tests/test_plan_live.py)."""
    return [t for t in tasks if t.state not in SETTLED or t.request or t.intent is not None]


def is_live(t: Task) -> bool:
    """Would :func:`live` keep ``t``?"""
    return t.state not in SETTLED or bool(t.request) or t.intent is not None


class Live:
    """:func:`live` of a status's tasks, kept between two surveys (daemon/survey.py) from the
    tasks the daemon decided and those another writer replaced: the live tasks in slots in the
    file's order (tasks appended to the file come after all; a slot left empty when its task is
    no longer live) and the slot of each by id, from which those decided that are no longer live
    are taken out. ~10,000 a round at 1,000,000 tasks instead of a pass over the 432,000 live
    tasks (~45 ms); a task another writer replaced takes its old one's slot (the list of live
    tasks made again around it took ~0.2 s). tests/test_plan_live.py compares."""

    def __init__(self, live: list[Task]):
        self.tasks, self._of, self._slots = live, None, None

    def still(self, changed: list[Task], added: list[Task]) -> list[Task]:
        """live() once ``changed`` (tasks of it) may have changed and the live tasks ``added``
        were appended to the file."""
        of, slots = self._by_id()
        for t in changed:
            if not is_live(t):
                i = of.pop(id(t), None)
                if i is not None:
                    slots[i] = None
        self._append(added)
        return self._made()

    def swapped(self, pairs, added: list[Task]) -> bool:
        """live() once each (old, new) of ``pairs`` put ``new`` in the place of ``old`` in the
        file and the live tasks ``added`` were appended (another writer's changes:
        store/replays.py); False, and nothing changed, when a task not live became live (where
        it goes among the live ones is not known here)."""
        of, slots = self._by_id()
        if any(id(o) not in of and is_live(n) for o, n in pairs):
            return False
        moved = False
        for o, n in pairs:
            i = of.get(id(o))
            if i is None or (o is n and is_live(n)):
                continue
            del of[id(o)]
            slots[i], moved = (n if is_live(n) else None), True
            if slots[i] is not None:
                of[id(n)] = i       # (in its old one's slot: its place in the file)
        self._append(added)
        if moved or added:
            self._made()
        return True

    def _append(self, added: list[Task]) -> None:
        of, slots = self._of, self._slots
        for t in added:
            if id(t) not in of:
                of[id(t)] = len(slots)
                slots.append(t)

    def _made(self) -> list[Task]:
        """The live tasks from the slots (a pass at C speed), which are made again without their
        empty ones once those are as many as the tasks."""
        self.tasks = list(filter(None, self._slots))
        if len(self._slots) > 2 * len(self.tasks) + 1024:
            self._of = self._slots = None
        return self.tasks

    def _by_id(self) -> tuple[dict[int, int], list]:
        if self._of is None:        # (made at the first round that needs it: a oneshot never does)
            self._slots = list(self.tasks)
            self._of = dict(zip(map(id, self._slots), range(len(self._slots))))
        return self._of, self._slots


def _changing(tasks: list[Task], obs: Observations, unretried: dict[int, Task], grace: float = 0.0):
    """The tasks decide_task may change, in order. It certainly leaves alone a settled task, an
    unsuccessful one in ``unretried``, and a queued or running one whose job nothing new is
    known about, none with a request or an intent: no marker of its end, and a queue either not
    asked about it or saying what the task records already (follow.as_before, written out here:
    a call per job costs more than its test; test_plan_live compares), and a staging task
    ``obs.staging_moved`` leaves out (core/stagingwait.py). Runs for every live task
    (432,000 at 1,000,000 tasks, 280,000 of them followed): kept lean."""
    ended = {n for n, m in obs.markers.items() if m is not None and m.exit_code is not None}   # (few)
    answer, moved, now = (obs.jobs or {}).get, obs.staging_moved, obs.now
    for t in tasks:
        st = t.state
        if st in _FOLLOWED:          # (most live tasks: asked first)
            if t.intent is None and not t.request and t.job_name not in ended:
                info = answer(t.job_name)
                if info is None:
                    continue
                if not info.job_id or info.job_id == t.job_id:
                    said = info.state
                    if said == JRUNNING:
                        if st == S.RUNNING:
                            continue
                    elif said == JQUEUED and st == S.QUEUED and t.native_state == info.reason:
                        continue
                    elif said == ABSENT and now - (t.submitted_at or t.since) < grace:
                        continue     # not seen yet, within the grace (follow_job: None)
        elif st in _QUIET and t.intent is None and not t.request and (st in SETTLED or unretried.get(id(t)) is t):
            continue
        elif st == S.STAGING and moved is not None and id(t) not in moved and t.intent is None and not t.request:
            continue
        yield t


class Room(Keeper):
    """What ``Budget.of(tasks)`` counts (segments held in the cache, jobs in the batch system by
    job name), kept from the tasks that change (core/keeper.py) instead of recounted over every
    live task each iteration (430,000 at 1,000,000 tasks). The daemon hands it what changed
    (its decisions, another writer's tasks) or counts afresh (a new Room): daemon/survey.py."""

    notes = True        # forget() takes back what was() kept

    def __init__(self, tasks: list[Task]):
        b = Budget.of(tasks)
        self.staged, self.per_job = b.staged_segments, b.per_job

    def budget(self) -> Budget:
        """A new Budget with the room taken now (as Budget.of the tasks)."""
        per_job = {j: n for j, n in self.per_job.items() if n}
        return Budget(staged_segments=self.staged, jobs=sum(per_job.values()), per_job=per_job)

    def was(self, t: Task) -> tuple[str | None, int]:
        return _room_of(t)

    def forget(self, before) -> None:
        per_job = self.per_job
        for _, (job, n) in before:
            self.staged -= n
            if job is not None:
                per_job[job] -= 1

    def keep(self, tasks) -> None:
        per_job = self.per_job
        for t in tasks:
            job, n = _room_of(t)
            self.staged += n
            if job is not None:
                per_job[job] = per_job.get(job, 0) + 1


def _room_of(t: Task) -> tuple[str | None, int]:
    """(its job name if it is in the batch system, the segments it holds in the cache)."""
    st = t.state
    return (t.job if st in S.IN_BATCH else None), (len(t.segments) if st in S.HOLDS_CACHE else 0)


# Order in which tasks compete for the staging limit and the job cap.
def _rank(task: Task) -> tuple:
    return (-task.priority, task.run, task.job)


_RUN, _JOB, _PRIORITY = attrgetter("run"), attrgetter("job"), attrgetter("priority")


def in_rank_order(tasks: list[Task]) -> None:
    """Sort ``tasks`` in place by :func:`_rank`, ties kept in their order: three stable sorts with
    keys made in C (by job, by run, then by priority, highest first) instead of a Python call
    per task (50,000 unstaged tasks wait for room at 1,000,000 tasks: ~30 ms a round less); a
    key of one field each, not a (run, job) tuple made for every task (~1/3 less again)."""
    tasks.sort(key=_JOB)
    tasks.sort(key=_RUN)
    tasks.sort(key=_PRIORITY, reverse=True)


def plan(tasks: list[Task], obs: Observations, pol: Policy,
         only: Callable[[Task], bool] | None = None) -> list[tuple[Task, Decision]]:
    return plan_budget(tasks, obs, pol, only)[0]


def plan_budget(tasks: list[Task], obs: Observations, pol: Policy,
                only: Callable[[Task], bool] | None = None, tokens: dict[str, int] | None = None,
                unretried: dict[int, Task] | None = None,
                room: Room | None = None) -> tuple[list[tuple[Task, Decision]], Budget]:
    """Decide every task; tasks that free room go first, those that take room in rank order.

    A task is carried through every step that needs no outside event in this one call: data
    found on disk -> unstaged -> staged -> submitting, or staging done -> staged -> submitting.
    Such a task yields several (task, decision) pairs in order, each decided on the task as the
    one before leaves it; only the last may carry slow actions (the intent is recorded as ever).

    ``only``: decide just the tasks it accepts (a daemon for one dataset); the limits still
    count every task of the file. ``tokens``: how many submissions, staging requests and kills
    the daemon's token buckets allow now (core/pacing; a kind not named is not limited). The
    budget returned says what was spent and which kinds held ready work back (``held``).

    ``unretried`` (id -> task, kept by the caller): failed, incomplete or error tasks without a
    request or an intent that the retry rules leave alone, found in an earlier call; they are
    not decided again, and those found now are added. The caller empties it whenever the tasks
    may have changed but by these decisions, or the policy changed (daemon/engine._survey).
    ``room``: what Budget.of(tasks) counts, kept by the caller (Room), instead of a count."""
    unretried = {} if unretried is None else unretried
    budget = Budget.of(tasks) if room is None else room.budget()
    budget.tokens = dict(tokens or {})
    out: list[tuple[Task, Decision]] = []
    waiting: list[Task] = []          # the tasks as decided so far (a copy when carried: of carried[id])
    carried: dict[int, Task] = {}
    for t in _changing(tasks, obs, unretried, pol.submit_grace):
        if only is not None and not only(t):
            continue
        if _waits_for_room(t):
            waiting.append(t)
            continue
        d = decide_task(t, obs, pol, budget)
        if d is None:
            if t.state in _UNSUCCESSFUL and t.intent is None and not t.request:
                unretried[id(t)] = t
            continue
        _account(budget, t, d)
        out.append((t, d))
        shadow = _carried(t, d, obs)
        if shadow is not None:
            waiting.append(shadow)
            carried[id(shadow)] = t
    in_rank_order(waiting)
    quiet, closed = _unstaged_quiet(obs), False
    for shadow in waiting:
        t = carried.get(id(shadow), shadow)
        if shadow.state == S.UNSTAGED and shadow.segments and quiet and (closed or (closed := _stage_closed(budget, pol))):
            continue      # no room for a request, and none of its files on disk: decide_task says None
        while True:
            d = decide_task(shadow, obs, pol, budget)
            if d is None:
                break
            out.append((t, d))
            shadow = _carried(shadow, d, obs)
            if shadow is None:
                break
    return out, budget


def _unstaged_quiet(obs: Observations) -> bool:
    """Can an unstaged task change only by a staging request? Not when the staging view shows
    files on disk (a task whose files all are goes ahead whatever the limit) or a job command
    cannot run (its tasks say so once): see decide._decide_unstaged."""
    return obs.staging is not None and not obs.staging.present and not obs.unsubmittable_jobs


def _stage_closed(budget: Budget, pol: Policy) -> bool:
    """No staging request is possible any more in this iteration: the per-iteration cap or the
    token bucket was found spent (``held``) and what is spent only grows. The remaining unstaged
    tasks waiting for room (50,000 at 1,000,000 tasks) are then not decided one by one."""
    if "stage" not in budget.held:
        return False
    cap, tokens = pol.max_stage_per_iteration, budget.tokens.get("stage")
    return (bool(cap) and budget.stages >= cap) or (tokens is not None and budget.stages >= tokens)


def _waits_for_room(t: Task) -> bool:
    """Ready for the staging limit or the job cap, decided in rank order after the rest."""
    return t.state in (S.UNSTAGED, S.STAGED) and not t.request and t.intent is None and not t.held


# States whose next step (a staging request, a submission) needs no outside event.
_CARRY = (S.UNSTAGED, S.STAGED)


def _carried(task: Task, d: Decision, obs: Observations) -> Task | None:
    """The task as ``d`` leaves it, when its next step can be decided in the same iteration: a
    decision without slow actions into a state that waits only for room. A copy (with copies
    of the segments): the task itself changes only when the daemon records the decisions."""
    if d.actions or d.state not in _CARRY or d.state == task.state or d.archive or d.new_job_name:
        return None
    shadow = msgspec.structs.replace(task, segments=[msgspec.structs.replace(s) for s in task.segments])
    apply(shadow, d, obs.now, obs.me, "", obs.staging)
    return shadow if _waits_for_room(shadow) else None


def _account(budget: Budget, task: Task, d: Decision) -> None:
    """Free the room a task gives up by leaving the states that hold it."""
    if task.state in S.HOLDS_CACHE and d.state not in S.HOLDS_CACHE:
        budget.staged_segments -= len(task.segments)
    elif task.state not in S.HOLDS_CACHE and d.state in S.HOLDS_CACHE:
        budget.staged_segments += len(task.segments)
    if task.state in S.IN_BATCH and d.state not in S.IN_BATCH:
        budget.jobs -= 1
        budget.per_job[task.job] = budget.per_job.get(task.job, 0) - 1
