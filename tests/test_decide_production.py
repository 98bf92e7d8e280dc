"""Production controls in the decide step: drain, hold, skip, throttles (issue 10)."""

import pytest

from batchman.core import decide as D
from batchman.core import states as S
from batchman.backends.base import RUNNING, ABSENT, JobInfo, StagingView
from batchman.core.decide import Budget, Policy, decide_task
from batchman.core.plan import plan

from test_decide import ME, NOW, obs, present, task


@pytest.mark.parametrize("st", [S.NEW, S.UNSTAGED, S.STAGED])
def test_a_held_task_does_not_move_before_submission(st):
    t = task(st, held=True, staged=(st == S.STAGED))
    o = obs(staging=StagingView(present=present(t) if st == S.STAGED else set()),
            segments={t.key: (["/tape/x.0"], "/tape/x.*")})
    assert decide_task(t, o, Policy(), Budget()) is None


def test_a_held_task_still_finishes_staging_already_in_flight():
    t = task(S.STAGING, held=True, requested_at=NOW - 5)
    d = decide_task(t, obs(staging=StagingView(present=present(t))), Policy(), Budget())
    assert d.state == S.STAGED


@pytest.mark.parametrize("st", [S.SUBMITTED, S.QUEUED, S.RUNNING])
def test_a_held_running_job_is_left_running_and_followed(st):
    t = task(st, held=True, job_id="4")
    d = decide_task(t, obs(jobs={t.job_name: JobInfo(t.job_name, "4", RUNNING)}, markers={}), Policy(), Budget())
    assert d is None or d.state == S.RUNNING
    t.state = S.RUNNING
    from batchman.core.decide import Marker
    d = decide_task(t, obs(markers={t.job_name: Marker(exit_code=0)}), Policy(), Budget())
    assert d.state == S.COMPLETED


def test_a_held_task_can_still_be_killed():
    t = task(S.STAGED, held=True, request="kill")
    assert decide_task(t, obs(), Policy(), Budget()).state == S.ABORTED


def test_pause_during_staging_lets_it_finish_but_starts_nothing():
    staging = task(S.STAGING, run=1, requested_at=NOW - 5)
    waiting = task(S.UNSTAGED, run=2)
    staged = task(S.STAGED, run=3, staged=True)
    v = StagingView(present=present(staging) | present(staged))
    out = {t.run: d.state for t, d in plan([staging, waiting, staged], obs(staging=v, paused=True), Policy())}
    assert out == {1: S.STAGED}


@pytest.mark.parametrize("st", [S.NEW, S.UNSTAGED, S.COMPLETED, S.FAILED, S.ERROR])
def test_skip_marks_done_by_hand_with_the_reason(st):
    t = task(st, request="skip", note="bad HV")
    d = decide_task(t, obs(), Policy(), Budget())
    assert d.state == S.SKIPPED and "bad HV" in d.reason and d.updates["request"] == ""


@pytest.mark.parametrize("st", [S.STAGING, S.STAGED])
def test_skip_while_staging_releases_the_files(st):
    d = decide_task(task(st, request="skip"), obs(), Policy(), Budget())
    assert d.state == S.SKIPPED and set(d.actions) == {D.CANCEL_STAGE, D.RELEASE}


def test_skip_of_a_running_job_kills_it_first():
    t = task(S.RUNNING, job_id="4", request="skip", note="bad")
    d = decide_task(t, obs(jobs={}), Policy(), Budget())
    assert d.state == S.ABORTING and D.CANCEL in d.actions
    D.apply(t, d, NOW, ME, "x", None)
    t.intent = None
    assert t.request == "skip"
    d = decide_task(t, obs(jobs={t.job_name: JobInfo(t.job_name, "4", ABSENT)}), Policy(), Budget())
    assert d.state == S.SKIPPED


def test_submission_throttle():
    staged = [task(S.STAGED, run=r, staged=True) for r in range(10)]
    v = StagingView(present={s.path for t in staged for s in t.segments})
    out = plan(staged, obs(staging=v), Policy(max_submit_per_iteration=3))
    assert [t.run for t, d in out if d.state == S.SUBMITTING] == [0, 1, 2]


def test_staging_throttle():
    tasks = [task(S.UNSTAGED, run=r) for r in range(10)]
    out = plan(tasks, obs(staging=StagingView()), Policy(max_stage_per_iteration=4))
    assert sum(1 for _, d in out if d.state == S.STAGING) == 4


def test_kill_throttle():
    tasks = [task(S.RUNNING, run=r, job_id=str(r), request="kill") for r in range(10)]
    o = obs(jobs={t.job_name: JobInfo(t.job_name, t.job_id, RUNNING) for t in tasks})
    out = plan(tasks, o, Policy(max_kill_per_iteration=2))
    assert sum(1 for _, d in out if d.state == S.ABORTING) == 2


def test_job_cap_reached_mid_iteration():
    running = [task(S.RUNNING, run=r, job_id=str(r)) for r in range(3)]
    staged = [task(S.STAGED, run=10 + r, staged=True) for r in range(3)]
    v = StagingView(present={s.path for t in staged for s in t.segments})
    o = obs(staging=v, jobs={t.job_name: JobInfo(t.job_name, t.job_id, RUNNING) for t in running})
    out = plan(running + staged, o, Policy(max_jobs=4))
    assert [t.run for t, d in out if d.state == S.SUBMITTING] == [10]


@pytest.mark.parametrize("lazy", [False, True])
def test_stuck_tasks_are_no_work_and_are_found_only_when_one_is_met_before_any_work(lazy):
    """(The end of every round asks whether work is left: at 1,000,000 tasks finding the stuck
    ones costs ~0.6 s, and the first task with work mostly comes before any that may be.)"""
    calls = []

    def stuck(keys):
        if not lazy:
            return frozenset(keys)
        return lambda: calls.append(keys) or frozenset(keys)

    new, blocked = task(S.NEW, run=1), task(S.UNSTAGED, run=2)
    running, done = task(S.RUNNING, run=3, job_id="3"), task(S.COMPLETED, run=4)
    assert not D.has_work([done, new, blocked], Policy(), stuck({new.key, blocked.key}))
    assert D.has_work([done, new, blocked], Policy(), stuck({new.key}))           # the unstaged one
    assert D.has_work([done, new, running], Policy(), stuck({new.key}))
    asked = task(S.NEW, run=5, request="kill")
    assert D.has_work([asked], Policy(), stuck({asked.key}))            # a person asked: work
    if lazy:
        assert len(calls) == 3                        # once a call, at the first task that may be stuck
        calls.clear()
        assert D.has_work([done, running, new], Policy(), stuck({new.key})) and calls == []
        assert not D.has_work([done], Policy(), stuck({new.key})) and calls == []


def test_held_tasks_do_not_keep_the_daemon_alive():
    assert not D.has_work([task(S.NEW, held=True), task(S.COMPLETED)], Policy())
    assert D.has_work([task(S.RUNNING, held=True, job_id="1")], Policy())
    assert D.has_work([task(S.NEW, held=True, request="kill")], Policy())
