"""The tasks in the batch system by job name, kept from the changes (issue 18).

Observing asks the batch system about every job in it (300,000 at 1,000,000 tasks), and a
dict of them built afresh each round costs ~0.4 s there: a look at every job's name and id,
scattered in memory. The daemon changes few of them in a round, so :class:`InBatch` keeps
them: built from the live tasks when the daemon surveys them afresh, and otherwise updated
from the tasks the daemon decided (as they were before, :meth:`deciding`; as they are now,
:meth:`changed`) and those appended, like plan.Room.
"""

from __future__ import annotations

from batchman.core import states as S
from batchman.core.keeper import Keeper
from batchman.core.model import Task

JUST_SUBMITTED = (S.SUBMITTING, S.SUBMITTED)   # few; their start markers are read in every round


class InBatch(Keeper):
    notes = True        # forget() takes back what was() kept

    def __init__(self, tasks: list[Task] = ()):
        self.named: dict[str, Task] = {}
        self.ids: dict[str, str] = {}       # what to ask, by default
        self.just: dict[str, Task] = {}
        self.arrays: dict[str, Task] = {}   # job arrays' elements
        self.lent: list[Task] = []          # the tasks whose jobs lend() took out of ids
        self.keep(tasks)        # (one look at each task: ~0.2 s less than a pass for each dict at 300,000 jobs)

    def was(self, t: Task) -> str:
        return t.job_name          # the name it is kept under

    def forget(self, before) -> None:
        for t, name in before:
            if self.named.get(name) is t:
                del self.named[name], self.ids[name]
                self.just.pop(name, None)
                self.arrays.pop(name, None)

    def keep(self, tasks) -> None:
        named, ids, just, arrays, in_batch = self.named, self.ids, self.just, self.arrays, S.IN_BATCH
        for t in tasks:
            st = t.state
            if st in in_batch and (name := t.job_name):
                named[name], ids[name] = t, t.job_id
                if st in JUST_SUBMITTED:
                    just[name] = t
                if t.array_name and t.array_index is not None:     # (_in_array written out)
                    arrays[name] = t

    def task_of(self, name: str) -> Task | None:
        """The task whose job ``name`` is, if it was in the batch system when kept and its
        attempt is still that job (a task decided since changed in place: its own fields say)."""
        t = self.named.get(name)
        return t if t is not None and t.job_name == name else None

    def lend(self, look: list[Task]) -> dict[str, str]:
        """:attr:`ids` without the jobs of ``look`` (kept tasks whose markers are read first): the
        dict itself, not a copy (300,000 jobs at 1,000,000 tasks: ~50 ms to copy), lent to the
        round's query (it may add back the jobs it asks about after all) until :meth:`put_back`."""
        for t in look:
            self.ids.pop(t.job_name, None)
        self.lent = look
        return self.ids

    def put_back(self) -> None:
        """:attr:`ids` as it was before :meth:`lend` (the jobs taken out, back at its end)."""
        for t in self.lent:
            if self.named.get(t.job_name) is t:
                self.ids.setdefault(t.job_name, t.job_id)
        self.lent = []

    def same(self, other: "InBatch") -> bool:
        return (self.named, self.ids, self.just, self.arrays) == (other.named, other.ids, other.just, other.arrays)
