"""The state machine, edge by edge: decide_task / plan on hand-made tasks and observations."""

import pytest

from batchman.core import decide as D
from batchman.core import states as S
from batchman.backends.base import FINISHED, QUEUED, RUNNING, ABSENT, JobInfo, StagingView
from batchman.core.decide import Budget, Marker, Observations, Policy, decide_task, apply
from batchman.core.plan import plan
from batchman.core.model import Intent, Segment, Task

NOW = 10_000.0
ME = "host:1"


def task(state=S.NEW, run=1, nseg=2, staged=False, **kw):
    t = Task(run=run, state=state, since=NOW - 10, segments=[Segment(f"/tape/r{run}.{i}", staged) for i in range(nseg)], **kw)
    if state in S.IN_BATCH or state in S.TERMINAL:
        t.job_name = t.job_name or f"bm.x.{run}.analysis.{t.attempt or 1}"
        t.attempt = t.attempt or 1
    return t


def obs(**kw):
    kw.setdefault("now", NOW)
    kw.setdefault("me", ME)
    kw.setdefault("live_daemons", frozenset({ME}))
    return Observations(**kw)


def present(t, *idx):
    segs = t.segments if not idx else [t.segments[i] for i in idx]
    return {s.path for s in segs}


def decide(t, o, pol=Policy(), budget=None):
    return decide_task(t, o, pol, budget or Budget.of([t]))


# ---- discovering segments ---------------------------------------------------------
def test_new_finds_segments_and_goes_unstaged():
    t = task(S.NEW, nseg=0)
    d = decide(t, obs(segments={t.key: (["/tape/a.0", "/tape/a.1"], "/tape/a.*")}))
    assert d.state == S.UNSTAGED and [s.path for s in d.updates["segments"]] == ["/tape/a.0", "/tape/a.1"]


def test_new_without_segments_is_error_naming_where_it_looked():
    t = task(S.NEW, nseg=0)
    d = decide(t, obs(segments={t.key: ([], "/tape/run_1.dat.*")}))
    assert d.state == S.ERROR and "/tape/run_1.dat.*" in d.reason


def test_new_not_looked_at_waits():
    assert decide(task(S.NEW, nseg=0), obs()) is None


# ---- staging ----------------------------------------------------------------------
def test_unstaged_requests_staging_when_room():
    t = task(S.UNSTAGED)
    d = decide(t, obs(staging=StagingView()))
    assert d.state == S.STAGING and d.actions == [D.STAGE] and d.updates["requested_at"] == NOW


def test_unstaged_with_files_already_on_disk_skips_staging_even_over_the_limit():
    t = task(S.UNSTAGED, nseg=3)
    d = decide(t, obs(staging=StagingView(present=present(t))), Policy(staging_limit=1), Budget(staged_segments=50))
    assert d.state == S.STAGED and d.actions == []


def test_unstaged_waits_at_the_staging_limit():
    t = task(S.UNSTAGED, nseg=2)
    assert decide(t, obs(staging=StagingView()), Policy(staging_limit=10), Budget(staged_segments=9)) is None


def test_run_bigger_than_the_limit_goes_when_nothing_else_holds_the_cache():
    t = task(S.UNSTAGED, nseg=5)
    d = decide(t, obs(staging=StagingView()), Policy(staging_limit=2), Budget(staged_segments=0))
    assert d.state == S.STAGING


def test_unstaged_waits_when_staging_system_unreachable():
    assert decide(task(S.UNSTAGED), obs(staging=None)) is None


def test_staging_to_staged_when_all_present():
    t = task(S.STAGING, requested_at=NOW - 5)
    d = decide(t, obs(staging=StagingView(present=present(t))))
    assert d.state == S.STAGED


def test_staging_partial_keeps_waiting_but_records_progress():
    t = task(S.STAGING, requested_at=NOW - 5)
    v = StagingView(present=present(t, 0), pending=present(t, 1))
    d = decide(t, obs(staging=v))
    assert d.state == S.STAGING and d.mark_staged
    t2 = task(S.STAGING, requested_at=NOW - 5)
    t2.segments[0].staged = True
    assert decide(t2, obs(staging=v)) is None  # nothing new: no write needed


