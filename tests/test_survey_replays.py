"""Issue 18: after another writer's change, read from the change log, the daemon moves the tasks
it replaced instead of counting every task again (daemon/survey.py, store/replays.py).

The oracle is BATCHMAN_STORE_CHECK (set for every test): at each survey the engine asserts that
what it keeps (plan_budget's room, the jobs in the batch system, the requests, the staging
files, the census, the staging tasks by file) and the live tasks equal a count afresh."""

import random

import pytest

from batchman import actions
from batchman.core import states as S
from batchman.core.model import Segment
from batchman.daemon import survey as SV
from batchman.daemon.engine import Engine
from batchman.experiment import store_for
from batchman.store import store as store_mod
from batchman.store.replays import MAX, Replays

from e2e_helpers import make_experiment
from test_engine_survey import Staging
from test_observe_done import Batch


# ---- the chain of records (pure) ---------------------------------------------------------
class T:
    """A task stand-in: only identity matters to Replays."""


def _chain(rng: random.Random, n: int, records: int):
    """Lists made as changes.apply makes them, with the truth: (start list, Replays, final list,
    whether a task left)."""
    r = Replays()
    r.on = True
    start = [T() for _ in range(n)]
    now, gone = start, False
    for _ in range(records):
        after = list(now)
        swapped = []
        for i in rng.sample(range(len(after)), rng.randint(0, min(3, len(after)))):
            new = T()
            swapped.append((after[i], new))
            after[i] = new
        after += [T() for _ in range(rng.choice([0, 0, 1, 2]))]
        left = rng.random() < 0.05 and len(after) > 1
        if left:
            del after[rng.randrange(len(after))]
            gone = True
        r.note(now, after, swapped, left)
        now = after
    return start, r, now, gone


@pytest.mark.parametrize("seed", range(200))
def test_since_says_which_tasks_of_the_list_were_replaced_by_which(seed):
    rng = random.Random(seed)
    records = rng.randint(0, MAX)
    start, r, now, gone = _chain(rng, rng.randint(1, 8), records)
    got = r.since(start, now)
    if gone or not records:                 # (none: the list is the same, nothing to tell)
        assert got is None
        return
    truth = {(id(a), id(b)) for a, b in zip(start, now) if a is not b}
    assert {(id(a), id(b)) for a, b in got} == truth
    assert r.chain == [] and r.since(now, now) is None       # taken: forgotten


def test_since_knows_nothing_of_a_list_not_in_the_chain_or_of_too_many_records():
    r = Replays()
    r.on = True
    a, b, c = [T()], [T()], [T()]
    r.note(a, b, [(a[0], b[0])], False)
    assert r.since(c, b) is None and r.chain == []
    r.note(a, b, [(a[0], b[0])], False)
    assert r.since(a, c) is None                    # the list now is not the chain's last (read again whole)
    r.note(a, b, [(a[0], b[0])], False)
    d = [T()]
    r.note(c, d, [], False)                         # not a continuation (a list read again between)
    assert r.since(a, d) is None
    lists = [[T()] for _ in range(MAX + 2)]
    for x, y in zip(lists, lists[1:]):
        r.note(x, y, [(x[0], y[0])], False)
    assert r.since(lists[0], lists[-1]) is None     # more than MAX: counted afresh
    r.on = False
    r.note(a, b, [], False)
    assert r.chain == []


# ---- the daemon --------------------------------------------------------------------------
@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)          # every write appended to the change log
    e = make_experiment(tmp_path, range(1, 31))
    with e.store.transaction("test") as st:
        st.paused, st.paused_by = True, "test"              # nothing submitted: the daemon follows
        for k, t in enumerate(st.tasks):
            t.state, t.attempt, t.job_name, t.job_id = S.COMPLETED, 1, f"bm.{st.store_id}.{t.run}.{t.job}.1", str(t.run)
            if k % 3 == 0:
                t.state = S.RUNNING
                t.segments = [Segment(f"/mss/run_{t.run}.dat.0", True)]     # held in the cache (plan.Room)
            elif k % 7 == 0:
                t.state, t.failure, t.exit_code = S.FAILED, "exit-nonzero", 1
            elif k % 5 == 1:                # waiting for tape: its file asked about (StagingFiles)
                t.state, t.job_name, t.requested_at = S.STAGING, "", st.created
                t.segments = [Segment(f"/mss/run_{t.run}.dat.0")]
    batch = Batch()
    eng = Engine(e.params, e.store, batch, Staging(), mode="test")
    made = []
    real = SV.Kept
    monkeypatch.setattr(SV, "Kept", lambda live: made.append(len(live)) or real(live))
    followed, others = [], SV._others
    monkeypatch.setattr(SV, "_others", lambda *a: followed.append(1) or others(*a))
    eng.followed = followed
    return e, eng, batch, made


