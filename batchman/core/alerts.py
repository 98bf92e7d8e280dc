"""Which alert conditions start or end, from the status file alone (pure; ``now`` passed in).

A production runs for days unwatched. :func:`evaluate` compares what the status says now
with what was already told (``AlertState``) and returns the messages to send: one when a
condition starts, one when it ends, never one per iteration; when more than
``Conditions.digest_after`` fire in the same evaluation they go out as one digest.

Conditions (``notify:`` in batchman.yaml sets their thresholds; 0 turns one off):

* ``stalled``: no task changed state for ``stall_minutes`` while work is pending;
* ``failures:<class>``: of the attempts that ended in the last ``failure_window`` seconds, at
  least ``failure_min_attempts``, the share of one failure class reached ``failure_rate``;
  it ends when the share falls under half the threshold (no flapping at the edge);
* ``batch-unreachable`` / ``staging-unreachable``: the system could not be asked for
  ``unreachable_minutes``; it ends when it answers again;
* ``finished`` (an event, no end): nothing is left to do; counts per final state, wall time, page;
* ``exhausted:<task>`` (an event per attempt): a run failed and no retry is left.

The sending, the state file and the clock live in ``batchman.notify``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

import msgspec

from batchman.core import retry as R
from batchman.core import states as S
from batchman.core.model import Status, Task

START, END, EVENT, DIGEST = "start", "end", "event", "digest"

# "23 of the last 40 attempts ran out of memory"
PHRASES = {
    R.OUT_OF_MEMORY: "ran out of memory", R.TIMEOUT: "hit their time limit",
    R.NODE_FAIL: "lost their node", R.PREEMPTED: "were preempted", R.REQUEUED: "were requeued",
    R.CANCELLED: "were cancelled outside batchman", R.BOOT_FAIL: "failed to boot",
    R.EXIT_NONZERO: "exited non-zero", R.MISSING_OUTPUTS: "left declared outputs missing",
    R.INCOMPLETE: "analysed fewer segments than staged", R.SUBMIT_REJECTED: "were refused by the batch system",
    R.LOST: "vanished without an exit status",
}
DIGEST_LINES = 20


@dataclass(frozen=True)
class Conditions:
    """Thresholds (from ``notify.*`` in batchman.yaml)."""
    experiment: str = ""
    stall_minutes: float = 120.0
    failure_rate: float = 0.5
    failure_min_attempts: int = 10
    failure_window: float = 3600.0
    unreachable_minutes: float = 15.0
    finished: bool = True
    exhausted: bool = True
    digest_after: int = 3
    page: str = ""                     # the status page's path, named in the "finished" message


class Active(msgspec.Struct):
    since: float
    text: str


class AlertState(msgspec.Struct, omit_defaults=True):
    """What was already told: the conditions in force and the events sent."""
    active: dict[str, Active] = {}
    finished: bool = False                 # the end of the production was told
    exhausted: dict[str, int] = {}         # task key -> attempt whose exhaustion was told
    staging_down_since: float | None = None


class Message(msgspec.Struct, omit_defaults=True):
    key: str              # condition: stalled, failures:out-of-memory, finished, exhausted:12.analysis, digest
    kind: str             # start | end | event | digest
    title: str
    body: str
    at: float


def _minutes(seconds: float) -> str:
    m = seconds / 60
    return f"{m:.0f} min" if m < 120 else f"{m / 60:.1f} h"


def _pending(tasks: list[Task]) -> list[Task]:
    return [t for t in tasks if t.state in S.ACTIVE and not t.held]


def _stalled(st: Status, c: Conditions, now: float) -> str | None:
    if not c.stall_minutes:
        return None
    pending = _pending(st.tasks)
    if not pending:
        return None
    last = max(t.since for t in st.tasks)
    if now - last < c.stall_minutes * 60:
        return None
    by = Counter(t.state for t in pending)
    what = ", ".join(f"{n} {s}" for s, n in sorted(by.items(), key=lambda x: -x[1]))
    return f"no task changed state for {_minutes(now - last)} while {len(pending)} task(s) are pending ({what})"


_ENDED = frozenset({S.COMPLETED, S.INCOMPLETE, S.FAILED})


def ended_attempts(tasks: list[Task]) -> list[tuple[float, str]]:
    """(end time, failure class or '' for success) of every ended attempt on record."""
    out = []
    classify = R.classify
    for t in tasks:
        if t.past:
            for a in t.past:
                if a.finished_at is not None:
                    out.append((a.finished_at, a.failure_class or classify(a.state, a.failure, a.exit_code)))
        if t.finished_at is not None and t.state in _ENDED:
            out.append((t.finished_at, t.failure_class or classify(t.state, t.failure, t.exit_code)))
    return out


def attempts_in_window(tasks: list[Task], now: float, window: float,
                       ended: list[tuple[float, str]] | None = None) -> list[str]:
    """Failure class ('' for success) of every attempt that ended in the last ``window`` seconds."""
    lo = now - window
    return [c for at, c in (ended if ended is not None else ended_attempts(tasks)) if lo <= at <= now]


def _failures(st: Status, c: Conditions, now: float, active: dict[str, Active],
              ended: list[tuple[float, str]] | None) -> dict[str, str]:
    if not c.failure_rate:
        return {}
    classes = attempts_in_window(st.tasks, now, c.failure_window, ended)
    n = len(classes)
    if n < c.failure_min_attempts:
        return {}
    out = {}
    for cls, k in Counter(x for x in classes if x).items():
        key = f"failures:{cls}"
        share = k / n
        if share >= c.failure_rate or (key in active and share >= c.failure_rate / 2):
            out[key] = (f"{k} of the last {n} attempts {PHRASES.get(cls, 'failed as ' + cls)} "
                        f"({share:.0%} in the last {_minutes(c.failure_window)}; threshold {c.failure_rate:.0%})")
    return out


def _staging_down(st: Status, state: AlertState) -> float | None:
    """Since when the staging system has not answered (the status field, else the last iteration's errors)."""
    if st.staging_unreachable_since is not None:
        return st.staging_unreachable_since
    li = st.last_iteration
    if li is not None and any(e.startswith("staging system:") for e in li.errors):
        return state.staging_down_since if state.staging_down_since is not None else li.at
    return None


def _unreachable(st: Status, c: Conditions, now: float, staging_since: float | None) -> dict[str, str]:
    if not c.unreachable_minutes:
        return {}
    out = {}
    limit = c.unreachable_minutes * 60
    if st.batch_unreachable_since is not None and now - st.batch_unreachable_since >= limit:
        err = f": {st.batch_last_error}" if st.batch_last_error else ""
        out["batch-unreachable"] = f"the batch system has not answered for {_minutes(now - st.batch_unreachable_since)}{err}"
    if staging_since is not None and now - staging_since >= limit:
        out["staging-unreachable"] = f"the staging system has not answered for {_minutes(now - staging_since)}"
    return out


def finished_text(st: Status, page: str) -> str:
    by = Counter(t.state for t in st.tasks)
    counts = ", ".join(f"{by[s]} {s}" for s in S.ALL if by[s])
    start = min((t.added_at for t in st.tasks if t.added_at), default=st.created)
    end = max((t.finished_at or t.since for t in st.tasks), default=start)
    text = f"production finished: {len(st.tasks)} task(s): {counts}; wall time {_minutes(max(0.0, end - start))}"
    return text + (f"; status page {page}" if page else "")


ENDINGS = {
    "stalled": "tasks change state again",
    "batch-unreachable": "the batch system answers again",
    "staging-unreachable": "the staging system answers again",
    "daemon-dead": "a daemon is alive again",      # set by watchdog(), ended by the daemon's first evaluation
}


_PROBLEM = frozenset({S.FAILED, S.INCOMPLETE, S.ERROR})


def _exhausted(st: Status, retry_left: Callable[[Task], bool], told: dict[str, int]) -> dict[str, tuple[int, str]]:
    """Tasks whose attempt failed with no automatic retry left: key -> (attempt, text)."""
    out = {}
    for t in st.tasks:
        if t.state not in _PROBLEM or not t.attempt or t.request:
            continue
        if told.get(t.key) == t.attempt:            # told already: the retry policy is not asked again
            out[t.key] = (t.attempt, "")
            continue
        cls = t.failure_class or R.classify(t.state, t.failure, t.exit_code)
        if not cls or retry_left(t):
            continue
        why = t.error or t.reason
        out[t.key] = (t.attempt, f"run {t.run} ({t.job}) is {t.state} after {t.attempt} attempt(s), no retry left: "
                                 f"{cls}" + (f" ({why})" if why else ""))
    return out


def _title(c: Conditions, m: str) -> str:
    return f"batchman {c.experiment}: {m}" if c.experiment else f"batchman: {m}"


def evaluate(state: AlertState, st: Status, c: Conditions, now: float,
             retry_left: Callable[[Task], bool] = lambda t: False,
             ended: list[tuple[float, str]] | None = None) -> tuple[AlertState, list[Message]]:
    """(the new state, the messages to send) for the status ``st`` at ``now``.

    ``retry_left(task)``: will the daemon retry this failed task by itself (the retry policy)?
    ``ended``: ``ended_attempts(st.tasks)`` if the caller has it already (the metrics need it too).
    """
    staging_since = _staging_down(st, state)
    firing: dict[str, str] = {}
    stalled = _stalled(st, c, now)
    if stalled:
        firing["stalled"] = stalled
    firing |= _failures(st, c, now, state.active, ended)
    firing |= _unreachable(st, c, now, staging_since)
    msgs: list[Message] = []
    active = dict(state.active)
    for key, text in firing.items():
        if key not in active:
            active[key] = Active(since=now, text=text)
            msgs.append(Message(key, START, _title(c, text), text, now))
    for key in [k for k in active if k not in firing]:
        was = active.pop(key)
        lasted = _minutes(now - was.since)
        end = ENDINGS.get(key) or f"{key.split(':', 1)[-1]} failures back under half the threshold"
        msgs.append(Message(key, END, _title(c, f"resolved: {end}"), f"{end} (alert lasted {lasted}; it said: {was.text})", now))
    finished = state.finished
    # (an intent left on a finished task is a release of its files: the production is done)
    busy = any(t.state in S.ACTIVE or t.request for t in st.tasks)
    if c.finished and st.tasks and not busy:
        if not finished:
            text = finished_text(st, c.page)
            msgs.append(Message("finished", EVENT, _title(c, "production finished"), text, now))
            finished = True
    elif busy:
        finished = False
    told = {}
    if c.exhausted:
        for key, (attempt, text) in _exhausted(st, retry_left, state.exhausted).items():
            if state.exhausted.get(key) != attempt:
                msgs.append(Message(f"exhausted:{key}", EVENT, _title(c, f"retries exhausted: {text}"), text, now))
            told[key] = attempt
    new = AlertState(active=active, finished=finished, exhausted=told, staging_down_since=staging_since)
    return new, digest(msgs, c)


def digest(msgs: list[Message], c: Conditions) -> list[Message]:
    """More than ``c.digest_after`` messages at once: one digest instead (at most DIGEST_LINES lines)."""
    if len(msgs) <= max(c.digest_after, 1):
        return msgs
    kinds = Counter(m.kind for m in msgs)
    head = ", ".join(f"{n} {k}" for k, n in kinds.items())
    lines = [f"- [{m.kind}] {m.body}" for m in msgs[:DIGEST_LINES]]
    if len(msgs) > DIGEST_LINES:
        lines.append(f"- ... and {len(msgs) - DIGEST_LINES} more (see the status page)")
    return [Message("digest", DIGEST, _title(c, f"{len(msgs)} alerts ({head})"), "\n".join(lines), msgs[0].at)]


def watchdog(state: AlertState, st: Status, c: Conditions, now: float, stale_after: float,
             pending: bool) -> tuple[AlertState, list[Message], str]:
    """For ``batchman watch-daemon``: is work pending while no daemon's heartbeat is fresh?

    Returns (new state, messages: one when the daemon is found dead, one when one is back,
    the problem text or '')."""
    last = max([d.heartbeat for d in st.daemons] + ([st.last_round] if st.last_round is not None else []), default=None)
    problem = ""
    if pending and (last is None or now - last > stale_after):
        ago = f"its last heartbeat was {_minutes(now - last)} ago" if last is not None else "no daemon ever ran"
        problem = f"work is pending but no daemon is alive ({ago}; stale after {stale_after:g} s): start batchman-daemon"
    active = dict(state.active)
    msgs = []
    if problem and "daemon-dead" not in active:
        active["daemon-dead"] = Active(since=now, text=problem)
        msgs.append(Message("daemon-dead", START, _title(c, problem), problem, now))
    elif not problem and "daemon-dead" in active:
        was = active.pop("daemon-dead")
        text = f"a daemon is alive again (it was missing for {_minutes(now - was.since)})"
        msgs.append(Message("daemon-dead", END, _title(c, "resolved: " + text), text, now))
    new = msgspec.structs.replace(state, active=active)
    return new, msgs, problem
