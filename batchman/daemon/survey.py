"""Step 1 of an iteration: the tasks to look at (plan.live of the status's tasks) and what the
daemon keeps of them (daemon/kept.py), counted afresh only when it must be (issue 18).

Counting afresh costs a pass over every task and every keeper made again: ~1 s at 1,000,000
tasks. It is avoided
- when only this daemon changed the tasks since its last survey (the steady state): the last
  live tasks still live (only those decided may have settled: plan.Live) and those appended
  since are all, and the keepers follow the tasks decided;
- when another writer changed some too (a `batchman` command, the TUI, another daemon), read
  from the change log or merged in place from the requests people queue: store/replays.py
  says which task objects were replaced by which (a request: the task is its own new
  version), and the keepers and the live tasks swap those. Tasks appended by the other
  writer come last.
It is not avoided when the replays do not lead from the list surveyed to the list now (the
status file read again, or rewritten whole by another writer of a small file: no record
tells what changed; more than replays.MAX records), when a task was purged, when this
daemon's last round decided on another list than the one surveyed (another writer wrote
during the round: intents.record decides again), or when a task that was settled became
live (restarted by a person: where it goes among the live tasks is not known without a pass).
"""

from __future__ import annotations

from batchman.core import jobs as J
from batchman.core import plan as P
from batchman.core.model import Status, Task
from batchman.daemon.kept import Kept
from batchman.store.store import CHECK


def survey(eng, status: Status, requests: tuple | None) -> list[Task]:
    """plan.live(status.tasks) for the engine ``eng``, its keepers brought up to date
    (``requests``: the requests file's signature before the read)."""
    tasks, kept_live = eng._live
    pairs = eng.store.replays.since(tasks, status.tasks)    # (taken every round: then forgotten)
    eng.store.replays.on = True
    live = None
    mine = status.tasks is tasks and status.generation == eng._generation and requests == eng._requests_sig
    if not eng._replanned and eng.kept is not None and (mine or pairs is not None):
        added = P.live(tasks[eng._surveyed:])
        live = kept_live.still(eng.kept.changed(added), added)
        if not mine:
            live = _others(eng, status.tasks, tasks, kept_live, pairs)
            if live is not None:
                eng.observer.scan.moved(tasks, status.tasks, pairs)
        if live is not None:
            eng.kept.steady(live)
    if live is None:
        live = P.live(status.tasks)
        kept_live = P.Live(live)
        eng._unretried = {}      # (plan_budget: valid while only this daemon changes tasks)
        eng.kept = Kept(live)
        eng.observer.waiting, eng.observer.census = eng.kept.waiting, eng.kept.census
    if CHECK:                     # (the tests: what is kept equals a count)
        eng.kept.check(live)
        assert list(map(id, live)) == [id(t) for t in status.tasks if P.is_live(t)]   # live(all)
        assert J.to_create(status.tasks, eng.jobs, (), eng.observer.scan) == J.to_create(status.tasks, eng.jobs)
        assert J.gates(status.tasks, eng.jobs, scan=eng.observer.scan) == J.gates(status.tasks, eng.jobs)
    eng._live, eng._surveyed, eng._requests_sig = (status.tasks, kept_live), len(status.tasks), requests
    eng._replanned = False
    return live


def _others(eng, now: list[Task], was: list[Task], kept_live: P.Live, pairs) -> list[Task] | None:
    """The live tasks once another writer's changes (``pairs``: old, new) made list ``now`` of
    list ``was``, the keepers following; None when they cannot be followed so."""
    more = P.live(now[len(was):])           # appended by the other writer
    if not kept_live.swapped(pairs, more):
        return None
    eng.kept.replaced(pairs)
    for old, _ in pairs:                    # (a replaced task is not kept alive there: decided anew)
        eng._unretried.pop(id(old), None)
    eng.kept.changed(more)
    return kept_live.tasks