def test_awol_file_fails_the_task_after_grace_naming_the_file():
    t = task(S.STAGING, requested_at=NOW - 301)
    v = StagingView(present=present(t, 0))    # segment 1: neither on disk nor pending
    d = decide(t, obs(staging=v), Policy(awol_grace=300))
    assert d.state == S.ERROR and t.segments[1].path in d.reason and "AWOL" in d.reason
    assert D.CANCEL_STAGE in d.actions and D.RELEASE in d.actions


def test_awol_not_before_grace():
    t = task(S.STAGING, requested_at=NOW - 100)
    assert decide(t, obs(staging=StagingView()), Policy(awol_grace=300)) is None


def test_without_verification_long_staging_is_flagged_not_failed():
    t = task(S.STAGING, requested_at=NOW - 7200)
    d = decide(t, obs(staging=StagingView()), Policy(verify_queue=False, max_staging_time=3600))
    assert d.state == S.STAGING and "staging for" in d.updates["warning"]


def test_long_staging_is_flagged_once_not_again_as_time_goes_on():
    """(The warning said "staging for 2.0 h", then 2.1 h...: every long-staging task was
    rewritten every six minutes, 50,000 at 1,000,000 tasks: a 20 MB change log line.)"""
    t = task(S.STAGING, requested_at=NOW - 7200)
    pol = Policy(verify_queue=False, max_staging_time=3600)
    t.warning = decide(t, obs(staging=StagingView()), pol).updates["warning"]
    assert decide(t, obs(staging=StagingView(), now=NOW + 3600), pol) is None


def test_staging_failure_reported_by_the_system_is_an_error():
    t = task(S.STAGING, requested_at=NOW - 5)
    d = decide(t, obs(staging=StagingView(failed={t.segments[0].path: "tape unreadable"})))
    assert d.state == S.ERROR and "tape unreadable" in d.reason


def test_staged_file_deleted_from_cache_is_requested_again():
    t = task(S.STAGED, staged=True)
    d = decide(t, obs(staging=StagingView(present=present(t, 0))))
    assert d.state == S.STAGING and d.actions == [D.STAGE] and t.segments[1].path in d.reason


# ---- submitting and following the job ------------------------------------------------
def test_staged_submits_with_a_new_attempt():
    t = task(S.STAGED, staged=True)
    d = decide(t, obs(staging=StagingView(present=present(t))))
    assert d.state == S.SUBMITTING and d.actions == [D.SUBMIT] and d.updates["attempt"] == 1


def test_staged_waits_at_the_job_cap():
    t = task(S.STAGED, staged=True)
    assert decide(t, obs(staging=StagingView(present=present(t))), Policy(max_jobs=3), Budget(jobs=3)) is None


@pytest.mark.parametrize("start", [S.SUBMITTED, S.QUEUED, S.RUNNING])
@pytest.mark.parametrize("seen,expected", [(QUEUED, S.QUEUED), (RUNNING, S.RUNNING)])
def test_job_seen_in_queue(start, seen, expected):
    t = task(start, job_id="42", native_state="old")
    d = decide(t, obs(jobs={t.job_name: JobInfo(t.job_name, "42", seen, reason="Priority", native_state="X")}))
    if start == expected and expected == S.RUNNING:
        assert d is None
    else:
        assert d.state == expected


@pytest.mark.parametrize("start", [S.SUBMITTED, S.QUEUED, S.RUNNING])
def test_exit_zero_marker_completes_and_releases(start):
    t = task(start, job_id="42")
    d = decide(t, obs(markers={t.job_name: Marker(started=NOW - 5, exit_code=0)}, jobs=None))
    assert d.state == S.COMPLETED and d.actions == [D.RELEASE]


def test_fewer_segments_analysed_than_staged_is_incomplete():
    t = task(S.RUNNING, job_id="42", nseg=3)
    o = obs(markers={t.job_name: Marker(exit_code=0)}, analysed={t.job_name: 1})
    d = decide(t, o)
    assert d.state == S.INCOMPLETE and "1 of 3" in d.reason


def test_all_segments_analysed_is_completed():
    t = task(S.RUNNING, job_id="42", nseg=3)
    d = decide(t, obs(markers={t.job_name: Marker(exit_code=0)}, analysed={t.job_name: 3}))
    assert d.state == S.COMPLETED


def test_require_stats_without_stats_is_incomplete():
    t = task(S.RUNNING, job_id="42")
    d = decide(t, obs(markers={t.job_name: Marker(exit_code=0)}), Policy(require_stats=True))
    assert d.state == S.INCOMPLETE


