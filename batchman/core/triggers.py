"""Trigger decisions over job definitions: which tasks a trigger creates, whether a task waits
for the job it comes ``after:``, when a run's data has settled, which runs a filter selects.

Pure like the rest of the core: the daemon observes the disk and the clock and passes them in.
The definitions themselves are parsed and checked in ``batchman.core.jobs``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from itertools import compress, count, groupby
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Iterable, Mapping

from batchman.core import model
from batchman.core import states as S
from batchman.core.model import Segment, Task, task_key

if TYPE_CHECKING:
    from batchman.core.jobs import JobDef, Jobs

ON_ADD = "on-add"
MANUAL = "manual"
DATA_COMPLETE = "data-complete"
FIRST_SEGMENT = "first-segment"
AFTER = "after"
TRIGGERS = (ON_ADD, MANUAL, DATA_COMPLETE, FIRST_SEGMENT, AFTER)
WATCHING = (DATA_COMPLETE, FIRST_SEGMENT)


@dataclass(frozen=True)
class Gate:
    """What a NEW task of a job with a dependency or without staging may do."""
    wait: str = ""          # why it waits ('' = it may go)
    stuck: bool = False     # waits for something only a person can change (failed upstream, ...)
    inputs: tuple[str, ...] = ()
    staging: bool = True    # False: straight to submission, no segments
    split: bool = False     # a per: segment job's run task: becomes one task per segment found


SPLIT_GATE = Gate(split=True)
_RUN, _JOB, _SEG, _STATE = map(attrgetter, ("run", "job", "seg", "state"))
_KEY = attrgetter("run", "job", "seg")
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_BAD = S.TERMINAL - {S.COMPLETED, S.SKIPPED}     # a segment that ended otherwise blocks its run's merge
SPLIT = "split"     # the journal's word for a run task replaced by its segment tasks


def gates(tasks: list[Task], jobs: Jobs, among: list[Task] | None = None,
          scan: Scan | None = None) -> dict[str, Gate]:
    """Per NEW task key whose job comes after another, needs no staging or runs per segment:
    may it go, with what. Called twice a round over every task (1,000,000 in a campaign of one
    job per raw file): the NEW ones are found at C speed, and the tasks a gate looks at are
    found by (run, job[, segment]), not by a key string made for each task. ``among``: tasks of
    ``tasks`` that hold every NEW one, in the same order (the live ones: ~40 % at 1,000,000
    tasks), where the NEW ones are looked for. ``scan``: what was found over ``tasks`` in an
    earlier call, kept (:class:`Scan`; default: looked for afresh)."""
    if not jobs.explicit:
        return {}
    special = {n for n, d in jobs.defs.items() if d.trigger == AFTER or not d.needs_staging or d.per_segment}
    out: dict[str, Gate] = {}
    idx: dict[tuple, Task] | None = None
    scan = (Scan(keep=False) if scan is None else scan).of(tasks)
    among = tasks if among is None else among
    for t in compress(among, map(S.NEW.__eq__, map(_STATE, among))):
        d = jobs.defs.get(t.job)
        if d is None:
            out[t.key] = Gate(wait=f"job {t.job!r} is not defined in batchman.yaml", stuck=True)
            continue
        if t.job not in special:
            continue
        if d.per_segment and t.seg is None:
            out[t.key] = SPLIT_GATE
        elif d.trigger != AFTER:
            if not d.needs_staging:
                out[t.key] = Gate(staging=False)
        elif d.after_all:
            out[t.key] = scan.merge(d, t.run)
        else:
            if idx is None:
                idx = dict(zip(map(_KEY, tasks), tasks))
            up = jobs.defs.get(d.after)
            out[t.key] = _after_gate(d, idx.get((t.run, d.after, t.seg if up and up.per_segment else None)))
    return out


class Scan:
    """What gates() and to_create() look for over every task (1,000,000 in a campaign of one job
    per raw file: ~0.3 s a round): the (run, job) pairs in the list's order, and the places of a
    job's tasks by run (the segment tasks of a merge step). Kept across calls (the daemon holds
    one) while the list is the same object and only grew, as the daemon's own copy does between
    its writes: the tasks appended since are added. A list that is another object (a status file
    read again, another writer's change replayed, a split), that is shorter, or whose last task
    seen is no longer in its place (an undone write) is looked at afresh. Places, not tasks: a
    task changed in place is read as it is now, and what its place says (run, job) never changes
    (a task's key is fixed; a list is only appended to, changes.apply makes a new one).

    A merge step's gate is kept too (``keep``), by run: made again once a task of the run was
    changed in place (``model.WATCHED`` counts that), replaced by another writer's (``moved``)
    or appended; in a campaign of one job per raw file each waiting merge step would read its
    200 segment tasks' states every round (~0.2 s at 1,000,000 tasks)."""

    def __init__(self, keep: bool = True):
        self.keep = keep
        self._reset(None)

    def _reset(self, tasks: list[Task] | None) -> None:
        self.tasks, self.n, self.last = tasks, 0, None
        self._pairs: dict[tuple[int, str], None] | None = None
        self._groups: dict[str, dict[int, array]] = {}
        self._gates: dict[tuple[str, int], tuple[JobDef, int, Gate]] = {}    # (job, run) -> (its def, count, gate)

    def of(self, tasks: list[Task]) -> "Scan":
        """This scan, brought up to ``tasks`` (the tasks appended since added)."""
        n = len(tasks)
        if tasks is not self.tasks or n < self.n or (self.n and tasks[self.n - 1] is not self.last):
            self._reset(tasks)
        if n > self.n:
            new, start = tasks[self.n:] if self.n else tasks, self.n
            if self._pairs is not None:
                self._pairs.update(dict.fromkeys(zip(map(_RUN, new), map(_JOB, new))))
            if self._gates:
                self._forget(set(map(_RUN, new)))
            for job, runs in self._groups.items():
                _places(runs, new, start, job)
            self.n, self.last = n, tasks[-1]
        return self

    def moved(self, was: list[Task], now: list[Task], pairs: Iterable[tuple[Task, Task]]) -> None:
        """List ``now`` is list ``was`` with tasks replaced in their places and others appended
        (another writer's records replayed, none of which removed a task: store/replays.py says
        so; ``pairs``: each task replaced and its new version), so what was found in ``was``
        holds for ``now`` (its appended tasks are added at the next call) instead of being
        looked for afresh after every `batchman` command that writes; the gates of the runs of
        the replaced tasks are made again."""
        if self.tasks is was and len(now) >= self.n:
            self.tasks, self.last = now, now[self.n - 1] if self.n else None
            if self._gates:
                self._forget({new.run for _, new in pairs})

    def _forget(self, runs: set[int]) -> None:
        for k in [k for k in self._gates if k[1] in runs]:
            del self._gates[k]

    def merge(self, d: JobDef, run: int) -> Gate:
        """The gate of ``run``'s NEW task of merge step ``d`` (merge_gate), kept (see above)."""
        if not self.keep:
            return merge_gate(d, self.group(run, d.after))
        had = self._gates.get((d.name, run))
        if had is not None and had[0] is d and model.WATCHED.get(run) == had[1]:
            return had[2]
        count = model.WATCHED.setdefault(run, 0)
        gate = merge_gate(d, self.group(run, d.after))
        self._gates[d.name, run] = (d, count, gate)
        return gate

    def pairs(self) -> dict[tuple[int, str], None]:
        """The (run, job) of every task, in the list's order (a dict: no value)."""
        if self._pairs is None:
            self._pairs = dict.fromkeys(zip(map(_RUN, self.tasks), map(_JOB, self.tasks)))
        return self._pairs

    def group(self, run: int, job: str) -> list[Task]:
        """The tasks of ``run`` and ``job`` in the list's order (a merge step's segment tasks)."""
        runs = self._groups.get(job)
        if runs is None:
            runs = self._groups[job] = {}
            _places(runs, self.tasks, 0, job)
        places = runs.get(run)
        return list(map(self.tasks.__getitem__, places)) if places else []


def _places(runs: dict[int, array], tasks: list[Task], start: int, job: str) -> None:
    """Add the places of ``job``'s tasks among ``tasks`` (the first at ``start``) by run."""
    mine = compress(zip(map(_RUN, tasks), count(start)), map(job.__eq__, map(_JOB, tasks)))
    for run, group in groupby(mine, _FIRST):        # (a run's tasks mostly follow each other)
        have = runs.get(run)
        if have is None:
            runs[run] = array("q", map(_SECOND, group))
        else:
            have.extend(map(_SECOND, group))


def _after_gate(d: JobDef, up: Task | None) -> Gate:
    if up is None:
        return Gate(wait=f"waiting for {d.after} (not in the list)", stuck=True)
    if up.state == S.COMPLETED:
        return Gate(inputs=tuple(up.outputs), staging=d.needs_staging)
    return Gate(wait=f"waiting for {d.after} ({up.state})", stuck=up.state in S.TERMINAL)


def merge_gate(d: JobDef, segs: list[Task]) -> Gate:
    """``after: reco, all-segments``: go once every segment task of the run completed (skipped ones
    are left out), with their outputs in segment order; one that failed for good blocks it. (The
    states counted at C speed: every NEW merge step's segments are looked at twice a round.)"""
    if not segs:
        return Gate(wait=f"waiting for {d.after} (not in the list)", stuck=True)
    numbers = list(map(_SEG, segs))
    if None in numbers:
        run_task = segs[numbers.index(None)]
        if run_task.state in S.TERMINAL:
            return Gate(wait=f"waiting for {d.after} ({run_task.state}: {run_task.error or run_task.reason})", stuck=True)
        return Gate(wait=f"waiting for {d.after} (its segments are not found yet)")
    states = list(map(_STATE, segs))
    done, left = states.count(S.COMPLETED), len(states) - states.count(S.SKIPPED)
    if not left:
        return Gate(wait=f"waiting for {d.after}: every segment was skipped", stuck=True)
    if done == left:
        ok = sorted(compress(segs, map(S.COMPLETED.__eq__, states)), key=_SEG)
        return Gate(inputs=tuple(o for t in ok for o in t.outputs), staging=d.needs_staging)
    counted = f"{done}/{left} segments completed"
    if any(map(_BAD.__contains__, states)):
        bad = sorted(compress(segs, map(_BAD.__contains__, states)), key=_SEG)
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        return Gate(wait=f"waiting for {d.after}: {counted}; segment {bad[0].seg} {bad[0].state}{more} "
                         f"(restart or skip it)", stuck=True)
    return Gate(wait=f"waiting for {d.after}: {counted}")


def stuck(tasks: list[Task], jobs: Jobs, scan: Scan | None = None) -> frozenset[str]:
    """Keys of tasks no daemon can move on (their upstream ended unsuccessfully)."""
    return frozenset(k for k, g in gates(tasks, jobs, scan=scan).items() if g.stuck)


# ---- triggers --------------------------------------------------------------------------
def to_create(tasks: list[Task], jobs: Jobs, ready: Iterable[tuple[int, str, str]] = (),
              scan: Scan | None = None) -> list[tuple[int, str, str]]:
    """(run, job, why) of tasks to create now: ``ready`` triggers that have no task yet, plus
    the ``after:`` dependents of every task whose dependent is missing. Called under the lock
    with the file's tasks, so a (run, job) is never created twice. Each round, over every task
    (1,000,000 in a campaign of one job per raw file): the (run, job) pairs are taken at C
    speed, and the dependents looked for once a pair, not once a task; ``scan``: the pairs kept
    from an earlier call (:class:`Scan`)."""
    if not jobs.explicit:
        return []
    pairs = (Scan() if scan is None else scan).of(tasks).pairs()     # (in the list's order)
    have = set(pairs)     # a per: segment job's run is taken once any of its tasks exists
    out: list[tuple[int, str, str]] = []

    def want(run: int, job: str, why: str) -> None:
        if (run, job) not in have:
            have.add((run, job))
            out.append((run, job, why))
            for dep in jobs.dependents(job):
                want(run, dep, f"after {job}")

    for run, job, why in ready:
        want(run, job, why)
    if any(d.trigger == AFTER for d in jobs.defs.values()):
        after = {j: jobs.dependents(j) for j in {j for _, j in pairs}}
        for run, job in pairs:
            for dep in after[job]:
                want(run, dep, f"after {job}")
    return out


def split(run_task: Task, found: list[tuple[int, str]], have: Mapping[str, Task], now: float,
          late: bool = False) -> list[Task]:
    """The segment tasks that replace the run task of a per: segment job: one per (number, path)
    found, each with its own file, but those already in ``have`` (by key). ``late``: files found
    after the run was split (``late_files``), their reason says so."""
    dup = set(left_out(found))     # two files of one number (run_1.dat.01, run_1.dat.1): the first one
    found = [f for f in found if f[1] not in dup]
    n = len(found)
    out = []
    for i, (seg, path) in enumerate(found):
        if task_key(run_task.run, run_task.job, seg) in have:
            continue
        out.append(Task(run=run_task.run, job=run_task.job, seg=seg, since=now, added_at=now,
                        reason=f"segment {seg}: its file arrived after {run_task.key} was split" if late
                        else f"segment {seg} ({i + 1} of {n}) of {run_task.key}", segments=[Segment(path)],
                        priority=run_task.priority, meta=run_task.meta))
    return out


def late_files(run: int, job: str, found: list[tuple[int, str]], have: Mapping[str, Task]) -> list[tuple[int, str]]:
    """The files of a split run (``run``, per: segment ``job``) whose segment number has no task
    in ``have``: arrived after the split. Looked at once more when the run's all-segments step
    would start, so that it waits for them instead of leaving them out."""
    dup = set(left_out(found))
    return [(seg, path) for seg, path in found if path not in dup and task_key(run, job, seg) not in have]


def left_out(found: list[tuple[int, str]]) -> list[str]:
    """The files ``split`` leaves out: a second (or later) file with a segment number already
    taken (run_1.dat.1 and run_1.dat.01), in the order found."""
    taken: set[int] = set()
    out = []
    for seg, path in found:
        if seg in taken:
            out.append(path)
        taken.add(seg)
    return out


def split_why(found: list[tuple[int, str]]) -> str:
    """The journal's words for a split: how many segment tasks, and which files were left out."""
    dup = left_out(found)
    why = f"split into {len(found) - len(dup)} segment task(s)"
    return why + (f"; left out, their segment number taken by another file: {', '.join(dup)}" if dup else "")


Sig = tuple   # what a run's files looked like: ((name, size, mtime_ns), ...)


def settle(prev: Mapping[int, tuple[Sig, float]], seen: Mapping[int, Sig], now: float,
           settle_s: float) -> tuple[dict[int, tuple[Sig, float]], list[int]]:
    """Track runs' file signatures; a run is ready once its signature has not changed for
    ``settle_s`` seconds. Returns (new memory, ready runs). A run not seen is forgotten."""
    mem: dict[int, tuple[Sig, float]] = {}
    ready = []
    for run, sig in seen.items():
        if not sig:
            continue
        old = prev.get(run)
        since = old[1] if old is not None and old[0] == sig else now
        mem[run] = (sig, since)
        if now - since >= settle_s:
            ready.append(run)
    return mem, sorted(ready)


def watched_runs(d: JobDef, found: Iterable[int], listed: Iterable[int]) -> list[int]:
    """The runs a watching job looks at: found in the directory, limited by its ``watch``."""
    if d.watch == "listed":
        keep = set(listed)
        return [r for r in found if r in keep]
    if d.watch_runs is not None:
        return [r for r in found if r in d.watch_runs]
    return list(found)


def signature(d: JobDef, files: list[tuple[str, int, int]]) -> Sig:
    """What must stay unchanged: every segment (data-complete) or the first one (first-segment)."""
    if d.trigger == FIRST_SEGMENT:
        return tuple(files[:1])
    return tuple(files)


# ---- datasets --------------------------------------------------------------------------
def matches(meta: Mapping[str, str], where: Mapping[str, Iterable[str]]) -> bool:
    """Every key of ``where`` has one of its values in ``meta`` (no filter: everything)."""
    return all(str(meta.get(k, "")) in set(vs) for k, vs in where.items())


def parse_where(datasets: Iterable[str], wheres: Iterable[str]) -> dict[str, list[str]]:
    """--dataset X (repeatable) and --where KEY=VALUE (repeatable) -> {key: [values]}.
    Values of one key are alternatives; different keys must all match."""
    out: dict[str, list[str]] = {}
    for d in datasets:
        out.setdefault("dataset", []).append(d)
    for w in wheres:
        k, sep, v = w.partition("=")
        if not sep or not k.strip():
            raise ValueError(f"{w!r} is not KEY=VALUE (example: --where quality=gold)")
        out.setdefault(k.strip(), []).append(v.strip())
    return out
