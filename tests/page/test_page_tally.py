"""The page's tally kept across changes says what a tally counted afresh says (issue 18).

Random productions are changed the ways a daemon and people change them (a step along the
pipeline, a failure, a restart, new tasks, a re-read of the file, a purge) and after every
change the tally kept up to date is compared with one counted from scratch; the containers
under it are compared with plain sorted lists.
"""

from __future__ import annotations

import random

import msgspec
import pytest

from batchman.core import states as S
from batchman.core.model import Attempt, Status, Task
from batchman.page import summary as SM
from batchman.page.bags import RunSet, SortedBag
from batchman.page import where as W
from batchman.page.counted import reason
from batchman.page.tally import Tally

NOW = 1_800_000_000.0
STATES = [S.NEW, S.UNSTAGED, S.STAGING, S.QUEUED, S.RUNNING, S.COMPLETED, S.FAILED, S.ERROR, S.SKIPPED, S.ABORTED]


def seen(tally: Tally, tasks: list[Task]) -> dict:
    """Everything the page reads from a tally, in plain values."""
    p = tally.progress(NOW)
    rows, over = tally.listed(tasks, cap=25, per_group=4)
    return {
        "progress": (p.total, dict(p.counts), p.done, p.pending, p.held, p.last_hour, p.rate_per_hour,
                     p.failure_rate, p.eta_s),
        "groups": [(g.state, g.cause, g.reason, len(g.runs), g.ranges, g.retry) for g in tally.problem_groups(tasks)],
        "jobs": tally.breakdown("job"), "datasets": tally.breakdown("dataset"),
        "rows": [t.key for t in rows], "over": over,
        "ranges": {s: (len(r), r.ranges()) for s, r in tally.runs.items() if r},
        "times": (tally.run_time_bins(), tally.slow_tail()),
        "retried": [t.key for t in tally.first_retried(tasks, 5)],
        "few": {s: [t.key for t in tally.in_state(tasks, s)] for s in STATES},
        "segmented": {k: +c for k, c in tally.segmented.items()},
    }


def change(rnd: random.Random, tasks: list[Task], t: Task, now: float) -> None:
    """One thing that happens to a task: a step, an end, a failure with a reason, a restart
    (a transition: its state changes; what changes while the state stays is the next test's)."""
    st = rnd.choice([s for s in STATES if s != t.state])
    t.state, t.since = st, now
    if st in (S.COMPLETED, S.FAILED):
        t.started_at, t.finished_at = now - rnd.randint(60, 9000), now
    if st in (S.FAILED, S.ERROR):
        t.error = rnd.choice(["exit 137: oom", "timeout", "node down\nmore"])
        t.failure_class = rnd.choice(["", "out-of-memory", "timeout"])
        if rnd.random() < .5:
            t.past = (*t.past, Attempt(n=len(t.past) + 1, retry=rnd.choice(["", "retry 1 of 2"])))
    if rnd.random() < .1:
        t.meta = {"dataset": rnd.choice(["Al50", "Ti50"])}


def production(rnd: random.Random, n: int) -> list[Task]:
    tasks = []
    for i in range(n):
        t = Task(run=1000 + rnd.randint(0, n), job=rnd.choice(["reco", "hist"]), added_at=NOW - 9e4,
                 seg=rnd.choice([None, None, 1, 2, 3]), held=rnd.random() < .2)   # some per: segment tasks, some held
        change(rnd, tasks, t, NOW - rnd.randint(0, 40000))
        tasks.append(t)
    return list({t.key: t for t in tasks}.values())


@pytest.mark.parametrize("seed", range(6))
def test_a_tally_kept_across_changes_equals_one_counted_afresh(seed):
    rnd = random.Random(seed)
    st = Status(tasks=production(rnd, 120))
    kept = Tally(st.tasks)
    for step in range(40):
        now = NOW + step
        what = rnd.random()
        if what < .5:                                   # the daemon changes tasks in place
            for t in rnd.sample(st.tasks, rnd.randint(1, 8)):
                change(rnd, st.tasks, t, now)
        elif what < .6:                                 # a person holds or releases tasks: the state stays
            for t in rnd.sample(st.tasks, rnd.randint(1, 8)):
                t.held = not t.held
        elif what < .75:                                # tasks added at the end
            have = {t.key for t in st.tasks}
            st.tasks += [t for t in production(rnd, 5) if t.key not in have]
        elif what < .9:                                 # another process wrote: the file read again
            st = msgspec.json.decode(msgspec.json.encode(st), type=Status)
            for t in rnd.sample(st.tasks, 3):
                change(rnd, st.tasks, t, now)
        else:                                           # a purge
            st.tasks = [t for t in st.tasks if rnd.random() < .9]
        kept.sync(st.tasks)
        assert seen(kept, st.tasks) == seen(Tally(st.tasks), st.tasks), f"step {step}"