def test_another_writers_change_is_followed_without_counting_afresh(engine):
    e, eng, batch, made = engine
    eng.run_once()
    eng.run_once()
    assert len(made) == 1
    with store_for(e.params).transaction("another process") as st:
        st.tasks[3].priority = 5            # running: live before and after
        st.tasks[4].note = "looked at"      # completed: settled before and after
        st.tasks[7].note = "looked at"      # failed, no rule retries it: left alone (plan_budget's unretried)
        st.tasks[6].state = S.COMPLETED     # running -> completed: no longer live
    actions.add_runs(store_for(e.params), [31, 32])          # appended by another writer
    eng.run_once()
    assert len(made) == 1                   # (the BATCHMAN_STORE_CHECK assertions held)
    now = e.store.read().tasks
    assert all(any(t is x for x in now) for t in eng._unretried.values())   # (no replaced task kept alive)
    live = eng._live[1].tasks
    assert {t.run for t in live} >= {4, 31, 32} and 7 not in {t.run for t in live}


def test_requests_people_queue_are_followed_without_counting_afresh(engine):
    e, eng, batch, made = engine
    eng.run_once()
    eng.run_once()
    running = [t for t in e.store.read().tasks if t.state == S.RUNNING]
    other = store_for(e.params)
    assert other.queue_requests({running[0].key}, "request", "kill") == 1
    assert other.queue_requests({running[1].key}, "priority", 7) == 1
    assert other.queue_requests({running[2].key}, "held", True) == 1
    eng.run_once()
    assert len(made) == 1                   # (the BATCHMAN_STORE_CHECK assertions held)
    assert {t.run: t.state for t in e.store.read().tasks}[running[0].run] in (S.ABORTING, S.ABORTED)


def test_a_round_that_decided_again_under_the_lock_is_followed_by_a_count(engine, monkeypatch):
    """A kill queued during the round: the daemon decides again under the lock (intents.record)
    and kills it, a decision its keepers were not told of before: the next round counts afresh."""
    from batchman.daemon import crash
    e, eng, batch, made = engine
    eng.run_once()
    eng.run_once()
    running = next(t for t in e.store.read().tasks if t.state == S.RUNNING)
    other = store_for(e.params)
    monkeypatch.setitem(crash.HOOKS, "after-observe", [lambda _e: other.queue_requests({running.key}, "request", "kill")])
    eng.run_once()
    monkeypatch.setitem(crash.HOOKS, "after-observe", [])
    assert {t.run: t.state for t in e.store.read().tasks}[running.run] in (S.ABORTING, S.ABORTED)
    eng.run_once()                          # (the BATCHMAN_STORE_CHECK assertions held)
    assert len(made) == 2


def test_a_file_rewritten_whole_after_a_request_merged_is_counted_afresh(engine, monkeypatch):
    """Seed 3 of test_race_random: a request merged in place at the end of a round, then another
    writer rewrote the small file whole (no record tells what changed): every task is another
    object, so the merge alone must not be taken for all that changed."""
    from batchman.daemon import crash
    e, eng, batch, made = engine
    monkeypatch.setattr(store_mod, "LOG_FROM", 1 << 40)     # small files: rewritten whole
    eng.run_once()
    eng.run_once()
    running = next(t for t in e.store.read().tasks if t.state == S.RUNNING)
    other = store_for(e.params)
    monkeypatch.setitem(crash.HOOKS, "after-intent", [lambda _e: other.queue_requests({running.key}, "priority", 9)])
    eng.run_once()                          # (merged by its last read)
    monkeypatch.setitem(crash.HOOKS, "after-intent", [])
    with other.transaction("another process") as st:
        st.tasks[4].note = "looked at"
    eng.run_once()                          # (the BATCHMAN_STORE_CHECK assertions held)
    assert len(made) == 2


def test_a_settled_task_made_live_by_another_writer_is_counted_afresh(engine):
    e, eng, batch, made = engine
    eng.run_once()
    with store_for(e.params).transaction("another process") as st:
        st.tasks[2].state = S.STAGED        # completed -> staged: where it goes among the live ones is not kept
    eng.run_once()
    assert len(made) == 2 and 3 in {t.run for t in eng._live[1].tasks}


