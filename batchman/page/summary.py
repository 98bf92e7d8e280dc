"""What the top of the status page says, computed from one generation of the status file.

Pure functions: the status (or its tasks) and ``now`` come in, numbers and short texts go
out. No clock, no files, no HTML here, so every case is a fast table test.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from batchman.core import states as S
from batchman.core.model import Status, Task

HOUR = 3600.0
# The bar's order and the plots' groups: what a coordinator tells apart at a glance.
GROUPS = (
    ("completed", (S.COMPLETED, S.SKIPPED)),
    ("problem", (S.FAILED, S.ERROR, S.INCOMPLETE, S.ABORTED)),
    ("in batch", (S.SUBMITTING, S.SUBMITTED, S.QUEUED, S.RUNNING, S.ABORTING)),
    ("staging", (S.STAGING, S.STAGED)),
    ("waiting", (S.NEW, S.UNSTAGED)),
)
GROUP_OF = {s: g for g, members in GROUPS for s in members}
# States collapsed into run ranges that open on demand instead of one row per task.
BULK = (S.COMPLETED, S.SKIPPED, S.NEW, S.UNSTAGED)


@dataclass
class Progress:
    total: int = 0
    counts: Counter = field(default_factory=Counter)
    done: int = 0                 # completed or skipped
    finished: int = 0             # in any terminal state
    pending: int = 0              # the daemon still has work for these
    problems: int = 0
    last_hour: int = 0            # tasks that ended in the last hour (any terminal state)
    rate_per_hour: float = 0.0    # ends per hour, over the last hours
    eta_s: float | None = None    # seconds until the pending tasks are done at that rate
    failure_rate: float | None = None   # problems among the tasks ended in the last hours


def progress(tasks: list[Task], now: float, window: float = 6 * HOUR) -> Progress:
    """Completed of total, the recent rate of ends, an estimate of the end, the failure rate.

    The rate is taken over the last ``window`` seconds (or since the first end, if later),
    so a production that slows down shows it within hours; the estimate is the pending
    tasks at that rate.
    """
    p = Progress(total=len(tasks), counts=Counter(t.state for t in tasks))
    c = p.counts
    p.done = c[S.COMPLETED] + c[S.SKIPPED]
    p.finished = sum(c[s] for s in S.TERMINAL)
    p.pending = sum(c[s] for s in S.ACTIVE)
    p.problems = sum(c[s] for s in S.PROBLEM)
    recent_ok = recent_bad = 0
    first = now
    since, hour_ago = now - window, now - HOUR
    for t in tasks:
        st = t.state
        if st not in S.TERMINAL or st == S.SKIPPED:
            continue
        end = t.finished_at or t.since
        if not end or end < since:
            continue
        if end < first:
            first = end
        if end >= hour_ago:
            p.last_hour += 1
        if st == S.COMPLETED:
            recent_ok += 1
        else:
            recent_bad += 1
    recent = recent_ok + recent_bad
    if recent:
        span = max(now - first, 10 * 60.0)     # a burst of ends is not a rate
        p.rate_per_hour = recent / span * HOUR
        p.failure_rate = recent_bad / recent
        if p.pending:
            p.eta_s = p.pending / p.rate_per_hour * HOUR
    return p


def bar_segments(counts: Counter, total: int) -> list[tuple[str, int, float]]:
    """(group, tasks, percent of total) in the bar's order, groups without tasks left out."""
    out = []
    for g, members in GROUPS:
        n = sum(counts[s] for s in members)
        if n:
            out.append((g, n, 100.0 * n / total if total else 0.0))
    return out


@dataclass
class ProblemGroup:
    state: str
    cause: str        # failure class, or the kind of failure
    reason: str       # the shared reason, as a person reads it
    runs: list[int]
    retry: str = ""   # what the retry policy made of it (from the last attempt)
    keys: list[str] = field(default_factory=list)

    @property
    def ranges(self) -> str:
        return ranges(self.runs)


def ranges(runs: list[int]) -> str:
    """'1-3,5' from sorted runs without repeats (runspec.compress's output, faster for 100,000)."""
    if not runs:
        return ""
    starts = [0] + [i for i, (a, b) in enumerate(zip(runs, runs[1:]), 1) if b != a + 1]
    ends = starts[1:] + [len(runs)]
    return ",".join(str(runs[i]) if j - i == 1 else f"{runs[i]}-{runs[j - 1]}" for i, j in zip(starts, ends))


def _cause(t: Task) -> str:
    return t.failure_class or t.failure or t.state


def _reason(t: Task) -> str:
    text = (t.error or t.reason or "").strip()
    return text.splitlines()[0][:160] if text else "no reason recorded"


