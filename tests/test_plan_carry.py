"""Issue 14: one iteration carries a task through every step that needs no outside event
(data found on disk -> unstaged -> staged -> submitting; staging done -> staged -> submitting),
with the limits shared as before and the intent recorded as ever."""

import pytest

from batchman.core import decide as D
from batchman.core import states as S
from batchman.backends.base import StagingView
from batchman.core.decide import Observations, Policy, apply
from batchman.core.plan import plan
from batchman.core.model import Segment, Task

from e2e_helpers import daemon_run, make_experiment

NOW = 10_000.0
ME = "host:1"


def obs(**kw):
    kw.setdefault("now", NOW)
    kw.setdefault("me", ME)
    kw.setdefault("live_daemons", frozenset({ME}))
    return Observations(**kw)


def new(run, prio=0):
    return Task(run=run, state=S.NEW, since=NOW - 10, priority=prio)


def found(*tasks, on_disk=True):
    """Observations where each task's two segments were just found (and are on disk or not)."""
    segs = {t.key: ([f"/d/r{t.run}.{i}" for i in range(2)], "/d/r*") for t in tasks}
    present = {p for paths, _ in segs.values() for p in paths} if on_disk else set()
    return obs(segments=segs, staging=StagingView(present=present))


def chains(decisions):
    out = {}
    for t, d in decisions:
        out.setdefault(t.run, []).append(d.state)
    return out


def test_data_on_disk_goes_from_new_to_submitting_in_one_plan():
    t = new(1)
    ds = plan([t], found(t), Policy())
    assert chains(ds) == {1: [S.UNSTAGED, S.STAGED, S.SUBMITTING]}
    assert [d.actions for _, d in ds] == [[], [], [D.SUBMIT]]
    assert t.state == S.NEW and t.segments == []           # planning changes nothing
    for task, d in ds:                                      # recorded in order, as the daemon does
        apply(task, d, NOW, ME, "sid", found(t).staging)
    assert t.state == S.SUBMITTING and t.attempt == 1 and t.job_name and t.intent.actions == [D.SUBMIT]
    assert all(s.staged for s in t.segments)


def test_data_on_tape_stops_at_the_staging_request():
    t = new(1)
    ds = plan([t], found(t, on_disk=False), Policy())
    assert chains(ds) == {1: [S.UNSTAGED, S.STAGING]} and ds[-1][1].actions == [D.STAGE]


def test_staging_done_goes_on_to_submitting():
    t = Task(run=1, state=S.STAGING, since=NOW - 10, requested_at=NOW - 5,
             segments=[Segment("/d/a", False), Segment("/d/b", False)])
    ds = plan([t], obs(staging=StagingView(present={"/d/a", "/d/b"})), Policy())
    assert chains(ds) == {1: [S.STAGED, S.SUBMITTING]}


@pytest.mark.parametrize("pol, submitted", [
    (Policy(max_jobs=2), [3, 2]),                       # the job cap, in rank (priority) order
    (Policy(max_submit_per_iteration=1), [3]),          # the per-iteration cap counts carried tasks
    (Policy(job_limits={"analysis": 1}), [3]),          # the job's own max_running
])
def test_the_limits_hold_for_carried_tasks_in_rank_order(pol, submitted):
    ts = [new(1), new(2, prio=1), new(3, prio=5)]
    ds = plan(ts, found(*ts), pol)
    got = [t.run for t, d in ds if d.state == S.SUBMITTING]
    assert got == submitted
    ch = chains(ds)
    assert all(ch[r][-1] == S.STAGED for r in (1, 2, 3) if r not in submitted)


def test_the_staging_limit_holds_for_carried_tasks():
    ts = [new(1), new(2)]
    ds = plan(ts, found(*ts, on_disk=False), Policy(staging_limit=2))
    assert chains(ds) == {1: [S.UNSTAGED, S.STAGING], 2: [S.UNSTAGED]}


def test_paused_or_held_tasks_are_not_carried():
    t = new(1)
    assert plan([t], _paused(found(t)), Policy()) == []
    h = new(2)
    h.held = True
    assert plan([h], found(h), Policy()) == []


def _paused(o):
    o.paused = True
    return o


def test_a_daemon_iteration_submits_a_run_whose_data_is_on_disk(tmp_path):
    # in place: the raw directory is the cache, so the data is on disk from the start
    e = make_experiment(tmp_path, [1, 2], **{"staging.cache_dir": "raw"})
    r = daemon_run(tmp_path, "oneshot")
    assert r.returncode == 0, r.stdout + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} <= {S.SUBMITTED, S.RUNNING, S.COMPLETED}, r.stdout
    assert all(t.job_id for t in st.tasks)
    assert "new -> unstaged" in r.stdout and "unstaged -> staged" in r.stdout and "staged -> submitting" in r.stdout