def test_a_change_that_keeps_the_state_is_found_after_a_read_or_when_the_caller_says_so():
    """In place (the daemon's own write), only a changed state is looked for: a dataset renamed
    by hand waits for the caller's word or the live page's periodic recount; a task read
    again from the file is compared by its ``since`` too."""
    tasks = [Task(run=r, state=S.FAILED, since=NOW, error="oom") for r in range(5)]
    kept = Tally(tasks)
    tasks[2].error, tasks[2].since = "timeout", NOW + 1
    assert kept.sync(tasks) == 0
    assert kept.sync(tasks, changed=[2]) == 1 and len(kept.groups) == 2
    again = msgspec.json.decode(msgspec.json.encode(tasks), type=list[Task])
    again[3].error, again[3].since = "timeout", NOW + 2
    assert kept.sync(again) == 1 and [len(g.runs) for g in kept.problem_groups(again)] == [3, 2]


def test_tasks_moved_by_a_purge_and_an_add_are_counted_where_they_now_are():
    """Same states, same since (added together): only their runs tell the moved ones apart."""
    tasks = [Task(run=r, state=S.NEW, since=NOW) for r in range(10)]
    kept = Tally(tasks)
    tasks = tasks[1:] + [Task(run=50, state=S.NEW, since=NOW)]
    kept.sync(tasks)
    assert kept.runs[S.NEW].ranges() == "1-9,50"


def test_positions_the_caller_knows_changed_are_all_it_looks_at():
    rnd = random.Random(7)
    tasks = production(rnd, 80)
    kept = Tally(tasks)
    moved = rnd.sample(range(len(tasks)), 6)
    for i in moved:
        change(rnd, tasks, tasks[i], NOW + 5)
    assert kept.sync(tasks, changed=moved) == 6
    assert seen(kept, tasks) == seen(Tally(tasks), tasks)
    assert kept.sync(tasks, changed=[]) == 0       # nothing said to have changed: nothing looked at


def test_a_state_change_is_found_without_help_and_nothing_else_is_looked_at_again():
    tasks = [Task(run=r, state=S.NEW, since=NOW) for r in range(50)]
    kept = Tally(tasks)
    assert kept.sync(tasks) == 0
    tasks[7].state = S.RUNNING
    assert kept.sync(tasks) == 1 and kept.counts[S.RUNNING] == 1


def test_the_summary_functions_are_the_tally_counted_once():
    tasks = production(random.Random(3), 60)
    rows, over = SM.listed(tasks, cap=10, per_group=2)
    t_rows, t_over = Tally(tasks).listed(tasks, cap=10, per_group=2)
    assert rows == t_rows and {s: SM.ranges(r) for s, r in over.items()} == {s: x for s, (_, x) in t_over.items()}


