"""What a person can do to the task list: each one short locked transaction.

Shared by the CLI and the TUI so both behave the same; nothing here prints or asks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from batchman.core import states as S
from batchman.core.model import Task, frozen, task_key
from batchman.core.transition import change_state, created
from batchman.store.store import Store

DEFAULT_JOB = "analysis"


@dataclass
class AddResult:
    added: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # "1001 (running)"


def _name_experiment(st, experiment: str, now: float) -> None:
    """The first writer that knows the experiment's name records it, and when it began."""
    if not st.experiment and experiment:
        st.experiment = experiment
        st.created = st.created or now


def add_runs(store: Store, runs: list[int], jobs: list[str] | tuple[str, ...] = (DEFAULT_JOB,),
             priority: int = 0, experiment: str = "", who: str = "batchman add",
             meta: dict[int, dict[str, str]] | None = None) -> AddResult:
    """Add (run, job) tasks as ``new``; ones already in the list are skipped, not touched.
    ``meta``: run list columns per run (dataset, quality, ...), kept with the tasks."""
    now = time.time()
    res = AddResult()
    with store.transaction(who) as st:
        _name_experiment(st, experiment, now)
        # a per: segment job's run counts once; only the runs named are keyed (a key is made
        # for each: ~1.2 s for all of 1,000,000 tasks, against ~0.1 s for a look at each run)
        named = set(runs)
        existing = {t.run_key: t for t in st.tasks if t.run in named}
        for r in runs:
            for j in jobs:
                k = task_key(r, j)
                if k in existing:
                    res.skipped.append(f"{r} ({existing[k].state})")
                    continue
                t = Task(run=r, job=j, since=now, added_at=now, reason="added", priority=priority,
                         meta=frozen((meta or {}).get(r)))
                st.tasks.append(t)
                existing[k] = t
                _journal(store, created(t, "added", now, who))
                res.added.append(r)
        if not res.added:
            store.abort()
    return res


def queue_request(store: Store, keys: set[str], what: str, who: str = "") -> int:
    """Mark tasks with a kill / restart / purge request (only those in a state where it
    applies: ``states.REQUEST_APPLIES``); returns how many were marked."""
    if what not in S.REQUEST_APPLIES:
        raise ValueError(f"unknown request {what!r}")
    return store.queue_requests(keys, "request", what, S.REQUEST_APPLIES[what], who or f"batchman {what}")


def set_priority(store: Store, keys: set[str], priority: int, who: str = "batchman priority") -> int:
    return store.queue_requests(keys, "priority", int(priority), None, who)


@dataclass
class AdoptResult:
    adopted: list[str] = field(default_factory=list)      # job names taken in
    refused: list[str] = field(default_factory=list)      # "name: why"


def adopt(store: Store, names: list[str] | None = None, who: str = "batchman adopt") -> AdoptResult:
    """Take unknown jobs of ours (found in the batch system by name) into the task list.

    ``names`` None: every unknown job recorded by the daemon. The task of the job's run and
    job definition is created if missing, or its finished attempt is kept in its history; a
    task that already has a live job is left alone (the unknown one is a duplicate: cancel it).
    """
    from batchman.core.model import Attempt, parse_job_name
    now = time.time()
    res = AdoptResult()
    with store.transaction(who) as st:
        unknown = {u.name: u for u in st.unknown}
        wanted = list(unknown) if names is None else names
        idx = st.index()         # (made before the lock by the transaction)
        for name in wanted:
            u = unknown.get(name)
            parsed = parse_job_name(name)
            if u is None or parsed is None:
                res.refused.append(f"{name}: not an unknown job of this status file (`batchman list --unknown`)")
                continue
            sid, run, job, attempt, seg = parsed
            if sid != st.store_id:
                res.refused.append(f"{name}: belongs to another status file (store id {sid})")
                continue
            t = idx.get(parsed.key)
            if t is None:
                t = Task(run=run, job=job, seg=seg, since=now, added_at=now, reason="adopted")
                st.tasks.append(t)
                idx[t.key] = t
                _journal(store, created(t, "adopted", now, who))
            elif t.state in S.IN_BATCH:
                res.refused.append(f"{name}: run {run} already has job {t.job_id or t.job_name} in {t.state}; "
                                   f"cancel the duplicate in the batch system")
                continue
            elif t.attempt and t.job_name:
                t.past = (*t.past, Attempt(n=t.attempt, job_id=t.job_id, state=t.state, exit_code=t.exit_code,
                                           failure=t.failure, reason=t.reason))
            tr = change_state(t, S.SUBMITTED, f"adopted unknown job {u.job_id}", now, who)
            t.job_name, t.job_id, t.attempt = name, u.job_id, max(attempt, t.attempt)
            t.array_name, t.array_index = u.array_name, u.array_index   # an array element: followed by its id
            t.exit_code, t.failure, t.error, t.request, t.intent = None, "", "", "", None
            t.submitted_at = now
            _journal(store, tr)
            res.adopted.append(name)
        st.unknown = [u for u in st.unknown if u.name not in set(res.adopted)]
        if not res.adopted:
            store.abort()
    return res


