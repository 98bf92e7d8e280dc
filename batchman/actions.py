"""What a person can do to the task list: each one short locked transaction.

Shared by the CLI and the TUI so both behave the same; nothing here prints or asks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import states as S
from .model import Task, task_key
from .store import Store

DEFAULT_JOB = "analysis"


@dataclass
class AddResult:
    added: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # "1001 (running)"


def add_runs(store: Store, runs: list[int], jobs: list[str] | tuple[str, ...] = (DEFAULT_JOB,),
             priority: int = 0, experiment: str = "", who: str = "batchman add") -> AddResult:
    """Add (run, job) tasks as ``new``; ones already in the list are skipped, not touched."""
    now = time.time()
    res = AddResult()
    with store.transaction(who) as st:
        if not st.experiment and experiment:
            st.experiment = experiment
            st.created = st.created or now
        existing = {t.key: t for t in st.tasks}
        for r in runs:
            for j in jobs:
                k = task_key(r, j)
                if k in existing:
                    res.skipped.append(f"{r} ({existing[k].state})")
                    continue
                t = Task(run=r, job=j, since=now, added_at=now, reason="added", priority=priority)
                st.tasks.append(t)
                existing[k] = t
                store.record(k, "", S.NEW, "added", who, now)
                res.added.append(r)
        if not res.added:
            store.abort()
    return res


# Which states each request applies to (None: any state).
REQUEST_STATES = {"kill": S.ACTIVE, "restart": None, "purge": None}


def queue_request(store: Store, keys: set[str], what: str, who: str = "") -> int:
    """Mark tasks with a kill / restart / purge request; returns how many were marked."""
    if what not in REQUEST_STATES:
        raise ValueError(f"unknown request {what!r}")
    allowed = REQUEST_STATES[what]
    n = 0
    with store.transaction(who or f"batchman {what}") as st:
        for t in st.tasks:
            if t.key in keys and (allowed is None or t.state in allowed):
                t.request = what
                n += 1
        if not n:
            store.abort()
    return n


def set_priority(store: Store, keys: set[str], priority: int, who: str = "batchman priority") -> int:
    n = 0
    with store.transaction(who) as st:
        for t in st.tasks:
            if t.key in keys:
                t.priority = priority
                n += 1
        if not n:
            store.abort()
    return n