@pytest.mark.parametrize("release", [False, True])
def test_nonzero_exit_fails_and_releases_only_if_asked(release):
    t = task(S.RUNNING, job_id="42")
    d = decide(t, obs(markers={t.job_name: Marker(exit_code=3)}), Policy(release_failed_files=release))
    assert d.state == S.FAILED and "exit 3" in d.reason and d.updates["failure"] == "exit-nonzero"
    assert (D.RELEASE in d.actions) == release


def test_batch_system_says_timeout():
    t = task(S.RUNNING, job_id="42")
    info = JobInfo(t.job_name, "42", FINISHED, native_state="TIMEOUT", exit_code=0, failure="timeout", reason="time limit")
    d = decide(t, obs(jobs={t.job_name: info}))
    assert d.state == S.FAILED and d.updates["failure"] == "timeout"


def test_unreachable_batch_system_changes_nothing():
    for st in (S.SUBMITTED, S.QUEUED, S.RUNNING, S.SUBMITTING):
        assert decide(task(st, job_id="42"), obs(jobs=None)) is None


def test_vanished_job_fails_only_after_grace():
    t = task(S.SUBMITTED, job_id="42", submitted_at=NOW - 10)
    o = obs(jobs={t.job_name: JobInfo(t.job_name, "42", ABSENT)})
    assert decide(t, o, Policy(submit_grace=60)) is None
    t.submitted_at = NOW - 61
    d = decide(t, o, Policy(submit_grace=60))
    assert d.state == S.FAILED and d.updates["failure"] == "vanished"


# ---- crash recovery: intents of dead daemons ------------------------------------------
def test_intent_of_a_live_other_daemon_is_left_alone():
    t = task(S.SUBMITTING, intent=Intent(["submit"], "other:2", NOW - 1))
    o = obs(live_daemons=frozenset({ME, "other:2"}), jobs={})
    assert decide(t, o) is None


def test_dead_daemons_submit_intent_adopts_the_job_found_by_name():
    t = task(S.SUBMITTING, intent=Intent(["submit"], "dead:9", NOW - 100))
    o = obs(jobs={t.job_name: JobInfo(t.job_name, "77", RUNNING)})
    d = decide(t, o)
    assert d.state == S.RUNNING and d.updates["job_id"] == "77" and D.SUBMIT not in d.actions
    apply(t, d, NOW, ME, "x", None)
    assert t.intent is None and t.job_id == "77"


def test_dead_daemons_submit_intent_resubmits_when_no_job_exists():
    t = task(S.SUBMITTING, intent=Intent(["submit"], "dead:9", NOW - 100))
    d = decide(t, obs(jobs={t.job_name: JobInfo(t.job_name, "", ABSENT)}))
    assert d.state == S.SUBMITTING and d.actions == [D.SUBMIT]
    apply(t, d, NOW, ME, "x", None)
    assert t.intent.owner == ME


def test_dead_daemons_submit_intent_waits_if_batch_unreachable():
    t = task(S.SUBMITTING, intent=Intent(["submit"], "dead:9", NOW - 100))
    assert decide(t, obs(jobs=None)) is None


def test_job_that_finished_before_being_recorded_is_judged_by_its_marker():
    t = task(S.SUBMITTING, intent=Intent(["submit"], "dead:9", NOW - 100))
    d = decide(t, obs(jobs={t.job_name: JobInfo(t.job_name, "", ABSENT)}, markers={t.job_name: Marker(exit_code=0)}))
    assert d.state == S.COMPLETED and D.SUBMIT not in d.actions


def test_other_actions_of_a_dead_daemon_are_redone():
    t = task(S.COMPLETED, intent=Intent(["release"], "dead:9", NOW - 100))
    d = decide(t, obs())
    assert d.state == S.COMPLETED and d.actions == ["release"]


# ---- kill, restart, purge from every state ---------------------------------------------
PRE = [S.NEW, S.UNSTAGED]
HOLDING = [S.STAGING, S.STAGED]
LIVE = [S.SUBMITTED, S.QUEUED, S.RUNNING]


@pytest.mark.parametrize("st", PRE)
def test_kill_before_staging_aborts_at_once(st):
    t = task(st, request="kill")
    d = decide(t, obs())
    assert d.state == S.ABORTED and d.updates["killed_in"] == st and d.actions == []


