"""Issue 18: the trigger passes made over every task each round (the gates of NEW tasks in
observe and at the end of the round, the tasks to create under the lock) find what they did
when they made a key string for each task, over random campaigns of several job shapes: the
same gates, the same tasks to create in the same order. They were ~1.2 s, ~2 s and ~1.2 s a
round at 1,000,000 tasks of the per-file example's shape (benchmarks/bench_triggers.py)."""

from __future__ import annotations

import random

import pytest

from batchman.core import jobs as J
from batchman.core import model
from batchman.core import plan as P
from batchman.core import states as S
from batchman.core import triggers as T
from batchman.core.model import Task, task_key

VALUES = {"batch.command": "./analyze", "batch.args": "{run} {files}"}
SHAPES = [
    dict(reco={"per": "segment", "outputs": ["r{run}_{segment}"]}, merge={"trigger": "after: reco, all-segments"}),
    dict(reco={}, hist={"trigger": "after: reco"}, plot={"trigger": "after: hist", "needs_staging": False}),
    dict(reco={"per": "segment"}, calib={"per": "segment", "trigger": "after: reco"},
         merge={"trigger": "after: calib, all-segments"}),
    dict(reco={}, skim={"needs_staging": False}),
]


# ---- the passes as they were (a key string made for each task), the oracle --------------------
def gates_before(tasks, jobs):
    if not jobs.explicit:
        return {}
    special = {n for n, d in jobs.defs.items() if d.trigger == T.AFTER or not d.needs_staging or d.per_segment}
    out, idx, groups = {}, None, None
    for t in tasks:
        if t.state != S.NEW:
            continue
        d = jobs.defs.get(t.job)
        if d is None:
            out[t.key] = T.Gate(wait=f"job {t.job!r} is not defined in batchman.yaml", stuck=True)
            continue
        if t.job not in special:
            continue
        if d.per_segment and t.seg is None:
            out[t.key] = T.SPLIT_GATE
        elif d.trigger != T.AFTER:
            if not d.needs_staging:
                out[t.key] = T.Gate(staging=False)
        elif d.after_all:
            if groups is None:
                wanted = {x.after for x in jobs.defs.values() if x.after_all}
                groups = {}
                for x in tasks:
                    if x.job in wanted:
                        groups.setdefault(x.run_key, []).append(x)
            out[t.key] = merge_before(d, groups.get(task_key(t.run, d.after), []))
        else:
            if idx is None:
                idx = {x.key: x for x in tasks}
            up = jobs.defs.get(d.after)
            out[t.key] = T._after_gate(d, idx.get(task_key(t.run, d.after, t.seg if up and up.per_segment else None)))
    return out


def merge_before(d, segs):
    if not segs:
        return T.Gate(wait=f"waiting for {d.after} (not in the list)", stuck=True)
    run_task = next((t for t in segs if t.seg is None), None)
    if run_task is not None:
        if run_task.state in S.TERMINAL:
            return T.Gate(wait=f"waiting for {d.after} ({run_task.state}: {run_task.error or run_task.reason})", stuck=True)
        return T.Gate(wait=f"waiting for {d.after} (its segments are not found yet)")
    segs = sorted(segs, key=lambda t: t.seg)
    done = [t for t in segs if t.state == S.COMPLETED]
    bad = [t for t in segs if t.state in S.TERMINAL and t.state not in (S.COMPLETED, S.SKIPPED)]
    left = sum(1 for t in segs if t.state != S.SKIPPED)
    if not left:
        return T.Gate(wait=f"waiting for {d.after}: every segment was skipped", stuck=True)
    if len(done) == left:
        return T.Gate(inputs=tuple(o for t in done for o in t.outputs), staging=d.needs_staging)
    counted = f"{len(done)}/{left} segments completed"
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        return T.Gate(wait=f"waiting for {d.after}: {counted}; segment {bad[0].seg} {bad[0].state}{more} "
                           f"(restart or skip it)", stuck=True)
    return T.Gate(wait=f"waiting for {d.after}: {counted}")


def to_create_before(tasks, jobs, ready=()):
    if not jobs.explicit:
        return []
    have = {t.run_key for t in tasks}
    out = []

    def want(run, job, why):
        k = task_key(run, job)
        if k not in have:
            have.add(k)
            out.append((run, job, why))
            for dep in jobs.dependents(job):
                want(run, dep, f"after {job}")

    for run, job, why in ready:
        want(run, job, why)
    if any(d.trigger == T.AFTER for d in jobs.defs.values()):
        for t in list(tasks):
            for dep in jobs.dependents(t.job):
                want(t.run, dep, f"after {t.job}")
    return out