@pytest.mark.parametrize("seed", range(16))
def test_rounds_with_other_writers_keep_what_a_count_afresh_says(engine, seed, monkeypatch):
    """Random rounds: the daemon's own decisions (jobs that end), other writers' changes of every
    kind, before a round or during it (the daemon then decides again under the lock), requests
    queued, tasks added; every survey checked against a count."""
    from batchman.daemon import crash
    e, eng, batch, made = engine
    rng = random.Random(seed)
    other = store_for(e.params)

    def meanwhile(_eng):
        with other.transaction("another process, during the round") as st:
            rng.choice(st.tasks).priority += 1

    for _ in range(8):
        monkeypatch.setitem(crash.HOOKS, "after-observe", [meanwhile] if rng.random() < 0.2 else [])
        for t in rng.sample(e.store.read().tasks, 3):
            if t.state == S.RUNNING and rng.random() < 0.5:
                batch.says[t.job_name] = "finished"
        for _ in range(rng.randint(0, 3)):
            kind = rng.randrange(6)
            with other.transaction("another process") as st:
                t = rng.choice(st.tasks)
                if kind == 0:
                    t.priority += 1
                elif kind == 1:
                    t.state = rng.choice([S.COMPLETED, S.FAILED, S.RUNNING, S.QUEUED, S.ABORTED, S.STAGING])
                elif kind == 2:
                    t.held = not t.held
                elif kind == 3:
                    t.request = rng.choice(["", "kill"]) if t.state in S.IN_BATCH else ""
            if kind == 4:
                actions.add_runs(other, [100 + rng.randrange(1000)])
            elif kind == 5:                 # a person's request, merged in place by the daemon's read
                key = rng.choice(other.read().tasks).key
                field, value = rng.choice([("priority", rng.randint(0, 9)), ("held", rng.random() < 0.5),
                                           ("note", "n"), ("request", "kill"), ("request", "restart")])
                other.queue_requests({key}, field, value)
        eng.run_once()
    assert made                             # (counted afresh at the first round at least)


# ---- what the trigger passes keep (core/triggers.Scan), per-file campaign ----------------------
def per_file(tmp_path, monkeypatch, runs=range(1, 5), segments=3):
    """A per-file campaign (reco per segment, a merge per run) a paused daemon follows: the
    segments of the last run completed, the others' last segment running."""
    from batchman.core.model import Task
    from test_jobs_e2e import experiment
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    jobs = {"reco": {"command": "true", "per": "segment"},
            "merge": {"command": "true", "trigger": "after: reco, all-segments", "needs_staging": False}}
    e = experiment(tmp_path, [], jobs=jobs)
    with e.store.transaction("test") as st:
        st.paused, st.paused_by = True, "test"
        for run in runs:
            for seg in range(segments):
                done = seg < segments - 1 or run == runs[-1]
                st.tasks.append(Task(run=run, job="reco", seg=seg, attempt=1, job_id=f"{run}{seg}",
                                     state=S.COMPLETED if done else S.RUNNING,
                                     job_name=f"bm.{st.store_id}.{run}.reco.{seg}.1"))
            st.tasks.append(Task(run=run, job="merge"))
    batch = Batch()
    return e, Engine(e.params, e.store, batch, Staging(), mode="test"), batch


def test_the_trigger_passes_follow_another_writers_change_without_looking_afresh(tmp_path, monkeypatch):
    """One job per raw file and a merge per run: after another writer's change read from the
    change log, what the daemon's trigger passes keep (the places of each run's segment tasks)
    is moved to the new list, not found again over every task; the merge of a run whose last
    segment another writer completed may go (BATCHMAN_STORE_CHECK: at every survey the gates and
    the tasks to create equal those found afresh)."""
    from batchman.core import jobs as J
    e, eng, _ = per_file(tmp_path, monkeypatch)
    looks = []
    scan = eng.observer.scan
    real = scan._reset
    monkeypatch.setattr(scan, "_reset", lambda tasks: looks.append(1) or real(tasks))
    eng.run_once()
    eng.run_once()
    assert len(looks) == 1 and J.gates(e.store.read().tasks, e.params.jobs)["4.merge"].wait == ""
    with store_for(e.params).transaction("another process") as st:
        st.tasks[2].state = S.COMPLETED         # run 1's last segment
        st.tasks[5].priority = 3
    eng.run_once()
    assert len(looks) == 1                  # moved, not looked at afresh (and the CHECK assertions held)
    assert J.gates(e.store.read().tasks, e.params.jobs, scan=scan)["1.merge"].wait == ""
    assert J.gates(e.store.read().tasks, e.params.jobs, scan=scan)["2.merge"].wait.startswith("waiting for reco: 2/3")