@pytest.mark.parametrize("seed", range(4))
def test_a_sorted_bag_is_a_sorted_list_that_moves_a_block_at_a_time(seed, monkeypatch):
    import batchman.page.bags as B
    monkeypatch.setattr(B, "BLOCK", 4)
    rnd = random.Random(seed)
    bag, plain = SortedBag(rnd.randint(0, 50) for _ in range(30)), []
    plain = sorted(bag)
    for _ in range(300):
        x = rnd.randint(0, 50)
        if rnd.random() < .5:
            bag.add(x)
            plain.append(x)
            plain.sort()
        else:
            bag.remove(x)
            if x in plain:
                plain.remove(x)
        lo = rnd.randint(0, 50)
        assert list(bag) == plain and len(bag) == len(plain)
        assert bag.count_from(lo) == sum(1 for v in plain if v >= lo)
        assert bag.first_from(lo) == next((v for v in plain if v >= lo), None)
        assert bag.head(3) == plain[:3] and bag.largest(3) == plain[::-1][:3]
        if plain:
            assert bag[len(plain) // 2] == plain[len(plain) // 2] and bag[-1] == plain[-1]


@pytest.mark.parametrize("seed", range(4))
def test_run_ranges_follow_added_and_removed_tasks_across_blocks(seed, monkeypatch):
    import batchman.page.bags as B
    monkeypatch.setattr(B, "RUN_BLOCK", 2)          # blocks of 4 runs: ranges cross them often
    rnd = random.Random(seed)
    rs, tasks = RunSet(), []
    for _ in range(400):
        r = rnd.randint(0, 40)
        if rnd.random() < .6:
            rs.add(r)
            tasks.append(r)
        elif r in tasks:
            rs.remove(r)
            tasks.remove(r)
        assert rs.ranges() == SM.ranges(sorted(set(tasks))) and len(rs) == len(set(tasks))
    listed = {r: 1 for r in tasks[:5]}
    rest = list(tasks)
    for r in listed:
        rest.remove(r)
    assert rs.without(listed) == (len(set(rest)), SM.ranges(sorted(set(rest))))
    assert rs.ranges() == SM.ranges(sorted(set(tasks)))       # and put back
    assert RunSet.of(tasks).ranges() == rs.ranges()


@pytest.mark.parametrize("seed", range(4))
def test_run_ranges_counted_at_once_follow_changes_as_those_built_a_run_at_a_time(seed, monkeypatch):
    """RunSet.counted keeps its blocks as spans of the sorted runs until one is asked for."""
    import batchman.page.bags as B
    monkeypatch.setattr(B, "RUN_BLOCK", 2)
    rnd = random.Random(seed)
    tasks = [rnd.randint(0, 60) for _ in range(rnd.randint(0, 80))]
    rs = RunSet.of(tasks)
    assert rs.ranges() == SM.ranges(sorted(set(tasks))) and len(rs) == len(set(tasks))
    for _ in range(200):
        r = rnd.randint(0, 60)
        what = rnd.random()
        if what < .45:
            rs.add(r)
            tasks.append(r)
        elif what < .9 and r in tasks:
            rs.remove(r)
            tasks.remove(r)
        elif tasks:
            listed = {x: 1 for x in rnd.sample(tasks, min(3, len(tasks)))}
            rest = list(tasks)
            for x in listed:
                rest.remove(x)
            assert rs.without(listed) == (len(set(rest)), SM.ranges(sorted(set(rest))))
        if rnd.random() < .3:
            assert rs.ranges() == SM.ranges(sorted(set(tasks))) and len(rs) == len(set(tasks))
    assert rs.ranges() == SM.ranges(sorted(set(tasks)))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("in_run_order", [True, False])
def test_a_tally_told_the_tasks_written_looks_at_those_alone_and_equals_one_counted_afresh(seed, in_run_order,
                                                                                          monkeypatch):
    """The store hands over the tasks its writes changed in place or appended: their positions
    are found by run (in run order) or in the tail added out of order, and nothing else is
    looked at; a change that keeps the state (a dataset, a reason) is then counted at once."""
    monkeypatch.setattr(W, "COST", 1)       # (few written: found by run, even in a small list)
    rnd = random.Random(seed)
    tasks = production(rnd, 120)
    if in_run_order:
        tasks.sort(key=lambda t: t.run)
    kept = Tally(tasks)
    for step in range(40):
        now, touched = NOW + step, []
        if rnd.random() < .8:
            for t in rnd.sample(tasks, rnd.randint(0, 8)):
                if rnd.random() < .3:
                    t.meta, t.error = {"dataset": rnd.choice(["Al50", "Ti50"])}, rnd.choice(["oom", "timeout"])
                else:
                    change(rnd, tasks, t, now)
                touched.append(t)
        else:
            have = {t.key for t in tasks}
            new = [t for t in production(rnd, 5) if t.key not in have]
            tasks += new
            touched += new
        assert kept.sync(tasks, touched=touched + touched[:2]) == len({id(t) for t in touched}), f"step {step}"
        assert seen(kept, tasks) == seen(Tally(tasks), tasks), f"step {step}"


def counted_as(t: Task) -> tuple:
    """What the page counts a task by (the state, run, job, segment, dataset, retried, end,
    run time and problem group), written out here against batchman.page.tally."""
    problem = (t.state, t.failure_class or t.failure or t.state, reason(t)) \
        if t.state in S.PROBLEM and t.state in S.TERMINAL else None
    end = (t.finished_at or t.since) or None if t.state in S.TERMINAL - {S.SKIPPED} else None
    ran = (t.finished_at - t.started_at, t.run) if (t.state == S.COMPLETED and t.started_at and t.finished_at
                                                    and t.finished_at >= t.started_at) else None
    return (t.state, t.since, t.run, t.job, t.seg, (t.meta or {}).get("dataset", ""), bool(t.past), end, ran, problem)


@pytest.mark.parametrize("seed", range(8))
def test_a_task_written_in_a_field_the_page_does_not_count_is_left_where_it_is(seed, monkeypatch):
    """A round writes many tasks in fields the page does not count (the files of completed
    tasks released: 9,000 a round at 1,000,000 tasks, beside 10,000 changes of state); those
    are found and left, not taken out and put back: the tally's version moves by the tasks
    whose counted values changed, and it equals one counted afresh."""
    monkeypatch.setattr(W, "COST", 1)
    rnd = random.Random(seed)
    tasks = production(rnd, 150)
    kept = Tally(tasks)
    for step in range(30):
        touched = rnd.sample(tasks, rnd.randint(0, 12))
        before = [counted_as(t) for t in touched]
        for t in touched:
            what = rnd.random()
            if what < .4:                           # not counted: files released, counters, a note
                t.segments = [msgspec.structs.replace(x, staged=False) for x in t.segments]
                t.counters, t.note = {"events": rnd.randint(0, 9)}, rnd.choice(["", "see elog"])
            elif what < .55:                        # counted, the state kept
                t.meta = {"dataset": rnd.choice(["Al50", "Ti50", ""])}
                t.error = rnd.choice([t.error, "timeout", "disk full"])
            elif what < .65:
                t.since += rnd.choice([0, 1])
            else:
                change(rnd, tasks, t, NOW + step)
        moved = len({id(t) for t, b in zip(touched, before) if counted_as(t) != b})
        version = kept.version
        assert kept.sync(tasks, touched=touched) == len({id(t) for t in touched})     # (looked at)
        assert kept.version - version == moved, f"step {step}"
        assert seen(kept, tasks) == seen(Tally(tasks), tasks), f"step {step}"


def test_the_tasks_written_are_not_taken_for_the_changes_of_another_list():
    """A list read again is compared whatever the caller says was written: its word is about
    the list it wrote (and a list not in step with the tally is never searched)."""
    tasks = [Task(run=r, state=S.RUNNING, since=NOW) for r in range(20)]
    kept = Tally(tasks)
    again = msgspec.json.decode(msgspec.json.encode(tasks), type=list[Task])
    again[3].state = S.FAILED
    assert kept.sync(again, touched=[]) == 1 and kept.counts[S.FAILED] == 1
    stray = Task(run=5, state=S.COMPLETED)              # not in the list: every task compared
    again[7].state = S.QUEUED
    assert kept.sync(again, touched=[stray]) == 1 and kept.counts[S.QUEUED] == 1


def test_many_tasks_written_are_found_by_the_pass_over_the_states_instead():
    tasks = [Task(run=r, state=S.RUNNING, since=NOW) for r in range(2 * W.COST - 1)]
    kept = Tally(tasks)
    tasks[5].state, tasks[6].meta = S.COMPLETED, {"dataset": "Ti50"}
    assert kept.sync(tasks, touched=[tasks[5], tasks[6]]) == 1       # 2 x COST > the tasks: the pass
    assert kept.counts[S.COMPLETED] == 1 and not kept.by_dataset[S.RUNNING]["Ti50"]


@pytest.mark.parametrize("seed", range(6))
def test_a_list_made_of_the_last_with_another_writers_versions_is_compared_by_object_and_state(seed, monkeypatch):
    """After another writer (store/replays.py: its versions of some tasks in their places, the
    other places the same objects, some changed in place by the daemon; too many for a look
    each), the tally compares each place's object and state, not every task's since, run, job
    and segment as after a read of the file (~0.3 s at 1,000,000 tasks), and equals one counted
    afresh; a version whose state is the same (a dataset set) is counted again too."""
    monkeypatch.setattr(W, "COST", 10 ** 6)          # (the pass, not a look at each task written)
    monkeypatch.setattr(Tally, "behind", lambda self, tasks: pytest.fail("every task's fields compared"))
    rnd = random.Random(seed)
    tasks = production(rnd, 120)
    kept = Tally(tasks)
    for step in range(30):
        now, base = NOW + step, tasks
        tasks, touched = list(base), []
        for t in rnd.sample(base, rnd.randint(0, 6)):               # the daemon's, in place
            change(rnd, tasks, t, now)
            touched.append(t)
        for i in rnd.sample(range(len(tasks)), rnd.randint(0, 6)):  # another writer's versions
            v = msgspec.structs.replace(tasks[i])
            if rnd.random() < .6:
                change(rnd, tasks, v, now)
            else:
                v.meta = {"dataset": rnd.choice(["Al50", "Ti50", "Cu"])}
            tasks[i] = v
            touched.append(v)
        if rnd.random() < .3:
            have = {t.key for t in tasks}
            new = [t for t in production(rnd, 4) if t.key not in have]
            tasks += new
            touched += new
        kept.sync(tasks, touched=touched, base=base)
        assert seen(kept, tasks) == seen(Tally(tasks), tasks), f"step {step}"