@pytest.mark.parametrize("st", HOLDING)
def test_kill_while_staging_cancels_and_releases(st):
    t = task(st, request="kill")
    d = decide(t, obs())
    assert d.state == S.ABORTED and set(d.actions) == {D.CANCEL_STAGE, D.RELEASE} and d.updates["killed_in"] == st


@pytest.mark.parametrize("st", LIVE + [S.SUBMITTING])
def test_kill_of_a_job_goes_through_aborting(st):
    t = task(st, job_id="42", request="kill")
    d = decide(t, obs(jobs={}))
    assert d.state == S.ABORTING and d.actions == [D.CANCEL] and d.updates["killed_in"] == st


def test_aborting_becomes_aborted_once_the_job_is_gone_and_releases():
    t = task(S.ABORTING, job_id="42", killed_in=S.RUNNING)
    d = decide(t, obs(jobs={t.job_name: JobInfo(t.job_name, "42", FINISHED, exit_code=143, failure="cancelled")}))
    assert d.state == S.ABORTED and D.RELEASE in d.actions and "running" in d.reason


def test_aborting_waits_while_the_job_lives_then_cancels_again():
    t = task(S.ABORTING, job_id="42", killed_in=S.RUNNING)
    t.since = NOW - 10
    o = obs(jobs={t.job_name: JobInfo(t.job_name, "42", RUNNING)})
    assert decide(t, o) is None
    t.since = NOW - 1000
    d = decide(t, o)
    assert d.state == S.ABORTING and d.actions == [D.CANCEL]


@pytest.mark.parametrize("st", sorted(S.TERMINAL))
def test_kill_of_a_finished_task_is_ignored(st):
    t = task(st, request="kill")
    d = decide(t, obs())
    assert d.state == st and d.updates["request"] == ""


@pytest.mark.parametrize("st", sorted(S.TERMINAL))
def test_restart_of_a_finished_task_starts_over_and_keeps_the_old_attempt(st):
    t = task(st, request="restart", job_id="42", exit_code=1)
    d = decide(t, obs())
    assert d.state == S.NEW
    apply(t, d, NOW, ME, "x", None)
    assert t.request == "" and t.job_id == "" and t.exit_code is None and t.past[-1].job_id == "42"


@pytest.mark.parametrize("st", PRE[1:] + HOLDING)
def test_restart_before_submission_goes_back_to_new(st):
    d = decide(task(st, request="restart"), obs())
    assert d.state == S.NEW


@pytest.mark.parametrize("st", LIVE)
def test_restart_of_a_live_job_kills_it_then_restarts(st):
    t = task(st, job_id="42", request="restart")
    d = decide(t, obs(jobs={}))
    assert d.state == S.ABORTING and d.actions == [D.CANCEL]
    apply(t, d, NOW, ME, "x", None)
    t.intent = None
    assert t.request == "restart"
    d2 = decide(t, obs(jobs={t.job_name: JobInfo(t.job_name, "42", ABSENT)}))
    assert d2.state == S.NEW


@pytest.mark.parametrize("st", sorted(S.TERMINAL))
def test_purge_of_a_finished_task_removes_it(st):
    d = decide(task(st, request="purge"), obs())
    assert D.REMOVE in d.actions


def test_purge_of_a_running_task_kills_it_first():
    t = task(S.RUNNING, job_id="42", request="purge")
    d = decide(t, obs(jobs={}))
    assert d.state == S.ABORTING and t.request == "purge" and "request" not in d.updates


# ---- automatic restarts ------------------------------------------------------------
def test_auto_restart_failed_up_to_the_cap():
    pol = Policy(auto_restart_failed=True, max_auto_restarts=2)
    t = task(S.FAILED, auto_restarts=1)
    d = decide(t, obs(), pol)
    assert d.state == S.NEW and d.updates["auto_restarts"] == 2 and "2 of 2" in d.reason
    assert decide(task(S.FAILED, auto_restarts=2), obs(), pol) is None
    assert decide(task(S.FAILED), obs(), Policy()) is None
    assert decide(task(S.ERROR), obs(), pol) is None   # errors need a person


def test_has_work_counts_pending_auto_restarts():
    pol = Policy(auto_restart_failed=True, max_auto_restarts=1)
    assert D.has_work([task(S.FAILED)], pol)
    assert not D.has_work([task(S.FAILED, auto_restarts=1)], pol)
    assert not D.has_work([task(S.COMPLETED)], Policy())
    assert D.has_work([task(S.COMPLETED, request="purge")], Policy())


