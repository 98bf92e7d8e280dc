"""The alert conditions, row by row: what starts, what ends, what is told once (pure)."""

from __future__ import annotations

import pytest

from batchman.core import alerts as A
from batchman.core import states as S
from batchman.core.model import Attempt, IterationLog, Status, Task

NOW = 1_000_000.0
C = A.Conditions(experiment="exp", stall_minutes=60, failure_rate=0.5, failure_min_attempts=10,
                 unreachable_minutes=15, digest_after=3, page="/www/status.html")


def task(run, state=S.RUNNING, since=NOW - 60, **kw):
    return Task(run=run, state=state, since=since, added_at=NOW - 7200, **kw)


def failed(run, cls, at=NOW - 600, **kw):
    return task(run, S.FAILED, since=at, finished_at=at, attempt=1, failure_class=cls, **kw)


def done(run, at=NOW - 600):
    return task(run, S.COMPLETED, since=at, finished_at=at, attempt=1)


def keys(msgs):
    return [(m.key, m.kind) for m in msgs]


# (what the status looks like, active before, the expected (key, kind) messages)
ROWS = [
    ("nothing pending, nothing told", Status(tasks=[done(1)]), {}, [("finished", "event")]),
    ("running, changed a minute ago", Status(tasks=[task(1)]), {}, []),
    ("running, unchanged for 61 min: stalled starts", Status(tasks=[task(1, since=NOW - 61 * 60)]), {},
     [("stalled", "start")]),
    ("stalled already told: nothing", Status(tasks=[task(1, since=NOW - 90 * 60)]), {"stalled"}, []),
    ("a task moved: stalled ends", Status(tasks=[task(1, since=NOW - 5)]), {"stalled"}, [("stalled", "end")]),
    ("held tasks only are not pending work", Status(tasks=[task(1, S.NEW, since=NOW - 99999, held=True)]), {}, []),
    ("6 of 10 out of memory: failure spike starts",
     Status(tasks=[failed(i, "out-of-memory") for i in range(6)] + [done(i) for i in range(6, 10)] + [task(99)]),
     {}, [("failures:out-of-memory", "start")]),
    ("6 of 10 but only 9 attempts in the window",
     Status(tasks=[failed(i, "out-of-memory") for i in range(6)] + [done(i) for i in range(6, 9)] + [task(99)]),
     {}, []),
    ("the failures are older than the window",
     Status(tasks=[failed(i, "timeout", at=NOW - 4000) for i in range(10)] + [task(99)]), {}, []),
    ("3 of 10 while active: above half the threshold, stays",
     Status(tasks=[failed(i, "timeout") for i in range(3)] + [done(i) for i in range(3, 10)] + [task(99)]),
     {"failures:timeout"}, []),
    ("2 of 10 while active: under half, ends",
     Status(tasks=[failed(i, "timeout") for i in range(2)] + [done(i) for i in range(2, 10)] + [task(99)]),
     {"failures:timeout"}, [("failures:timeout", "end")]),
    ("batch down 16 min: starts", Status(tasks=[task(1)], batch_unreachable_since=NOW - 16 * 60), {},
     [("batch-unreachable", "start")]),
    ("batch down 5 min: not yet", Status(tasks=[task(1)], batch_unreachable_since=NOW - 5 * 60), {}, []),
    ("batch back: ends", Status(tasks=[task(1)]), {"batch-unreachable"}, [("batch-unreachable", "end")]),
    ("staging down 20 min: starts", Status(tasks=[task(1)], staging_unreachable_since=NOW - 20 * 60), {},
     [("staging-unreachable", "start")]),
]


@pytest.mark.parametrize("why,status,active,expected", ROWS, ids=[r[0] for r in ROWS])
def test_conditions(why, status, active, expected):
    state = A.AlertState(active={k: A.Active(since=NOW - 3600, text="before") for k in active})
    _new, msgs = A.evaluate(state, status, C, NOW, retry_left=lambda t: True)
    assert keys(msgs) == expected