# ---- random campaigns ---------------------------------------------------------------------------
def campaign(rnd: random.Random, shape: dict) -> list[Task]:
    names = list(shape) + ["gone"]          # ("gone": a job no longer defined)
    tasks = []
    for run in rnd.sample(range(1000, 1040), rnd.randint(0, 25)):       # runs out of order too
        for job in rnd.sample(names, rnd.randint(0, len(names))):
            segs = [None] if not shape.get(job, {}).get("per") or rnd.random() < .2 else \
                rnd.sample(range(6), rnd.randint(1, 5))
            for seg in segs:
                st = rnd.choice([S.NEW, S.NEW, S.COMPLETED, S.COMPLETED, S.RUNNING, S.FAILED, S.SKIPPED,
                                 S.ERROR, S.UNSTAGED])
                tasks.append(Task(run=run, job=job, seg=seg, state=st, error=rnd.choice(["", "no segment found"]),
                                  outputs=(f"o{run}.{job}.{seg}",) if st == S.COMPLETED else ()))
    rnd.shuffle(tasks) if rnd.random() < .3 else None      # (a late segment appended after everything)
    return list({t.key: t for t in tasks}.values())


@pytest.mark.parametrize("seed", range(40))
def test_the_trigger_passes_find_what_a_key_for_each_task_found(seed):
    rnd = random.Random(seed)
    shape = SHAPES[seed % len(SHAPES)]
    jobs, problems = J.parse(shape, VALUES)
    assert problems == []
    for _ in range(5):
        tasks = campaign(rnd, shape)
        ready = [(rnd.randint(1000, 1045), rnd.choice(list(shape)), "data") for _ in range(rnd.randint(0, 4))]
        assert J.gates(tasks, jobs) == gates_before(tasks, jobs)
        assert list(J.gates(tasks, jobs)) == list(gates_before(tasks, jobs))
        assert list(J.gates(tasks, jobs, among=P.live(tasks)).items()) == list(gates_before(tasks, jobs).items())
        assert J.to_create(tasks, jobs, ready) == to_create_before(tasks, jobs, ready)
        assert J.stuck(tasks, jobs) == frozenset(k for k, g in gates_before(tasks, jobs).items() if g.stuck)


# ---- what the daemon keeps across rounds (T.Scan) ---------------------------------------------
STATES = [S.NEW, S.COMPLETED, S.RUNNING, S.FAILED, S.SKIPPED, S.ERROR, S.UNSTAGED]


def step(rnd: random.Random, tasks: list[Task], shape: dict) -> tuple[list[Task], str]:
    """One change to the list as the store and the daemon make them; the list after it (the
    same object when changed in place) and what was done."""
    what = rnd.choice(["state", "update", "append", "replayed", "undone", "split", "purged", "reread", "none"])
    if what == "state" and tasks:          # a decision applied in place
        for t in rnd.sample(tasks, rnd.randint(1, min(5, len(tasks)))):
            t.state = rnd.choice(STATES)
            t.outputs = (f"o{t.key}",) if t.state == S.COMPLETED else ()
        return tasks, what
    if what == "update" and tasks:         # ... several fields at once (decide.apply's model.update)
        for t in rnd.sample(tasks, rnd.randint(1, min(5, len(tasks)))):
            st = rnd.choice(STATES)
            model.update(t, {"state": st, "outputs": (f"u{t.key}",) if st == S.COMPLETED else (),
                             "error": rnd.choice(["", "it broke"])})
        return tasks, what
    if what == "append":                   # tasks created (a trigger, a late file, `batchman add`)
        more = [t for t in campaign(rnd, shape) if t.key not in {x.key for x in tasks}][:rnd.randint(1, 6)]
        tasks += more
        return tasks, what
    if what == "replayed" and tasks:       # another writer's change: a new list, changed tasks are copies
        swap = {id(t) for t in rnd.sample(tasks, rnd.randint(1, min(4, len(tasks))))}
        now = [Task(run=t.run, job=t.job, seg=t.seg, state=rnd.choice(STATES)) if id(t) in swap else t
               for t in tasks]
        if rnd.random() < 0.5:             # ... with tasks it created (they go last)
            now += [t for t in campaign(rnd, shape) if t.key not in {x.key for x in tasks}][:rnd.randint(1, 4)]
        return now, what
    if what == "undone" and tasks:         # a write run ahead and undone (ahead.Undo), then made again
        n = rnd.randint(0, len(tasks) - 1)
        gone = tasks[n:]
        del tasks[n:]
        again = [Task(run=t.run, job=t.job, seg=t.seg, state=rnd.choice(STATES)) for t in gone]
        rnd.shuffle(again)
        tasks += again[:rnd.randint(0, len(again))]
        return tasks, what
    if what == "split":                    # a per: segment run task replaced by its segment tasks
        runs = [t for t in tasks if t.seg is None and shape.get(t.job, {}).get("per")]
        if runs:
            r = rnd.choice(runs)
            return [t for t in tasks if t is not r] + [Task(run=r.run, job=r.job, seg=s) for s in range(3)], what
    if what == "purged" and tasks:
        return [t for t in tasks if rnd.random() < 0.8], what
    if what == "reread":                   # the status file read again: every task a new object
        return [Task(run=t.run, job=t.job, seg=t.seg, state=t.state, outputs=t.outputs) for t in tasks], what
    return tasks, "none"


