"""What the change log's records that this process applied did to its list of tasks (issue 18).

Applying another writer's record (follow.follow_log, changes.apply) makes a new list of tasks in
which each task the record holds is a new object, in the place of the one it replaces (a new
key goes last, a purged one leaves). A reader that keeps something of every task (the daemon's
keepers: daemon/survey.py) then had to count them all again, ~1 s at 1,000,000 tasks after any
`batchman` command that writes. With the pairs (old object, new object) it moves only those.

Off unless a reader asks (``on``): the chain holds each record's pairs and appended tasks, and
of the lists only the last one made, until the reader takes it (:meth:`Replays.since`), at
most MAX records. Pure: no I/O.
"""

from __future__ import annotations

MAX = 16        # records kept between two looks of the reader (more: it counts afresh)


class Replays:
    def __init__(self, touched=None) -> None:
        self.on = False
        self.touched = touched          # store/touched.Touched, told too (the page's tally moves those tasks)
        # (id of the list before, its length, the tasks appended, [(old, new)], whether a task left):
        # no list is held but the last one made (the copy's own), so memory follows the changes
        self.chain: list[tuple[int, int, list, list, bool]] = []
        self.last: list | None = None

    def wanted(self) -> bool:
        """Whether anyone wants the pairs (making them costs a key and a look-up per task)."""
        return self.on or (self.touched is not None and self.touched.tasks is not None)

    def note(self, before: list, after: list, swapped: list, gone: bool) -> None:
        """A record made list ``after`` of list ``before``: each (old, new) of ``swapped`` put new
        in old's place; tasks of new keys were appended; ``gone``: some task left."""
        if self.touched is not None:
            self.touched.replaced(before, after, swapped, gone)
        if not self.on:
            return
        if (self.chain and self.last is not before) or len(self.chain) >= MAX:
            self.chain.clear()          # (a list read again meanwhile, or too many: the reader counts afresh)
        self.chain.append((id(before), len(before), after[len(before):], swapped, gone))
        self.last = after

    def merged(self, tasks: list, changed: list) -> None:
        """Requests queued by people were set in place on ``changed``, tasks of list ``tasks``
        (store._overlay): each is its own new version."""
        if changed:
            self.note(tasks, tasks, [(t, t) for t in changed], False)

    def since(self, tasks: list, now: list) -> list[tuple[object, object]] | None:
        """The tasks of list ``tasks`` replaced since by the records applied, as pairs (the task
        in ``tasks``, its newest version in list ``now``, the copy's list; in no particular order),
        the chain then forgotten. Tasks appended since are not in it: they are at the end of
        ``now``, past ``len(tasks)``. None when that cannot be told: no chain from ``tasks`` to
        ``now`` (the file read again, rewritten whole by another writer: no record tells; too
        many records), or a task left (purged).

        ``tasks`` is alive (the caller holds it), so no other list of the chain has its id."""
        chain, last, self.chain, self.last = self.chain, self.last, [], None
        if last is not now:
            return None
        start = next((k for k, link in enumerate(chain) if link[0] == id(tasks) and link[1] == len(tasks)), None)
        if start is None:
            return None
        newest: dict[int, tuple[object, object]] = {}    # id(newest) -> (the task in ``tasks``, newest)
        appended: set[int] = set()                       # ids of tasks appended since (and their versions)
        for _, _, added, swapped, gone in chain[start:]:
            if gone:
                return None
            for old, new in swapped:
                if id(old) in appended:
                    appended.add(id(new))
                    continue
                first = newest.pop(id(old), None)
                newest[id(new)] = (old if first is None else first[0], new)
            appended.update(map(id, added))
        return list(newest.values())
