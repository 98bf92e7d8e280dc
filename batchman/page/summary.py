"""What the top of the status page says, computed from one generation of the status file.

Pure functions: the status (or its tasks) and ``now`` come in, numbers and short texts go
out. No clock, no files, no HTML here, so every case is a fast table test.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict

from batchman.core import states as S
from batchman.core.model import Status, Task
from batchman.page.tally import BULK, HOUR, ProblemGroup, Progress, Tally  # noqa: F401 - re-exported

# The bar's order and the plots' groups: what a coordinator tells apart at a glance.
GROUPS = (
    ("completed", (S.COMPLETED, S.SKIPPED)),
    ("problem", (S.FAILED, S.ERROR, S.INCOMPLETE, S.ABORTED)),
    ("in batch", (S.SUBMITTING, S.SUBMITTED, S.QUEUED, S.RUNNING, S.ABORTING)),
    ("staging", (S.STAGING, S.STAGED)),
    ("waiting", (S.NEW, S.UNSTAGED)),
)
GROUP_OF = {s: g for g, members in GROUPS for s in members}


def progress(tasks: list[Task], now: float, window: float = 6 * HOUR) -> Progress:
    """Completed of total, the recent rate of ends, an estimate of the end, the failure rate
    (``Tally.progress`` of these tasks)."""
    return Tally(tasks).progress(now, window)


def bar_segments(counts: Counter, total: int) -> list[tuple[str, int, float]]:
    """(group, tasks, percent of total) in the bar's order, groups without tasks left out."""
    out = []
    for g, members in GROUPS:
        n = sum(counts[s] for s in members)
        if n:
            out.append((g, n, 100.0 * n / total if total else 0.0))
    return out


def ranges(runs: list[int]) -> str:
    """'1-3,5' from sorted runs without repeats (runspec.compress's output, faster for 100,000)."""
    if not runs:
        return ""
    starts = [0] + [i for i, (a, b) in enumerate(zip(runs, runs[1:]), 1) if b != a + 1]
    ends = starts[1:] + [len(runs)]
    return ",".join(str(runs[i]) if j - i == 1 else f"{runs[i]}-{runs[j - 1]}" for i, j in zip(starts, ends))


def problem_groups(tasks: list[Task]) -> list[ProblemGroup]:
    """Tasks that ended badly, grouped by state, failure class and reason, biggest group first."""
    return Tally(tasks).problem_groups(tasks)


def breakdown(tasks: list[Task], by: str) -> dict[str, Counter]:
    """Counts per state for each job definition (``by='job'``) or each run-list value (a meta column)."""
    if by in ("job", "dataset"):
        return Tally(tasks).breakdown(by)
    pairs = Counter((t.meta.get(by, ""), t.state) for t in tasks)
    out: dict[str, Counter] = defaultdict(Counter)
    for (key, state), n in pairs.items():
        out[key][state] += n
    return dict(sorted(out.items()))


def bulk_runs(tasks: list[Task]) -> dict[str, list[int]]:
    """For each bulk state, its runs (sorted, each once)."""
    runs = Tally(tasks).runs
    return {s: sorted(runs[s].tasks) for s in BULK if runs.get(s)}


def listed(tasks: list[Task], cap: int, per_group: int = 100) -> tuple[list[Task], dict[str, list[int]]]:
    """The tasks listed one row each, at most ``cap``: problems first (biggest cause first, at
    most ``per_group`` of each, so every cause has rows to look at), then the active ones.

    Returns them and, per state, the runs of tasks left out (shown as ranges).
    """
    rows, over = Tally(tasks).listed(tasks, cap, per_group)
    return rows, {s: expand(text) for s, (_, text) in over.items()}


def expand(ranges: str) -> list[int]:
    """The runs of '1-3,5' (the inverse of ``ranges``)."""
    out: list[int] = []
    for piece in filter(None, ranges.split(",")):
        a, _, b = piece.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


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


def heartbeat(status: Status, now: float, stale_after: float, p: Progress) -> tuple[str, str, float | None]:
    """(text, level, heartbeat instant) for the daemon line; the page adds the heartbeat's age.
    ``p``: the tally's Progress (its tasks pending, and held of them where a hold stops them).

    level is 'ok' (a daemon beat recently), 'calm' (no daemon and nothing a daemon would do:
    the production is finished, or what is left is held) or 'bad' (no daemon although work is
    pending, or a stale one).
    """
    if not status.daemons:
        return (*no_daemon(p.pending, p.pending == p.held, last=last_round(status, now, stale_after)), None)
    d = max(status.daemons, key=lambda d: d.heartbeat)
    more = f" (+{len(status.daemons) - 1} more)" if len(status.daemons) > 1 else ""
    return f"daemon pid {d.pid} on {d.host}{more}", "ok" if now - d.heartbeat <= stale_after else "bad", d.heartbeat


START, RELEASE = "start one with `batchman-daemon`", "`batchman release` lets them go on"   # (the commands)


def no_daemon(pending: int, all_held: bool, start: str = START, release: str = RELEASE,
              last: float | None = None) -> tuple[str, str]:
    """The daemon line when none is registered, and its level (``heartbeat``'s): ``pending``
    active tasks, ``all_held``: every one held where a hold stops it (none is work for a daemon);
    ``start`` and ``release`` say how (the TUI names its keys); ``last``: seconds since a daemon
    process that has ended did its last round, when fewer than daemon.stale_after (a oneshot
    from cron: not yet a daemon missing, as a daemon's heartbeat is not stale before then)."""
    if not pending:
        return "no daemon running (production finished)", "calm"
    if all_held:
        return f"no daemon running; {pending} task(s) held: {release}", "calm"
    if last is not None:
        return f"no daemon running since a round {duration(last)} ago (a oneshot), {pending} task(s) pending", "calm"
    return f"no daemon running, {pending} task(s) pending: {start}", "bad"


def last_round(status: Status, now: float, stale_after: float) -> float | None:
    """Seconds since the last round of a daemon process that has ended, if fewer than ``stale_after``."""
    t = status.last_round
    return now - t if t is not None and now - t <= stale_after else None


def duration(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def pause_line(status: Status) -> str:
    if not status.paused:
        return ""
    who = f" by {status.paused_by}" if status.paused_by else ""
    return f"PAUSED{who}: no new staging or submissions until `batchman resume`"
