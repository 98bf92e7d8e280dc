"""Everything the status page counts, kept up to date from the tasks that changed.

A ``Tally`` holds, per position in ``status.tasks``, the few fields the page counts by
(state, since, run, job, dataset, end, run time), and the totals built from them: tasks
per state, per job and dataset, problem groups, the runs of each state, recent ends and
run times. ``sync(tasks)`` finds the positions whose state changed (a pass at C speed:
``map(attrgetter)`` compared with what was counted; after the file was read again, since,
run and job too) -- or takes them from the caller, who may know them -- and moves only
those tasks from their old place in the totals to the new one. An edit in place that keeps
the state (a dataset renamed) waits for the caller's word or ``LivePage``'s periodic recount.

Pure: tasks in, numbers and tasks out. ``batchman.page.summary``'s functions are this
tally built once; ``batchman.page.html`` reads a tally kept across daemon iterations.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from itertools import chain, compress, repeat
from operator import attrgetter, is_not, ne, or_

from batchman.core import states as S
from batchman.page import where as W
from batchman.page.bags import RunSet, SortedBag, by_fields
from batchman.page.counted import (  # noqa: F401 - Progress, ProblemGroup, problem_key re-exported
    RATE_STATES, ProblemGroup, Progress, dataset_of, end_of, problem_key, run_time_of)

HOUR = 3600.0
BULK = (S.COMPLETED, S.SKIPPED, S.NEW, S.UNSTAGED)
LISTED = tuple(s for s in S.ALL if s in S.ACTIVE and s not in BULK)     # active, one row each
_states, _sinces, _runs, _jobs, _metas, _pasts, _segs, _helds = map(
    attrgetter, ("state", "since", "run", "job", "meta", "past", "seg", "held"))
_counted = attrgetter("state", "since", "run", "job", "seg")     # what sync compares after a re-read


class Tally:
    """The page's totals over ``tasks``, moved task by task as tasks change."""

    def __init__(self, tasks=()) -> None:
        self._reset()
        if tasks:
            self.sync(tasks)

    def _reset(self) -> None:
        self.n = 0
        self.version = 0                    # grows with every task moved: the page changed
        self._list = None                   # the task list last seen (held: an id could be reused)
        self._upto: int | None = None       # the runs counted go up in stretches before this position
        self._starts: list[int] = [0]       # where those stretches begin (where.stretches)
        self._ids = None                    # the id of the task at each position (where.ids_of), when made
        self._looked = False                # positions found by the tasks written once already
        # per position: what the task was counted as (the detector compares state and since)
        self._state: list = []
        self._since: list = []
        self._run: list = []
        self._job: list = []
        self._seg: list = []                # segment number of a per: segment job's task, or None
        self._ds: list = []
        self._end: list = []                # end counted in the rate, or None
        self._time: list = []               # (run time, run) of a completed task, or None
        self._pkey: dict[int, tuple] = {}
        self.counts: Counter = Counter()
        self.by_job: dict[str, Counter] = defaultdict(Counter)        # state -> job -> tasks
        self.by_dataset: dict[str, Counter] = defaultdict(Counter)    # state -> dataset -> tasks
        # state -> positions, for the states that are not bulk (bulk ones are long and their
        # few rows are found in the per-position states when they are few)
        self.members: dict[str, set[int]] = defaultdict(set)
        self.runs: dict[str, RunSet] = defaultdict(RunSet)        # state -> runs
        # the tasks that may be listed one by one, by (run, job, position): problem groups
        # (by problem key) and the active states that are not bulk (by state)
        self.groups: dict[tuple, SortedBag] = defaultdict(SortedBag)
        self.group_runs: dict[tuple, RunSet] = defaultdict(RunSet)
        self.ordered: dict[str, SortedBag] = defaultdict(SortedBag)
        self.retried: set[int] = set()
        self.held: set[int] = set()         # positions of the tasks a person holds (``batchman hold``)
        self.segmented: dict[tuple, Counter] = defaultdict(Counter)   # (run, job) of segment tasks -> their states
        self.ends_ok, self.ends_bad, self.times = SortedBag(), SortedBag(), SortedBag()

    def sync(self, tasks, changed=None, touched=None, base=None) -> int:
        """Bring the totals to ``tasks``; returns how many positions were looked at again.

        ``changed``: positions known to have changed since the last call (the caller's change
        tracking). ``touched``: the tasks changed in place or appended since the last call
        (the store's writes), for the list seen last time (or the one given to ``adopt``), or
        for ``base`` when it is that list and ``tasks`` was made of it position by position
        (another writer's changes read from the change log, each task a new object in its
        place: store/replays.py): their positions are found by run (batchman.page.where) and
        none of the other tasks is looked at, when they are few enough for that to cost less
        than a pass. Otherwise the positions are found here by a pass: in the same list, the
        tasks whose state differs from what was counted; in a list made of the last one place
        by place, those whose object is another or whose state differs; in any other list (the
        file read again: every object is new; a purge and an add moved tasks), those whose
        state, ``since``, run, job or segment differs. Fewer tasks than last time: all afresh.
        """
        old, same_list, before = self.n, tasks is self._list, self._list
        follows = not same_list and touched is not None and base is not None and base is before
        self._list = tasks
        if len(tasks) < old or not old:
            self._reset()
            self._list = tasks
            self._build(tasks)
            return self.n
        located = None
        if changed is None and touched is not None and (same_list or follows) and len(touched) * W.COST < old:
            changed = located = self._located(tasks, touched, old)
            if located is not None:     # (a write the page does not count, as a release of its files: left)
                changed = [i for i in located if not self._same(i, tasks[i])]
        if changed is None:
            self._upto = self._ids = None       # (runs may change where a task was replaced: looked at again)
            changed = (self._and_holds(tasks, compress(range(old), map(ne, map(_states, tasks), self._state))) if same_list
                       else self._replaced_or_moved_on(tasks, before) if follows else self.behind(tasks))
        elif located is None:
            self._upto = self._ids = None
            changed = sorted({i for i in changed if i < old})
        grow = len(tasks) - old
        if grow:
            for lst in (self._state, self._since, self._run, self._job, self._seg, self._ds, self._end, self._time):
                lst.extend([None] * grow)
            if self._ids is not None:
                self._ids.extend(W.ids_of(tasks[old:]))
        for i in changed:
            self._take(i)
        for i in chain(changed, range(old, len(tasks))):
            self._put(i, tasks[i])
        if grow and self._upto == old:      # (the last stretch goes on, or more begin, up to STRETCHES)
            more, self._upto = W.stretches(self._run, old - 1, W.STRETCHES - len(self._starts) + 1)
            self._starts += more[1:]
        self.n = len(tasks)
        self.version += len(changed) + grow
        return len(changed if located is None else located) + grow

    def adopt(self, tasks) -> None:
        """Take ``tasks`` for the list counted (a tally saved by another process for the same
        generation): the ``touched`` of the next ``sync`` are then its changes since."""
        self._list = tasks

    def behind(self, tasks) -> list[int]:
        """The positions whose state, since, run, job or segment differ from what was counted
        (one pass: each task read once)."""
        had = zip(self._state, self._since, self._run, self._job, self._seg)
        return self._and_holds(tasks, compress(range(self.n), map(ne, map(_counted, tasks), had)))

    def _and_holds(self, tasks, found) -> list[int]:
        """``found`` and the positions whose hold moved (it keeps the state: a pass, ~20 ms at 1M)."""
        found, moved = list(found), self.held.symmetric_difference(compress(range(self.n), map(_helds, tasks)))
        return sorted(moved.union(found)) if moved else found

    def unlike(self, tasks) -> list[int]:
        """The positions counted whose task differs in any field the tally counts by (``_same``):
        what a recount would count otherwise (~0.4 s at 1,000,000 tasks, against ~2.1 s to count
        them all)."""
        same = self._same
        return [i for i, t in zip(range(self.n), tasks) if not same(i, t)]

    def _replaced_or_moved_on(self, tasks, before) -> list[int]:
        """The positions of ``tasks``, made of ``before`` (the list counted) position by position,
        whose task is another object (another writer's version: counted again whole) or whose
        state differs from what was counted (a task changed in place): what a pass over the
        states finds in the same list, without reading each task's since, run, job and segment
        as after a read of the file (~0.3 s at 1,000,000 tasks, a round after another writer)."""
        return self._and_holds(tasks, compress(range(self.n), map(or_, map(is_not, tasks, before),
                                                                  map(ne, map(_states, tasks), self._state))))

    def _located(self, tasks, touched, old: int) -> list[int] | None:
        if self._upto is None:
            self._starts, self._upto = W.stretches(self._run)
        if self._ids is None and self._looked:      # (made at the second look: a pass over every task,
            self._ids = W.ids_of(tasks[:old])       # which a process that looks once, a oneshot, is spared)
        self._looked = True
        found = W.positions(tasks, self._run, self._upto, old, touched, self._ids, self._starts)
        return None if found is None else sorted(set(found))

    def _build(self, tasks) -> None:
        """Everything counted at once (the first page of a process, or after a purge)."""
        n = self.n = len(tasks)
        self.version += n
        st = self._state = list(map(_states, tasks))
        self._since = list(map(_sinces, tasks))
        runs = self._run = list(map(_runs, tasks))
        jobs = self._job = list(map(_jobs, tasks))
        self._seg = list(map(_segs, tasks))
        self._count_segments(st)
        self._ds = list(map(dataset_of, map(_metas, tasks)))
        where: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(st):          # one pass (a C-speed pass per state costs more)
            where[s].append(i)
        self.counts = Counter({s: len(m) for s, m in where.items()})      # (not another pass)
        self.members.update((s, set(m)) for s, m in where.items() if s not in BULK)
        for s, m in where.items():
            self.by_job[s] = Counter(map(jobs.__getitem__, m))
            self.by_dataset[s] = Counter(map(self._ds.__getitem__, m))
            self.runs[s] = RunSet.of(map(runs.__getitem__, m))
            if s in LISTED:
                self.ordered[s] = SortedBag(by_fields(list(zip(map(runs.__getitem__, m), map(jobs.__getitem__, m), m))),
                                            presorted=True)
        self._end, self._time = [None] * n, [None] * n
        ok: list = []
        bad: list = []
        for s in S.TERMINAL:
            pos = where.get(s, [])
            ts = list(map(tasks.__getitem__, pos))
            if s in RATE_STATES:
                ends = [t.finished_at or t.since or None for t in ts]
                list(map(self._end.__setitem__, pos, ends))
                (ok if s == S.COMPLETED else bad).extend(filter(None, ends))
            if s == S.COMPLETED:
                ran = [(t.finished_at - t.started_at, t.run) if t.started_at and t.finished_at
                       and t.finished_at >= t.started_at else None for t in ts]
                list(map(self._time.__setitem__, pos, ran))
                self.times = SortedBag(by_fields(list(filter(None, ran))), presorted=True)
            if s in S.PROBLEM:
                for i, t in zip(pos, ts):
                    self._ended(i, t)
        self.ends_ok, self.ends_bad = SortedBag(ok), SortedBag(bad)
        self.retried = set(compress(range(n), map(_pasts, tasks)))
        self.held = set(compress(range(n), map(_helds, tasks)))

    def _count_segments(self, st: list) -> None:
        """The states of every run's segment tasks (none: one C-speed pass finds that out)."""
        segs = self._seg
        if segs.count(None) == len(segs):
            return
        for i in compress(range(len(segs)), map(is_not, segs, repeat(None))):
            self.segmented[(self._run[i], self._job[i])][st[i]] += 1

    def _ended(self, i: int, t) -> tuple:
        """Note what a task in an end state counts for (rate, run times, problem group)."""
        st = t.state
        e, ran = self._end[i], self._time[i] = end_of(t), run_time_of(t)
        if st in S.PROBLEM:
            k = self._pkey[i] = problem_key(t)
            self.groups[k].add((t.run, t.job, i))
            self.group_runs[k].add(t.run)
        return e, ran

    def _same(self, i: int, t) -> bool:
        """Is ``t`` counted at ``i`` already as it is now (it was written, but not in a field the
        page counts: the files of a completed task released)? Counting it again would leave the
        same totals (~1 us here against ~8 us to take it out and put it back at 1,000,000 tasks,
        where a round writes 9,000 such tasks beside its 10,000 changes of state)."""
        st = t.state
        if (st != self._state[i] or t.since != self._since[i] or t.run != self._run[i] or t.job != self._job[i]
                or t.seg != self._seg[i] or bool(t.past) != (i in self.retried) or t.held != (i in self.held)
                or dataset_of(t.meta) != self._ds[i]):
            return False
        return st not in S.TERMINAL or (end_of(t) == self._end[i] and run_time_of(t) == self._time[i]
                                        and (st not in S.PROBLEM or problem_key(t) == self._pkey.get(i)))

    def _take(self, i: int) -> None:
        st, run = self._state[i], self._run[i]
        self.counts[st] -= 1
        self.by_job[st][self._job[i]] -= 1
        self.by_dataset[st][self._ds[i]] -= 1
        if st not in BULK:
            self.members[st].discard(i)
        self.runs[st].remove(run)
        if st in LISTED:
            self.ordered[st].remove((run, self._job[i], i))
        k = self._pkey.pop(i, None)
        if k is not None:
            self.groups[k].remove((run, self._job[i], i))
            self.group_runs[k].remove(run)
            if not self.groups[k]:
                del self.groups[k], self.group_runs[k]
        self.retried.discard(i)
        self.held.discard(i)
        if self._seg[i] is not None:
            c = self.segmented[(run, self._job[i])]
            c[st] -= 1
            if not +c:
                del self.segmented[(run, self._job[i])]
        e = self._end[i]
        if e is not None:
            (self.ends_ok if st == S.COMPLETED else self.ends_bad).remove(e)
        if self._time[i] is not None:
            self.times.remove(self._time[i])

    def _put(self, i: int, t) -> None:
        st, run, job = t.state, t.run, t.job
        ds = dataset_of(t.meta)
        self._state[i], self._since[i], self._run[i], self._job[i], self._ds[i] = st, t.since, run, job, ds
        if self._ids is not None:
            self._ids[i] = id(t)
        seg = self._seg[i] = t.seg
        if seg is not None:
            self.segmented[(run, job)][st] += 1
        self.counts[st] += 1
        self.by_job[st][job] += 1
        self.by_dataset[st][ds] += 1
        if st not in BULK:
            self.members[st].add(i)
        self.runs[st].add(run)
        if st in LISTED:
            self.ordered[st].add((run, job, i))
        if t.past:
            self.retried.add(i)
        if t.held:
            self.held.add(i)
        e, ran = self._ended(i, t) if st in S.TERMINAL else (None, None)
        self._end[i], self._time[i] = e, ran
        if e:
            (self.ends_ok if st == S.COMPLETED else self.ends_bad).add(e)
        if ran:
            self.times.add(ran)

    # ---- what the page shows -------------------------------------------------------

    def progress(self, now: float, window: float = 6 * HOUR) -> Progress:
        """Completed of total, the recent rate of ends, an estimate of the end, the failure rate.

        The rate is taken over the last ``window`` seconds (or since the first end, if later),
        so a production that slows down shows it within hours; the estimate is the pending
        tasks at that rate, but those held where a hold stops them (they wait for a person).
        """
        c = +self.counts
        p = Progress(total=self.n, counts=c, done=c[S.COMPLETED] + c[S.SKIPPED],
                     finished=sum(c[s] for s in S.TERMINAL), pending=sum(c[s] for s in S.ACTIVE),
                     problems=sum(c[s] for s in S.PROBLEM), held=sum(self._state[i] in S.HELD_WAITS for i in self.held))
        since = now - window
        ok, bad = self.ends_ok.count_from(since), self.ends_bad.count_from(since)
        p.last_hour = self.ends_ok.count_from(now - HOUR) + self.ends_bad.count_from(now - HOUR)
        firsts = [x for x in (self.ends_ok.first_from(since), self.ends_bad.first_from(since)) if x is not None]
        if ok + bad:
            span = max(now - min([now, *firsts]), 10 * 60.0)     # a burst of ends is not a rate
            p.rate_per_hour = (ok + bad) / span * HOUR
            p.failure_rate = bad / (ok + bad)
            if p.pending > p.held:
                p.eta_s = (p.pending - p.held) / p.rate_per_hour * HOUR
        return p

    def problem_groups(self, tasks) -> list[ProblemGroup]:
        """Tasks that ended badly, grouped by state, failure class and reason, biggest group
        first; the retry policy's word is that of the group's first task (by run)."""
        out = []
        for k, m in self.groups.items():
            first = tasks[m[0][2]]
            runs = self.group_runs[k]
            out.append(ProblemGroup(*k, runs, first.past[-1].retry if first.past else ""))
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
        if not (n := len(self.times)):
            return 0.0, []
        pos = q * (n - 1)
        lo = int(pos)
        a, b = self.times[lo][0], self.times[min(lo + 1, n - 1)][0]
        limit = a + (b - a) * (pos - lo)
        return limit, [x for x in self.times.largest(show) if x[0] > limit]

    def breakdown(self, by: str) -> dict[str, Counter]:
        """Counts per state for each job definition (``by='job'``) or dataset."""
        out: dict[str, Counter] = defaultdict(Counter)
        for state, per in (self.by_job if by == "job" else self.by_dataset).items():
            for key, n in per.items():
                if n:
                    out[key][state] += n
        return dict(sorted(out.items()))

    def listed(self, tasks, cap: int, per_group: int = 100) -> tuple[list, dict[str, tuple[int, str]]]:
        """The tasks listed one row each, at most ``cap``: problems first (biggest group first,
        ``per_group`` of each), then the active ones, by run; and per state, (runs, ranges)
        of the tasks left out. Only the tasks listed are looked at."""
        shown: list = []
        taken: dict[str, Counter] = defaultdict(Counter)
        heads = [(k[0], self.groups[k], per_group) for k in sorted(self.groups, key=lambda k: (-len(self.groups[k]), k))]
        heads += [(s, self.ordered[s], cap) for s in LISTED if self.ordered.get(s)]
        for state, bag, most in heads:
            first = bag.head(max(0, min(most, cap - len(shown))))
            shown += first
            taken[state].update(r for r, _, _ in first)
        over = {}
        for s in set(taken):
            if self.counts[s] > sum(taken[s].values()):
                over[s] = self.runs[s].without(taken[s])
        return [tasks[i] for _, _, i in shown], over

    def in_state(self, tasks, state: str) -> list:
        pos = _where(self._state, state) if state in BULK else self.members.get(state, ())
        # by run and job, ties (a run's segment tasks) in the list's order
        return sorted(map(tasks.__getitem__, sorted(pos)), key=attrgetter("run", "job"))

    def first_retried(self, tasks, n: int) -> list:
        return [tasks[i] for i in heapq.nsmallest(n, self.retried)]


def _where(states: list, state: str) -> list[int]:
    """The positions of ``state`` in ``states`` (a pass at C speed)."""
    return list(compress(range(len(states)), map(state.__eq__, states)))