def test_failure_message_counts_the_attempts_of_the_window():
    tasks = [failed(i, "out-of-memory") for i in range(23)] + [done(i) for i in range(23, 40)] + [task(99)]
    _s, msgs = A.evaluate(A.AlertState(), Status(tasks=tasks), C, NOW)
    assert "23 of the last 40 attempts ran out of memory" in msgs[0].body


def test_past_attempts_count_too():
    t = task(1, past=tuple(Attempt(n=k, state=S.FAILED, failure_class="timeout", finished_at=NOW - 100) for k in range(10)))
    _s, msgs = A.evaluate(A.AlertState(), Status(tasks=[t]), C, NOW)
    assert keys(msgs) == [("failures:timeout", "start")]
    assert "10 of the last 10 attempts hit their time limit" in msgs[0].body


def test_a_condition_is_told_once_across_iterations_and_once_when_it_ends():
    st = Status(tasks=[task(1, since=NOW - 61 * 60)])
    state, told = A.AlertState(), []
    for k in range(10):                                   # ten iterations, a minute apart
        state, msgs = A.evaluate(state, st, C, NOW + 60 * k)
        told += keys(msgs)
    st.tasks[0].since = NOW + 700
    for k in range(3):
        state, msgs = A.evaluate(state, st, C, NOW + 720 + 60 * k)
        told += keys(msgs)
    assert told == [("stalled", "start"), ("stalled", "end")]


def test_finished_tells_counts_wall_time_and_page_once():
    st = Status(tasks=[done(1, at=NOW - 60), failed(2, "exit-nonzero"), task(3, S.SKIPPED)])
    state, msgs = A.evaluate(A.AlertState(), st, C, NOW, retry_left=lambda t: True)
    assert keys(msgs) == [("finished", "event")]
    body = msgs[0].body
    assert "1 completed, 1 failed, 1 skipped" in body and "/www/status.html" in body
    assert "wall time 119 min" in body                   # first added 2 h before NOW, last end 1 min before
    state, msgs = A.evaluate(state, st, C, NOW + 60, retry_left=lambda t: True)
    assert msgs == []
    st.tasks.append(task(4, S.NEW))                       # more work: a later end is told again
    state, _ = A.evaluate(state, st, C, NOW + 120, retry_left=lambda t: True)
    st.tasks[-1] = done(4, at=NOW + 150)
    _, msgs = A.evaluate(state, st, C, NOW + 180, retry_left=lambda t: True)
    assert keys(msgs) == [("finished", "event")]


def test_exhausted_is_told_once_per_attempt():
    st = Status(tasks=[failed(7, "out-of-memory", error="exceeded memory"), task(8)])
    state, msgs = A.evaluate(A.AlertState(), st, C, NOW)
    assert keys(msgs) == [("exhausted:7.analysis", "event")]
    assert "run 7" in msgs[0].body and "out-of-memory" in msgs[0].body
    state, msgs = A.evaluate(state, st, C, NOW + 60)
    assert msgs == []
    st.tasks[0].attempt = 2                               # a person restarted it; it failed again
    _, msgs = A.evaluate(state, st, C, NOW + 120)
    assert keys(msgs) == [("exhausted:7.analysis", "event")]


def test_a_failed_task_the_daemon_will_retry_is_not_exhausted():
    st = Status(tasks=[failed(7, "out-of-memory"), task(8)])
    _, msgs = A.evaluate(A.AlertState(), st, C, NOW, retry_left=lambda t: True)
    assert msgs == []


def test_many_at_once_make_one_digest():
    st = Status(tasks=[failed(i, "exit-nonzero") for i in range(30)] + [task(99, since=NOW - 7200)],
                batch_unreachable_since=NOW - 3600)
    _, msgs = A.evaluate(A.AlertState(), st, C, NOW)      # 30 exhausted + failures + batch down
    assert keys(msgs) == [("digest", "digest")]
    assert "32 alerts (2 start, 30 event)" in msgs[0].title
    lines = msgs[0].body.splitlines()
    assert len(lines) == A.DIGEST_LINES + 1 and "12 more" in lines[-1]


