"""Issue 4 rules on the pure decide function: the disk-space limit (staging.max_cache_fraction),
and the staging limit seen through ``plan`` with the cache filesystem full or not."""

from batchman.core import decide as D
from batchman.core import states as S
from batchman.backends.base import StagingView
from batchman.core.decide import Budget, Observations, Policy, decide_task
from batchman.core.plan import plan
from batchman.core.model import Segment, Task

NOW = 10_000.0
ME = "host:1"


def task(state=S.UNSTAGED, run=1, nseg=2, **kw):
    return Task(run=run, state=state, since=NOW - 10,
                segments=[Segment(f"/tape/r{run}.{i}", False) for i in range(nseg)], **kw)


def obs(**kw):
    kw.setdefault("now", NOW)
    kw.setdefault("me", ME)
    kw.setdefault("live_daemons", frozenset({ME}))
    kw.setdefault("staging", StagingView())
    return Observations(**kw)


def test_cache_full_defaults_to_false():
    assert Observations(now=NOW).cache_full is False


def test_unstaged_makes_no_request_while_the_cache_is_full():
    t = task()
    assert decide_task(t, obs(cache_full=True), Policy(), Budget()) is None


def test_unstaged_requests_again_once_the_cache_has_room():
    t = task()
    d = decide_task(t, obs(cache_full=False), Policy(), Budget())
    assert d.state == S.STAGING and d.actions == [D.STAGE]


def test_cache_full_blocks_even_a_run_that_would_pass_the_no_deadlock_rule():
    t = task(nseg=5)
    assert decide_task(t, obs(cache_full=True), Policy(staging_limit=2), Budget(staged_segments=0)) is None


def test_files_already_on_disk_go_ahead_while_the_cache_is_full():
    t = task()
    v = StagingView(present={s.path for s in t.segments})
    d = decide_task(t, obs(staging=v, cache_full=True), Policy(), Budget())
    assert d.state == S.STAGED and d.actions == []


def test_staging_in_progress_continues_while_the_cache_is_full():
    t = task(S.STAGING, requested_at=NOW - 5)
    v = StagingView(present={s.path for s in t.segments})
    d = decide_task(t, obs(staging=v, cache_full=True), Policy(), Budget())
    assert d.state == S.STAGED


def test_staged_submits_while_the_cache_is_full():
    t = task(S.STAGED)
    v = StagingView(present={s.path for s in t.segments})
    d = decide_task(t, obs(staging=v, cache_full=True), Policy(), Budget())
    assert d.state == S.SUBMITTING


def test_plan_with_full_cache_requests_nothing_and_releases_still_happen():
    done = task(S.RUNNING, run=1, job_name="bm.x.1.analysis.1", attempt=1)
    waiting = [task(run=r) for r in (2, 3, 4)]
    from batchman.core.decide import Marker
    o = obs(cache_full=True, markers={done.job_name: Marker(started=NOW - 5, exit_code=0)})
    out = plan([done] + waiting, o, Policy(staging_limit=100))
    by_run = {t.run: d for t, d in out}
    assert set(by_run) == {1}
    assert by_run[1].state == S.COMPLETED and D.RELEASE in by_run[1].actions


def test_plan_staging_limit_counts_every_state_that_holds_the_cache():
    holders = [task(st, run=i, nseg=1, job_name=f"bm.x.{i}.analysis.1", attempt=1)
               for i, st in enumerate([S.STAGING, S.STAGED, S.SUBMITTED, S.QUEUED, S.RUNNING], start=1)]
    holders[0].requested_at = NOW
    waiting = [task(run=10 + i, nseg=2) for i in range(5)]
    o = obs(jobs={})
    out = plan(holders + waiting, o, Policy(staging_limit=8, max_jobs=0))
    requested = [t.run for t, d in out if d.state == S.STAGING and t.state == S.UNSTAGED]
    assert requested == [10]            # 5 held + 2 = 7 <= 8; the next 2 would make 9


def test_plan_priority_decides_who_gets_the_room():
    a, b, c = task(run=1), task(run=2), task(run=3, priority=5)
    out = plan([a, b, c], obs(), Policy(staging_limit=4))
    assert [t.run for t, d in out if d.state == S.STAGING] == [3, 1]
