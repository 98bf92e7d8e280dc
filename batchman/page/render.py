"""What people see of a task, shared by the CLI tables, the TUI and the HTML page.

The page itself is built by ``batchman.page.html`` from the pure summaries of
``batchman.page.summary``; ``render_html`` here is its entry point for the store.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from functools import lru_cache

from batchman.util import procs
from batchman.core import states as S
from batchman.core.liveness import daemon_alive
from batchman.core.model import Status, Task, awaits_daemon
from batchman.core.segview import Group, job_label, labelled, task_flags
from batchman.core.text import visible
from batchman.page.summary import duration, last_round, no_daemon  # noqa: F401 - duration: re-exported


def clock(t: float | None) -> str:
    return _minute(int(t // 60)) if t else ""


@lru_cache(maxsize=4096)
def _minute(m: int) -> str:
    """A minute since the epoch as 'MM-DD HH:MM' here (the tasks that ended in the same minute,
    ~70 % of the lines of a list, format it once)."""
    return time.strftime("%m-%d %H:%M", time.localtime(m * 60))


def staged_count(t: Task) -> int:
    return sum(1 for s in t.segments if s.staged)


def state_label(t: Task) -> str:
    """The state as shown, with a queued request or a hold in brackets: 'running [kill]'."""
    return labelled(t.state, task_flags(t))


def detail(t: Task) -> str:
    """The state-specific field of the 2002 GUI, with what a job or batch system wrote made visible."""
    return visible(_detail(t))


def _detail(t: Task) -> str:
    st = t.state
    if st in (S.UNSTAGED, S.STAGING, S.STAGED):
        txt = f"{staged_count(t)}/{len(t.segments)} staged"
        return f"{txt}; {t.warning}" if t.warning else txt
    if st in (S.SUBMITTING, S.SUBMITTED, S.QUEUED, S.RUNNING):
        bits = [f"job {t.job_id}" if t.job_id else "job id not yet known"]
        if t.native_state:
            bits.append(t.native_state)
        if st == S.RUNNING and t.started_at:
            bits.append(f"since {clock(t.started_at)}")
        return ", ".join(bits)
    if st == S.ABORTING:
        return f"killing job {t.job_id} (was {t.killed_in})"
    if st == S.ABORTED:
        return f"killed in {t.killed_in}" if t.killed_in else "killed"
    if st == S.COMPLETED:
        return f"finished {clock(t.finished_at)}"
    if st in (S.FAILED, S.ERROR, S.INCOMPLETE):
        return t.error or t.reason
    if st == S.SKIPPED:
        return f"skipped: {t.note}" if t.note else "skipped by hand"
    return t.reason


def counters_text(t: Task) -> str:
    """'events=1200 rate=35', made visible at once (the same as name by name and value by value:
    each control character is replaced on its own)."""
    return visible(" ".join(f"{k}={v}" for k, v in t.counters.items())) if t.counters else ""


def row(t: Task, now: float) -> dict:
    """Stable keys for ``--json`` and the table."""
    return {
        "run": t.run, "job": t.job, "state": t.state, "request": t.request or None,
        "segments": len(t.segments), "staged": staged_count(t),
        "in_state_s": round(now - t.since, 1) if t.since else None,
        "job_id": t.job_id or None, "attempt": t.attempt, "exit_code": t.exit_code,
        "detail": detail(t), "error": t.error or None, "counters": dict(t.counters),
        "priority": t.priority, "held": t.held, "note": t.note or None,
        "meta": dict(t.meta), "outputs": list(t.outputs), "inputs": list(t.inputs),
        **({} if t.seg is None else {"segment": t.seg, "key": t.key}),
    }


TABLE_HEADERS = ["run", "job", "segs", "state", "in state", "detail", "try", "counters"]
TABLE_NUMBERS = (0, 2, 6)       # the columns of numbers (right-aligned): run, segs, try


def table_row(t: Task, now: float) -> list:
    """A task's line of `batchman list`; a task with no file to stage (a merge step, or files not
    found yet) has None as its segments, shown as '-' (tabulate's missingval)."""
    return [t.run, job_label(t), len(t.segments) or None, state_label(t), duration(now - t.since) if t.since else "",
            _cut(detail(t), 60), t.attempt, _cut(counters_text(t), 40)]


def no_files_note(t: Task, jobs) -> str:
    """What `show` and the TUI say of a task without files whose job stages none (a merge step),
    '' for any other (``jobs``: the job definitions of batchman.yaml)."""
    d = jobs.defs.get(t.job)
    return f"(none: job {t.job} needs no staging)" if not t.segments and d is not None and not d.needs_staging else ""


def _cut(text: str, n: int) -> str:
    """``text`` in at most ``n`` characters, its end replaced by '...' when cut (a merge step's
    'waiting for reco: 2/3 segments completed; segment 1 failed (restart or skip it)' lost its
    hint without a sign that there was more: `batchman show` has it whole)."""
    return text if len(text) <= n else text[:n - 3] + "..."


def group_row(g: Group) -> list:
    """The line of a per: segment job's run: its segment tasks counted."""
    return [g.run, f"{g.job}[*]", len(g.tasks), g.label(), "", g.summary(), "", ""]


def counts(tasks: list[Task]) -> Counter:
    return Counter(t.state for t in tasks)


def daemon_line(status: Status, now: float, stale_after: float) -> tuple[str, bool]:
    """('daemon pid 12 on host, heartbeat 3s ago', healthy?)."""
    if not status.daemons:
        return "no daemon running", False
    d = max(status.daemons, key=lambda d: d.heartbeat)
    age = now - d.heartbeat
    here = socket.gethostname()
    ok = daemon_alive(d, now, stale_after, here, procs.pid_alive)
    more = f" (+{len(status.daemons) - 1} more)" if len(status.daemons) > 1 else ""
    # a process that lives and does not write: waiting for room on a full disk, or hung (its output says)
    stale = "" if ok else " (STALE; alive, not writing)" if d.host == here and procs.pid_alive(d.pid) else " (STALE)"
    return f"daemon pid {d.pid} on {d.host}, heartbeat {duration(age)} ago{stale}{more}", ok


def daemon_look(status: Status, now: float, stale_after: float, pending: int, all_held: bool | None = None,
                **how: str) -> tuple[str, str]:
    """The TUI's daemon line and its look: 'ok' (a live daemon), 'bad' (a stale one, or none though
    some of the ``pending`` tasks are work for one), 'calm' (none, and nothing for one to do: the
    production finished, or what is left is held), in the page's words (summary.no_daemon, and
    its ``start`` and ``release`` from ``how``). ``all_held``: known already (else a pass over
    the tasks finds whether every pending one is held)."""
    if status.daemons:
        text, ok = daemon_line(status, now, stale_after)
        return text, "ok" if ok else "bad"
    if all_held is None:
        all_held = bool(pending) and not any(map(awaits_daemon, status.tasks))
    return no_daemon(pending, all_held, last=last_round(status, now, stale_after), **how)


def batch_line(status: Status, now: float) -> str:
    """'batch system unreachable since 12:03:04 (3m10s), next try in 25 s: <error>' or ''."""
    if not status.batch_unreachable_since:
        return ""
    out = (f"batch system unreachable since {clock(status.batch_unreachable_since)}"
           f" ({duration(now - status.batch_unreachable_since)})")
    if status.batch_next_try:
        out += f", next try in {max(0.0, status.batch_next_try - now):.0f} s"
    if status.batch_last_error:
        out += f": {status.batch_last_error}"
    return out + "; nothing is marked failed meanwhile"


def params_line(status: Status, now: float) -> str:
    """'batchman.yaml does not validate since 03:12:40 (5m): <problem>; the daemon keeps ...' or ''."""
    if not status.params_problem:
        return ""
    since = status.params_problem_since or now
    return (f"batchman.yaml does not validate since {clock(since)} ({duration(now - since)}): "
            f"{status.params_problem}; the daemon keeps its previous parameters (`batchman check`)")


def load_line(status: Status, now: float) -> str:
    """What batchman costs the batch system: calls in the last hour, the last round's commands,
    the last error -- to show an admin."""
    calls = int(sum(c[1] for c in status.batch_calls if c[0] > now - 3600))
    out = f"batch system load: {calls} call(s) in the last hour"
    li = status.last_iteration
    if li is not None and li.commands:
        out += f"; last round ({clock(li.at)}): " + ", ".join(li.commands[:6]) + (" ..." if len(li.commands) > 6 else "")
    if status.batch_last_error:
        out += f"; last error {clock(status.batch_last_error_at or 0)}: {status.batch_last_error}"
    return out


def attempt_lines(t) -> list[str]:
    """Every attempt of a task with its class, reason, resources and what the retry policy did."""
    from batchman.core.retry import resources_text
    out = []
    for a in t.past:
        res = resources_text(a.resources) or "site defaults"
        out.append(f"attempt {a.n}: job {a.job_id or '-'}, {a.state}"
                   + (f" [{a.failure_class}]" if a.failure_class else (f" [{a.failure}]" if a.failure else ""))
                   + (f", exit {a.exit_code}" if a.exit_code is not None else "")
                   + f": {a.reason}; ran with {res}" + (f" on {a.node}" if a.node else "")
                   + (f"; {a.retry}" if a.retry else ""))
        out[-1] = visible(out[-1])
    if t.attempt and t.job_name:
        res = resources_text(t.used) or ("site defaults" if t.used else "")
        cls = t.failure_class if t.state in (S.FAILED, S.INCOMPLETE, S.ERROR) else ""
        out.append(f"attempt {t.attempt} (current): job {t.job_id or '-'}, {t.state}"
                   + (f" [{cls}]" if cls else "") + (f", exit {t.exit_code}" if t.exit_code is not None else "")
                   + (f"; {'runs' if t.state in S.IN_BATCH else 'ran'} with {res}" if res else "")
                   + (f" on {t.node}" if t.node else "") + (f", ended {clock(t.finished_at)}" if t.finished_at else "")
                   + (f"; retries ask for {resources_text(t.resources)}" if t.resources and t.state != S.COMPLETED else ""))
    return out


def render_html(status: Status, now: float | None = None, stale_after: float = 300.0, refresh: int = 60,
                title: str = "", journal: str = "") -> str:
    """The status page of one generation (batchman.page.html), with the journal's history if given."""
    from batchman.page import html as page, timeline
    now = time.time() if now is None else now
    deltas = timeline.load(journal, status.store_id, status.generation) if journal else {}
    return page.page(status, now, stale_after, refresh, title, deltas)