@pytest.mark.parametrize("seed", range(120))
def test_what_is_kept_across_rounds_finds_what_a_fresh_look_finds(seed):
    """The daemon keeps one Scan across its rounds (the pairs to_create looks at, the places of a
    merge step's segment tasks): after any sequence of changes the lists go through, the gates,
    the tasks to create and the stuck tasks are those the passes as they were find."""
    rnd = random.Random(seed)
    shape = SHAPES[seed % len(SHAPES)]
    jobs, _ = J.parse(shape, VALUES)
    kept, tasks, done = T.Scan(), campaign(rnd, shape), []
    for _ in range(30):
        before = tasks
        tasks, what = step(rnd, tasks, shape)
        done.append(what)
        if what == "replayed" and rnd.random() < 0.7:     # as daemon/survey.py says it when replays tell
            kept.moved(before, tasks, [(o, n) for o, n in zip(before, tasks) if o is not n])
        assert list(J.gates(tasks, jobs, scan=kept).items()) == list(gates_before(tasks, jobs).items()), done
        assert J.to_create(tasks, jobs, scan=kept) == to_create_before(tasks, jobs), done
        assert J.stuck(tasks, jobs, kept) == frozenset(k for k, g in gates_before(tasks, jobs).items() if g.stuck)


def test_a_write_undone_and_made_again_with_other_tasks_is_looked_at_afresh():
    """The same list, as long as before, but its last tasks are others: what was kept of them
    (a merge step's segments) is not taken for theirs."""
    jobs, _ = J.parse(SHAPES[0], VALUES)
    tasks = [Task(run=1, job="reco", seg=0, state=S.COMPLETED), Task(run=1, job="merge")]
    kept = T.Scan()
    assert J.gates(tasks, jobs, scan=kept)["1.merge"] == T.Gate(staging=False)      # (the merge stages nothing)
    tasks.append(Task(run=1, job="reco", seg=1, state=S.COMPLETED, outputs=("o1",)))
    assert J.gates(tasks, jobs, scan=kept)["1.merge"].inputs == ("o1",)
    del tasks[2:]
    tasks.append(Task(run=2, job="reco", seg=1, state=S.RUNNING))
    assert J.gates(tasks, jobs, scan=kept)["1.merge"].inputs == ()
    assert J.gates(tasks, jobs, scan=kept) == gates_before(tasks, jobs)


def test_a_merge_gate_kept_is_made_again_when_the_jobs_are_read_again():
    """batchman.yaml read again (a new definition of the merge step): its gate is not the one kept."""
    tasks = [Task(run=1, job="reco", seg=0, state=S.COMPLETED, outputs=("o0",)), Task(run=1, job="merge")]
    kept = T.Scan()
    jobs, _ = J.parse(SHAPES[0], VALUES)
    assert J.gates(tasks, jobs, scan=kept)["1.merge"] == T.Gate(inputs=("o0",), staging=False)
    staged = dict(SHAPES[0], merge={"trigger": "after: reco, all-segments", "needs_staging": True})
    again, _ = J.parse(staged, VALUES)
    assert J.gates(tasks, again, scan=kept)["1.merge"] == T.Gate(inputs=("o0",), staging=True)


def test_a_body_undone_makes_the_kept_merge_gate_again():
    """A write run ahead of the lock and undone (store/ahead.Undo) sets the fields back without a
    task's __setattr__: the merge gate kept while the segments looked completed is not kept."""
    from types import SimpleNamespace

    from batchman.core.model import Status
    from batchman.store import ahead
    jobs, _ = J.parse(SHAPES[0], VALUES)
    segs = [Task(run=1, job="reco", seg=i, state=S.RUNNING) for i in range(2)]
    status = Status(tasks=[*segs, Task(run=1, job="merge")])
    kept = T.Scan()
    assert J.gates(status.tasks, jobs, scan=kept)["1.merge"].wait == "waiting for reco: 0/2 segments completed"
    undo = ahead.Undo(status, segs)
    for t in segs:
        t.state, t.outputs = S.COMPLETED, (f"o{t.seg}",)
    undo.ran()
    assert J.gates(status.tasks, jobs, scan=kept)["1.merge"].inputs == ("o0", "o1")
    undo.run(SimpleNamespace(_before=None, _pending=[], _snap=object()))
    assert [t.state for t in segs] == [S.RUNNING, S.RUNNING]
    assert J.gates(status.tasks, jobs, scan=kept) == gates_before(status.tasks, jobs)
    assert J.gates(status.tasks, jobs, scan=kept)["1.merge"].wait == "waiting for reco: 0/2 segments completed"