# ---- plan: shared limits -----------------------------------------------------------
def test_plan_respects_the_staging_limit_in_run_order_and_priority():
    tasks = [task(S.UNSTAGED, run=r, nseg=2) for r in (5, 3, 4, 1)]
    tasks[2].priority = 9     # run 4 first
    out = plan(tasks, obs(staging=StagingView()), Policy(staging_limit=4))
    started = [t.run for t, d in out if d.state == S.STAGING]
    assert started == [4, 1]


def test_plan_counts_segments_of_queued_and_running_jobs():
    busy = [task(S.RUNNING, run=r, nseg=2, job_id=str(r)) for r in (1, 2)]
    waiting = task(S.UNSTAGED, run=3, nseg=2)
    o = obs(staging=StagingView(), jobs={t.job_name: JobInfo(t.job_name, t.job_id, RUNNING) for t in busy})
    assert [d.state for t, d in plan(busy + [waiting], o, Policy(staging_limit=4)) if t is waiting] == []
    # one finishes: its room is free in the same iteration
    o.markers[busy[0].job_name] = Marker(exit_code=0)
    out = {t.run: d.state for t, d in plan(busy + [waiting], o, Policy(staging_limit=4))}
    assert out[1] == S.COMPLETED and out[3] == S.STAGING


def test_plan_caps_jobs():
    staged = [task(S.STAGED, run=r, staged=True) for r in range(5)]
    v = StagingView(present={s.path for t in staged for s in t.segments})
    out = plan(staged, obs(staging=v), Policy(max_jobs=2))
    assert sum(1 for _, d in out if d.state == S.SUBMITTING) == 2


def test_paused_starts_nothing_new_but_follows_jobs():
    t1 = task(S.UNSTAGED, run=1)
    t2 = task(S.RUNNING, run=2, job_id="9")
    o = obs(staging=StagingView(), paused=True, markers={t2.job_name: Marker(exit_code=0)})
    out = {t.run: d.state for t, d in plan([t1, t2], o, Policy())}
    assert out == {2: S.COMPLETED}


def test_every_decision_is_an_allowed_transition():
    """apply() refuses edges missing from states.TRANSITIONS; run every test-like case through it."""
    t = task(S.RUNNING, job_id="1")
    with pytest.raises(ValueError):
        apply(t, D.Decision(S.UNSTAGED), NOW, ME, "x", None)


def test_released_segments_are_no_longer_shown_as_staged():
    t = task(S.RUNNING, job_id="42", staged=True)
    d = decide(t, obs(markers={t.job_name: Marker(exit_code=0)}))
    apply(t, d, NOW, ME, "x", None)
    assert t.state == S.COMPLETED and not any(s.staged for s in t.segments)
    f = task(S.RUNNING, job_id="43", staged=True)
    apply(f, decide(f, obs(markers={f.job_name: Marker(exit_code=3)})), NOW, ME, "x", None)
    assert f.state == S.FAILED and all(s.staged for s in f.segments)   # kept (release_failed_files off)


# ---- a job whose command cannot run (issue 16) ---------------------------------------
def test_no_staging_for_a_job_whose_command_is_missing_said_once_per_task():
    t, other = task(S.UNSTAGED, run=1), task(S.UNSTAGED, run=2, job="hist")
    o = obs(staging=StagingView(), unsubmittable_jobs={"analysis": "the job command ./reco does not exist"})
    ds = dict((x.run, d) for x, d in plan([t, other], o, Policy()))
    assert ds[1].state == S.UNSTAGED and ds[1].actions == []
    assert ds[1].reason == "not staged: the job command ./reco does not exist; staging starts once it is fixed"
    assert ds[2].state == S.STAGING and ds[2].actions == [D.STAGE]       # another job's runs go on
    assert D.blocked_by_command([t, other], o.unsubmittable_jobs) == set()   # not yet said
    apply(t, ds[1], NOW, ME, "x", o.staging)
    assert decide(t, o) is None                                           # not again every iteration
    assert D.blocked_by_command([t, other], o.unsubmittable_jobs) == {t.key}
    assert decide(t, obs(staging=StagingView())).actions == [D.STAGE]     # fixed: staged


def test_a_missing_command_does_not_hold_back_segments_already_on_disk():
    t = task(S.UNSTAGED)
    d = decide(t, obs(staging=StagingView(present=present(t)), unsubmittable_jobs={"analysis": "gone"}))
    assert d.state == S.STAGED and d.actions == []