def hold(store: Store, keys: set[str], held: bool = True, who: str = "") -> int:
    """Hold tasks (no new start before submission) or release them again."""
    return store.queue_requests(keys, "held", bool(held), None, who or ("batchman hold" if held else "batchman release"))


def skip(store: Store, keys: set[str], reason: str, who: str = "batchman skip") -> int:
    """Mark tasks done by hand (a live job is killed first); ``reason`` is kept with them."""
    allowed = S.REQUEST_APPLIES[S.SKIP]
    n = store.queue_requests(keys, "note", reason, allowed, who)
    if n:
        store.queue_requests(keys, "request", "skip", allowed, who)
    return n


def set_paused(store: Store, paused: bool, who: str = "") -> bool:
    """Drain (no new staging or submission by any daemon) or resume; returns the old value."""
    with store.transaction(who or ("batchman pause" if paused else "batchman resume")) as st:
        old = st.paused
        if old == paused:
            store.abort()
        else:
            st.paused = paused
            st.paused_by = who if paused else ""
    return old


@dataclass
class TriggerResult:
    created: list[int] = field(default_factory=list)
    again: list[int] = field(default_factory=list)       # an earlier execution kept in its history
    busy: list[str] = field(default_factory=list)        # "1001 (running)": already under way


def trigger_runs(store: Store, runs: list[int], job: str, experiment: str = "",
                 who: str = "batchman run") -> TriggerResult:
    """Trigger ``job`` for runs (ARP's manual trigger): create the task, or run a finished one
    again; each execution keeps its own attempt record (the finished one goes to ``past``
    when the daemon restarts it). A task still under way is left alone."""
    now = time.time()
    res = TriggerResult()
    with store.transaction(who) as st:
        _name_experiment(st, experiment, now)
        idx: dict[str, list[Task]] = {}
        for t in st.tasks:
            idx.setdefault(t.run_key, []).append(t)     # a per: segment job: all its segment tasks
        meta = {t.run: t.meta for t in st.tasks if t.meta}
        for r in runs:
            group = idx.get(task_key(r, job), [])
            t = group[0] if group else None
            if t is None:
                t = Task(run=r, job=job, since=now, added_at=now, reason="triggered by hand",
                         meta=frozen(meta.get(r)))
                st.tasks.append(t)
                idx[t.key] = [t]
                _journal(store, created(t, "triggered by hand", now, who))
                res.created.append(r)
            elif all(x.state in S.TERMINAL and x.request in ("", "restart") for x in group):
                for x in group:
                    x.request = "restart"
                res.again.append(r)
            else:
                res.busy.append(f"{r} ({t.state}{', ' + t.request + ' queued' if t.request else ''})")
        if not res.created and not res.again:
            store.abort()
    return res


def _journal(store: Store, tr) -> None:
    if tr is not None:
        store.record(tr.key, tr.old, tr.new, tr.why, tr.by, tr.at)


def watch(store: Store, runs: list[int], who: str = "batchman watch") -> int:
    """Add runs to those watched by jobs with ``watch: listed``; returns how many were new."""
    with store.transaction(who) as st:
        have = set(st.watched)
        new = [r for r in runs if r not in have]
        if new:
            st.watched = sorted(have | set(new))
        else:
            store.abort()
    return len(new)
