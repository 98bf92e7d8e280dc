"""Everything the status page counts, kept up to date from the tasks that changed.

A ``Tally`` holds, per position in ``status.tasks``, the few fields the page counts by
(state, since, run, job, dataset, end, run time), and the totals built from them: tasks
per state, per job and dataset, problem groups, the runs of each bulk state, recent ends
and run times. ``sync(tasks)`` finds the positions whose state or ``since`` changed (one
pass at C speed: two ``map(attrgetter)`` lists compared) -- or takes them from the caller,
who may know them -- and moves only those tasks from their old place in the totals to the
new one. A person's edit that keeps both (a dataset renamed) is caught by ``rebuild_after``.

Pure: tasks in, numbers and tasks out. ``batchman.page.summary``'s functions are this
tally built once; ``batchman.page.html`` reads a tally kept across daemon iterations.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter, ne

from batchman.core import states as S
from batchman.page.bags import RunSet, SortedBag

HOUR = 3600.0
BULK = (S.COMPLETED, S.SKIPPED, S.NEW, S.UNSTAGED)
RATE_STATES = S.TERMINAL - {S.SKIPPED}
RANK = {s: i for i, s in enumerate(S.ALL)}
_states = attrgetter("state")
_sinces = attrgetter("since")


@dataclass
class Progress:
    total: int = 0
    counts: Counter = field(default_factory=Counter)
    done: int = 0                 # completed or skipped
    finished: int = 0             # in any terminal state
    pending: int = 0              # the daemon still has work for these
    problems: int = 0
    last_hour: int = 0            # tasks that ended in the last hour (any terminal state)
    rate_per_hour: float = 0.0    # ends per hour, over the last hours
    eta_s: float | None = None    # seconds until the pending tasks are done at that rate
    failure_rate: float | None = None   # problems among the tasks ended in the last hours


@dataclass
class ProblemGroup:
    state: str
    cause: str        # failure class, or the kind of failure
    reason: str       # the shared reason, as a person reads it
    runs: list[int]
    retry: str = ""   # what the retry policy made of it (from the last attempt)

    @property
    def ranges(self) -> str:
        from batchman.page.summary import ranges
        return ranges(self.runs)


def cause(t) -> str:
    return t.failure_class or t.failure or t.state


def reason(t) -> str:
    text = (t.error or t.reason or "").strip()
    return text.splitlines()[0][:160] if text else "no reason recorded"


def problem_key(t) -> tuple[str, str, str]:
    return t.state, cause(t), reason(t)


class Tally:
    """The page's totals over ``tasks``, moved task by task as tasks change."""

    def __init__(self, tasks=()) -> None:
        self._reset()
        if tasks:
            self.sync(tasks)

    def _reset(self) -> None:
        self.n = 0
        self.version = 0                    # grows with every task moved: the page changed
        self._state: list = []
        self._since: list = []
        self._who: list = []                # (run, job, dataset) per position
        self._end: list = []                # end counted in the rate, or None
        self._time: list = []               # (run time, run) of a completed task, or None
        self._pkey: dict[int, tuple] = {}
        self.counts: Counter = Counter()
        self.by_job: Counter = Counter()
        self.by_dataset: Counter = Counter()
        self.members: dict[str, set[int]] = defaultdict(set)      # state -> positions
        self.groups: dict[tuple, set[int]] = defaultdict(set)     # problem key -> positions
        self.bulk: dict[str, RunSet] = {s: RunSet() for s in BULK}
        self.retried: set[int] = set()
        self.ends_ok, self.ends_bad, self.times = SortedBag(), SortedBag(), SortedBag()

    def sync(self, tasks, changed=None) -> int:
        """Bring the totals to ``tasks``; ``changed``: positions known to have changed (else
        found here). Fewer tasks than last time (a purge) starts afresh. Returns how many
        positions were looked at again."""
        if len(tasks) < self.n:
            self._reset()
        old = self.n
        if changed is None:
            states, sinces = list(map(_states, tasks)), list(map(_sinces, tasks))
            moved = set(compress(range(old), map(ne, states, self._state)))
            moved.update(compress(range(old), map(ne, sinces, self._since)))
            changed = sorted(moved)
        else:
            changed = sorted({i for i in changed if i < old})
        grow = len(tasks) - old
        if grow:
            for lst in (self._state, self._since, self._who, self._end, self._time):
                lst.extend([None] * grow)
        for i in changed:
            if i < old:
                self._take(i)
        for i in chain_new(changed, old, len(tasks)):
            self._put(i, tasks[i])
        self.n = len(tasks)
        moved = len(changed) + grow
        self.version += moved
        return moved

    def _take(self, i: int) -> None:
        st = self._state[i]
        run, job, ds = self._who[i]
        self.counts[st] -= 1
        self.by_job[job, st] -= 1
        self.by_dataset[ds, st] -= 1
        self.members[st].discard(i)
        if st in self.bulk:
            self.bulk[st].remove(run)
        k = self._pkey.pop(i, None)
        if k is not None:
            self.groups[k].discard(i)
            if not self.groups[k]:
                del self.groups[k]
        self.retried.discard(i)
        e = self._end[i]
        if e is not None:
            (self.ends_ok if st == S.COMPLETED else self.ends_bad).remove(e)
        if self._time[i] is not None:
            self.times.remove(self._time[i])

    def _put(self, i: int, t) -> None:
        st, run, job = t.state, t.run, t.job
        ds = t.meta.get("dataset", "") if t.meta else ""
        self._state[i], self._since[i], self._who[i] = st, t.since, (run, job, ds)
        self.counts[st] += 1
        self.by_job[job, st] += 1
        self.by_dataset[ds, st] += 1
        self.members[st].add(i)
        if st in self.bulk:
            self.bulk[st].add(run)
        if st in S.PROBLEM:
            k = self._pkey[i] = problem_key(t)
            self.groups[k].add(i)
        if t.past:
            self.retried.add(i)
        e = (t.finished_at or t.since) if st in RATE_STATES else None
        self._end[i] = e or None
        if e:
            (self.ends_ok if st == S.COMPLETED else self.ends_bad).add(e)
        ran = None
        if st == S.COMPLETED and t.started_at and t.finished_at and t.finished_at >= t.started_at:
            ran = (t.finished_at - t.started_at, run)
            self.times.add(ran)
        self._time[i] = ran

    # ---- what the page shows -------------------------------------------------------

    def progress(self, now: float, window: float = 6 * HOUR) -> Progress:
        """Completed of total, the recent rate of ends, an estimate of the end, the failure rate.

        The rate is taken over the last ``window`` seconds (or since the first end, if later),
        so a production that slows down shows it within hours; the estimate is the pending
        tasks at that rate.
        """
        c = +self.counts
        p = Progress(total=self.n, counts=c, done=c[S.COMPLETED] + c[S.SKIPPED],
                     finished=sum(c[s] for s in S.TERMINAL), pending=sum(c[s] for s in S.ACTIVE),
                     problems=sum(c[s] for s in S.PROBLEM))
        since = now - window
        ok, bad = self.ends_ok.count_from(since), self.ends_bad.count_from(since)
        p.last_hour = self.ends_ok.count_from(now - HOUR) + self.ends_bad.count_from(now - HOUR)
        firsts = [x for x in (self.ends_ok.first_from(since), self.ends_bad.first_from(since)) if x is not None]
        if ok + bad:
            span = max(now - min([now, *firsts]), 10 * 60.0)     # a burst of ends is not a rate
            p.rate_per_hour = (ok + bad) / span * HOUR
            p.failure_rate = bad / (ok + bad)
            if p.pending:
                p.eta_s = p.pending / p.rate_per_hour * HOUR
        return p

    def problem_groups(self, tasks) -> list[ProblemGroup]:
        """Tasks that ended badly, grouped by state, failure class and reason, biggest group first."""
        out = []
        for (state, why, text), m in self.groups.items():
            first = tasks[min(m)]
            runs = sorted({self._who[i][0] for i in m})
            out.append(ProblemGroup(state, why, text, runs, first.past[-1].retry if first.past else ""))
        return sorted(out, key=lambda g: (-len(g.runs), g.state, g.cause, g.reason))

    def run_time_bins(self, bins: int = 30) -> tuple[list[int], float]:
        """Completed jobs per run-time bin from 0 to the longest (svg.histogram's bars), and it."""
        if not self.times:
            return [], 0.0
        hi = self.times[-1][0] or 1.0
        width = hi / bins
        below = [len(self.times) - self.times.count_from((k * width, -1 << 62)) for k in range(1, bins)]
        edges = [0, *below, len(self.times)]
        return [b - a for a, b in zip(edges, edges[1:])], hi

    def slow_tail(self, q: float = 0.95, show: int = 8) -> tuple[float, list[tuple[float, int]]]:
        """summary.slow_tail of the run times, read from the sorted bag."""
        n = len(self.times)
        if not n:
            return 0.0, []
        pos = q * (n - 1)
        lo = int(pos)
        a, b = self.times[lo][0], self.times[min(lo + 1, n - 1)][0]
        limit = a + (b - a) * (pos - lo)
        return limit, [x for x in self.times.largest(show) if x[0] > limit]

    def breakdown(self, by: str) -> dict[str, Counter]:
        """Counts per state for each job definition (``by='job'``) or dataset."""
        out: dict[str, Counter] = defaultdict(Counter)
        for (key, state), n in (self.by_job if by == "job" else self.by_dataset).items():
            if n:
                out[key][state] += n
        return dict(sorted(out.items()))

    def _by_run(self, positions) -> list[int]:
        return sorted(positions, key=self._who.__getitem__)

    def listed(self, tasks, cap: int, per_group: int = 100) -> tuple[list, dict[str, list[int]]]:
        """summary.listed: problems first (biggest group first, ``per_group`` of each), then
        the active ones, at most ``cap``; and per state the runs of the tasks left out.
        Only the tasks listed are looked at; the others are counted from the tally."""
        who = self._who
        shown: list[int] = []
        over: dict[str, set[int]] = defaultdict(set)
        for k in sorted(self.groups, key=lambda k: (-len(self.groups[k]), k)):
            g = self._by_run(self.groups[k])
            take = max(0, min(per_group, cap - len(shown)))
            shown += g[:take]
            over[k[0]].update(who[i][0] for i in g[take:])
        for s in S.ALL:
            if s in S.ACTIVE and s not in self.bulk and self.members.get(s):
                m = self.members[s]
                room = cap - len(shown)
                pick = heapq.nsmallest(room, m, key=who.__getitem__) if 0 < room < len(m) else \
                    (self._by_run(m) if room > 0 else [])
                shown += pick
                if len(pick) < len(m):
                    picked = set(pick)
                    over[s].update(who[i][0] for i in m if i not in picked)
        return [tasks[i] for i in shown], {s: sorted(r) for s, r in over.items() if r}

    def in_state(self, tasks, state: str) -> list:
        return [tasks[i] for i in self._by_run(self.members.get(state, ()))]

    def first_retried(self, tasks, n: int) -> list:
        return [tasks[i] for i in heapq.nsmallest(n, self.retried)]


def chain_new(changed, old: int, now: int):
    """The positions to tally afresh: the changed ones and every new one."""
    yield from changed
    yield from range(old, now)