def test_a_merge_gate_kept_follows_another_process_that_completed_the_last_segment(tmp_path, monkeypatch):
    """The daemon keeps each waiting merge's gate until a task of its run changes. Another
    process's change reaches it only through the change log (its task objects replaced, no field
    of them set in this process): the gate of that run is made again, the merge may go (in this
    process another writer's Store sets fields, which counts too: only a process of its own
    shows that the replaced tasks are what makes the gate again)."""
    import subprocess
    import sys

    from batchman.core import jobs as J
    e, eng, _ = per_file(tmp_path, monkeypatch)
    eng.run_once()
    eng.run_once()
    scan = eng.observer.scan
    assert J.gates(e.store.read().tasks, e.params.jobs, scan=scan)["1.merge"].wait.startswith("waiting for reco: 2/3")
    code = ("import sys; from batchman.store import store as m; m.LOG_FROM = 0\n"
            "with m.Store(sys.argv[1]).transaction('another process') as st:\n"
            "    assert st.tasks[2].key == '1.reco.2'; st.tasks[2].state = 'completed'\n")
    subprocess.run([sys.executable, "-c", code, e.store.path], check=True, timeout=60)
    looks = []
    real = scan._reset
    monkeypatch.setattr(scan, "_reset", lambda tasks: looks.append(1) or real(tasks))
    eng.run_once()                          # (BATCHMAN_STORE_CHECK: the gates kept equal a fresh look)
    assert looks == []                      # moved over the change, not looked at afresh
    assert J.gates(e.store.read().tasks, e.params.jobs, scan=scan)["1.merge"].wait == ""


@pytest.mark.parametrize("seed", range(12))
def test_rounds_of_a_per_file_campaign_with_other_writers_keep_the_gates_a_fresh_look_finds(tmp_path, monkeypatch,
                                                                                          seed):
    """Random rounds of a per-file campaign: segment jobs that end, other writers completing,
    failing, skipping segment tasks or adding runs, before a round or during it (the daemon then
    decides again under the lock); at every survey the gates and the tasks to create the daemon
    keeps equal those found afresh (BATCHMAN_STORE_CHECK), and no merge starts before every
    segment of its run completed or was skipped. (A run added lacks its files here: its reco task
    ends in error, its merge waits.)"""
    from batchman.core.model import Task
    from batchman.daemon import crash
    e, eng, batch = per_file(tmp_path, monkeypatch, runs=range(1, 7), segments=4)
    with e.store.transaction("test") as st:
        st.paused = False                   # (merges go: their command is `true`, never submitted here)
    monkeypatch.setattr(batch, "submit", lambda spec: "99", raising=False)
    rng = random.Random(seed)
    other = store_for(e.params)

    def meanwhile(_eng):
        with other.transaction("another process, during the round") as st:
            t = rng.choice(st.tasks)
            if t.job == "reco" and t.state == S.RUNNING:
                t.state = S.COMPLETED

    for _ in range(10):
        monkeypatch.setitem(crash.HOOKS, "after-observe", [meanwhile] if rng.random() < 0.3 else [])
        for t in e.store.read().tasks:
            if t.state == S.RUNNING and rng.random() < 0.3:
                batch.says[t.job_name] = "finished"
        for _ in range(rng.randint(0, 3)):
            kind = rng.randrange(5)
            if kind == 3:                   # a run added (its reco task, split by the daemon: no file here)
                actions.add_runs(other, [100 + rng.randrange(50)], jobs=("reco",))
                continue
            with other.transaction("another process") as st:
                if kind == 4:               # a run's segment tasks appended (its merge made by the daemon)
                    run = 200 + rng.randrange(50)
                    if not any(x.run == run for x in st.tasks):
                        st.tasks += [Task(run=run, job="reco", seg=k, state=rng.choice([S.COMPLETED, S.RUNNING]))
                                     for k in range(rng.randint(1, 3))]
                    continue
                t = rng.choice([x for x in st.tasks if x.job == "reco" and x.seg is not None])
                t.state = [S.COMPLETED, S.FAILED, S.SKIPPED][kind]
        tasks = e.store.read().tasks        # (as the round observes them)
        waiting = {t.run: [x.state for x in tasks if x.job == "reco" and x.run == t.run]
                   for t in tasks if t.job == "merge" and t.state == S.NEW}
        eng.run_once()
        for m in e.store.read().tasks:
            if m.job == "merge" and m.run in waiting and m.state != S.NEW:      # went this round
                segs = waiting[m.run]
                assert segs and set(segs) <= {S.COMPLETED, S.SKIPPED} and S.COMPLETED in segs, (m, segs)