def problem_groups(tasks: list[Task]) -> list[ProblemGroup]:
    """Tasks that ended badly, grouped by state, failure class and reason, biggest group first."""
    groups: dict[tuple, ProblemGroup] = {}
    for t in tasks:
        if t.state not in S.PROBLEM:
            continue
        k = (t.state, _cause(t), _reason(t))
        g = groups.get(k)
        if g is None:
            retry = t.past[-1].retry if t.past else ""
            g = groups[k] = ProblemGroup(t.state, k[1], k[2], [], retry)
        g.runs.append(t.run)
        g.keys.append(t.key)
    for g in groups.values():
        g.runs = sorted(set(g.runs))
    return sorted(groups.values(), key=lambda g: (-len(g.runs), g.state, g.cause, g.reason))


def breakdown(tasks: list[Task], by: str) -> dict[str, Counter]:
    """Counts per state for each job definition (``by='job'``) or each run-list value (a meta column)."""
    pairs = Counter((t.job, t.state) for t in tasks) if by == "job" else \
        Counter((t.meta.get(by, ""), t.state) for t in tasks)
    out: dict[str, Counter] = defaultdict(Counter)
    for (key, state), n in pairs.items():
        out[key][state] += n
    return dict(sorted(out.items()))


def bulk_runs(tasks: list[Task]) -> dict[str, list[int]]:
    """For each bulk state, its runs (sorted, each once)."""
    out: dict[str, set[int]] = defaultdict(set)
    for t in tasks:
        if t.state in BULK:
            out[t.state].add(t.run)
    return {s: sorted(out[s]) for s in BULK if out.get(s)}


def listed(tasks: list[Task], cap: int, per_group: int = 100) -> tuple[list[Task], dict[str, list[int]]]:
    """The tasks listed one row each, at most ``cap``: problems first (biggest cause first, at
    most ``per_group`` of each, so every cause has rows to look at), then the active ones.

    Returns them and, per state, the runs of tasks left out (shown as ranges).
    """
    groups: dict[tuple, list[Task]] = defaultdict(list)
    for t in tasks:
        if t.state in S.PROBLEM:
            groups[(t.state, _cause(t), _reason(t))].append(t)
    problem, left = [], []
    for k in sorted(groups, key=lambda k: (-len(groups[k]), k)):
        g = sorted(groups[k], key=lambda t: (t.run, t.job))
        problem += g[:per_group]
        left += g[per_group:]
    rank = {s: i for i, s in enumerate(S.ALL)}
    active = sorted((t for t in tasks if t.state in S.ACTIVE and t.state not in BULK),
                    key=lambda t: (rank[t.state], t.run, t.job))
    rows = (problem + active)[:cap]
    over: dict[str, set[int]] = defaultdict(set)
    for t in left + (problem + active)[cap:]:
        over[t.state].add(t.run)
    return rows, {s: sorted(r) for s, r in over.items()}


def run_times(tasks: list[Task]) -> list[tuple[float, int]]:
    """(seconds the job ran, run) of every completed task with both stamps."""
    return [(t.finished_at - t.started_at, t.run) for t in tasks
            if t.state == S.COMPLETED and t.started_at and t.finished_at and t.finished_at >= t.started_at]


def quantile(sorted_values: list[float], q: float) -> float:
    """The q-quantile of already sorted values (linear interpolation)."""
    if not sorted_values:
        return 0.0
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def slow_tail(times: list[tuple[float, int]], q: float = 0.95, show: int = 8) -> tuple[float, list[tuple[float, int]]]:
    """The run time above which the slowest ``1-q`` lie, and the slowest runs (longest first)."""
    if not times:
        return 0.0, []
    limit = quantile(sorted(d for d, _ in times), q)
    slowest = [x for x in heapq.nlargest(show, times) if x[0] > limit]
    return limit, slowest


def heartbeat(status: Status, now: float, stale_after: float) -> tuple[str, str, float | None]:
    """(text, level, heartbeat instant) for the daemon line; the page adds the heartbeat's age.

    level is 'ok' (a daemon beat recently), 'calm' (no daemon and nothing to do: the
    production is finished) or 'bad' (no daemon although work is pending, or a stale one).
    """
    pending = sum(1 for t in status.tasks if t.state in S.ACTIVE)
    if not status.daemons:
        if not pending:
            return "no daemon running (production finished)", "calm", None
        return (f"no daemon running, {pending} task(s) pending: start one with `batchman-daemon`",
                "bad", None)
    d = max(status.daemons, key=lambda d: d.heartbeat)
    more = f" (+{len(status.daemons) - 1} more)" if len(status.daemons) > 1 else ""
    return f"daemon pid {d.pid} on {d.host}{more}", "ok" if now - d.heartbeat <= stale_after else "bad", d.heartbeat


def pause_line(status: Status) -> str:
    if not status.paused:
        return ""
    who = f" by {status.paused_by}" if status.paused_by else ""
    return f"PAUSED{who}: no new staging or submissions until `batchman resume`"