@pytest.mark.parametrize("field,value", [("stall_minutes", 0), ("failure_rate", 0), ("unreachable_minutes", 0)])
def test_zero_turns_a_condition_off(field, value):
    import dataclasses
    st = Status(tasks=[failed(i, "timeout") for i in range(10)] + [task(99, since=NOW - 9999)],
                batch_unreachable_since=NOW - 9999)
    c = dataclasses.replace(C, **{"stall_minutes": 5, field: value}, digest_after=10)
    _, msgs = A.evaluate(A.AlertState(), st, c, NOW, retry_left=lambda t: True)
    started = {m.key.split(":")[0] for m in msgs}
    gone = {"stall_minutes": "stalled", "failure_rate": "failures", "unreachable_minutes": "batch-unreachable"}[field]
    assert gone not in started and len(started) == 2


def test_staging_outage_from_the_iteration_errors_keeps_its_start():
    st = Status(tasks=[task(1)], last_iteration=IterationLog(at=NOW - 1200, errors=["staging system: timed out"]))
    state, msgs = A.evaluate(A.AlertState(), st, C, NOW - 1200)
    assert msgs == [] and state.staging_down_since == NOW - 1200
    st.last_iteration = IterationLog(at=NOW, errors=["staging system: timed out"])
    state, msgs = A.evaluate(state, st, C, NOW)
    assert keys(msgs) == [("staging-unreachable", "start")] and "20 min" in msgs[0].body
    st.last_iteration = IterationLog(at=NOW + 60)
    state, msgs = A.evaluate(state, st, C, NOW + 60)
    assert keys(msgs) == [("staging-unreachable", "end")] and state.staging_down_since is None


from batchman.core.model import Daemon  # noqa: E402


@pytest.mark.parametrize("why,daemons,pending,expected,problem", [
    ("fresh heartbeat, work pending", [Daemon("h:1", "h", 1, 0, NOW - 10)], True, [], False),
    ("stale heartbeat, work pending", [Daemon("h:1", "h", 1, 0, NOW - 600)], True, [("daemon-dead", "start")], True),
    ("stale heartbeat, nothing pending", [Daemon("h:1", "h", 1, 0, NOW - 600)], False, [], False),
    ("no daemon ever, work pending", [], True, [("daemon-dead", "start")], True),
])
def test_watchdog(why, daemons, pending, expected, problem):
    state, msgs, text = A.watchdog(A.AlertState(), Status(daemons=daemons), C, NOW, 300, pending)
    assert keys(msgs) == expected and bool(text) == problem
    _, again, _ = A.watchdog(state, Status(daemons=daemons), C, NOW + 60, 300, pending)
    assert again == []                                     # cron runs it every few minutes: told once


def test_watchdog_tells_when_a_daemon_is_back():
    state, _, _ = A.watchdog(A.AlertState(), Status(), C, NOW, 300, True)
    _, msgs, text = A.watchdog(state, Status(daemons=[Daemon("h:2", "h", 2, NOW, NOW + 50)]), C, NOW + 60, 300, True)
    assert keys(msgs) == [("daemon-dead", "end")] and text == ""


def test_a_restarted_daemon_ends_the_watchdog_alert_once():
    state, _, _ = A.watchdog(A.AlertState(), Status(), C, NOW, 300, True)
    state, msgs = A.evaluate(state, Status(tasks=[task(1)]), C, NOW + 60)
    assert keys(msgs) == [("daemon-dead", "end")] and "alive again" in msgs[0].body
    _, _, text = A.watchdog(state, Status(daemons=[Daemon("h:2", "h", 2, NOW, NOW + 60)]), C, NOW + 90, 300, True)
    assert text == ""


def test_finished_while_the_last_release_is_still_an_intent():
    from batchman.core.model import Intent
    st = Status(tasks=[done(1)])
    st.tasks[0].intent = Intent(actions=["release"], owner="h:1", at=NOW)
    _, msgs = A.evaluate(A.AlertState(), st, C, NOW)
    assert keys(msgs) == [("finished", "event")]
    st.tasks[0].request = "restart"
    _, msgs = A.evaluate(A.AlertState(), st, C, NOW)
    assert msgs == []
