"""Step 3 of an iteration: decide, and record the decisions with their slow actions as intents.

Deciding happens on the status the iteration observed, without the lock. Recording does too,
ahead of the lock (store/ahead.py): the lock is then held only to append what changed. When
another process wrote meanwhile, the recording is undone and done again under the lock, on
what that process wrote, re-deciding if it changed the tasks or what people asked of them.
"""

from __future__ import annotations

from batchman.core import decide as D
from batchman.core import plan as P
from batchman.core.keeper import Keeper
from batchman.core.model import Status, Task
from batchman.daemon import record as R
from batchman.daemon.reload import signature
from batchman.daemon.work import IterationReport, Work
from batchman.store import ahead

WHO = "batchman-daemon"


def asked(tasks) -> dict[str, tuple[str, bool]]:
    """What people asked of the tasks (key -> request, held): a kill or hold merged in place
    under the lock re-plans. (A hold on a settled task changes no decision: the same over
    plan.live(tasks) as over all.)"""
    return {t.key: (t.request, t.held) for t in tasks if t.request or (t.held and t.state not in P.SETTLED)}


class Asked(Keeper):
    """:func:`asked` of the live tasks, kept from the tasks the daemon decides and those appended
    instead of a pass over every live task each round (~50 ms at 1,000,000 tasks), like plan.Room:
    a request or a hold changes by this daemon's decisions, or by another writer or a request
    merged from the requests file, which daemon/survey.py hands over (Keepers.replaced)."""

    def __init__(self, tasks=()):
        self.now = asked(tasks)

    def keep(self, tasks) -> None:
        now = self.now
        if now:                   # (mostly nobody asked anything: no key made for each task)
            for t in tasks:
                now.pop(t.key, None)
        now.update(asked(tasks))


def record(eng, status: Status, live: list[Task], obs: D.Observations, counters: dict, cmds,
           rep: IterationReport) -> list[Work]:
    """``live``: plan.live(status.tasks); ``counters``: what running jobs reported (job name ->)."""
    wanted = dict(eng.kept.asked.now)      # asked(live), kept (Asked)
    tokens = eng._tokens(obs.now)
    eng._learn_max_array()          # outside the lock: may ask scontrol show config, once
    if eng._unretried_policy is not eng.policy:     # (batchman.yaml reloaded, limits learnt)
        eng._unretried, eng._unretried_policy = {}, eng.policy
    obs.staging_moved = None if eng.kept.staging is None else eng.kept.staging.moving(obs.staging, eng.policy, obs.now)
    decisions, budget = P.plan_budget(live, obs, eng.policy, eng.only, tokens, eng._unretried, eng.kept.room)
    eng.kept.deciding([t for t, _ in decisions])     # (as they are before the decisions apply)
    cleared, n_tr, now = eng.cleared, len(rep.transitions), 0.0
    counted = R.counted(counters, eng.kept.inbatch)

    def body(st: Status) -> list[Work]:
        nonlocal decisions, budget, now
        now = eng.clock()
        del rep.transitions[n_tr:]          # (a second run: the first one's were undone)
        tasks = counted
        if st.tasks is not status.tasks or (signature(eng.store.requests_path) != eng._requests_sig
                                            and asked(st.tasks) != wanted):
            # Tasks added since we observed are simply not observed yet: they wait a turn.
            # (The requests file as before the survey's read: nothing merged since, no pass.)
            R.apply_cleared(st, cleared, eng.me)
            obs.staging_moved = None        # (of the tasks observed: these are others)
            eng._replanned = True           # (what is kept follows the tasks decided: count afresh)
            decisions, budget = P.plan_budget(P.live(st.tasks), obs, eng.policy, eng.only, tokens, eng._unretried)
            tasks = st.tasks
        eng._create(st, now, rep)
        R.heartbeat(st, eng.me, now, eng.started, eng.mode, eng.iterations + 1)
        eng.params_watch.record(st)
        R.record_batch_health(st, rep, eng.pacing, now)
        work = R.record_decisions(eng.store, st, decisions, obs, now, eng.me, rep)
        R.record_arrays(st, work, eng.policy.array_size, eng._array_stamp(now), eng.specs.resources)
        R.record_counters(tasks, counters)
        R.log_observed(st, now, cmds, rep)
        return work

    if eng.observer.split_found:       # replaces tasks (a list ahead.update cannot undo): under the lock
        work = ahead.locked(eng.store, WHO, body)
    else:
        idx = status.index()
        touched = [t for t, _ in decisions] + counted       # (of the cleared ones only the intent)
        of_cleared = [t for w in cleared.values() if (t := idx.of(w)) is not None]
        work = ahead.update(eng.store, WHO, body, touched, intents=of_cleared)
    eng.cleared = {}         # written with this transaction
    eng._spend(budget, now)
    return work
