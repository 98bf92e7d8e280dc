"""Steps 3 and 5 of an iteration, under the lock: record the decisions (with their slow
actions as intents) and, after acting, what the actions did. Every state change goes
through :func:`batchman.core.transition.change_state` and into the journal."""

from __future__ import annotations

from typing import Callable

from batchman.backends.base import CommandRecord, Refused, Submitted
from batchman.core import arrays as A
from batchman.core import decide as D
from batchman.core import states as S
from batchman.core.model import Daemon, IterationLog, Status, Task
from batchman.core.segview import job_label
from batchman.core.transition import Transition, change_state
from batchman.daemon.act import Results
from batchman.daemon.work import IterationReport, Work


def journal(store, tr: Transition | None, t: Task, rep: IterationReport) -> None:
    """Hand a state change to the store's journal and the printed report."""
    if tr is None:
        return
    store.record(tr.key, tr.old, tr.new, tr.why, tr.by, tr.at)
    rep.transitions.append(tr.line(t.run, job_label(t)))     # (a file's task: reco[17], as `list --segments`)


def record_decisions(store, st: Status, decisions, obs: D.Observations, now: float, me: str,
                     rep: IterationReport) -> list[Work]:
    """Apply each decision to its task; returns the slow actions, now recorded as intents."""
    work: list[Work] = []
    for t, d in decisions:
        journal(store, D.apply(t, d, now, me, st.store_id, obs.staging), t, rep)
        if d.actions:
            work.append(Work.of(t, d.actions))
            work[-1].fresh = bool(d.new_job_name) and D.SUBMIT in d.actions
    return work


def record_arrays(st: Status, work: list[Work], max_size: int, stamp: str,
                  resources: Callable[[str], dict]) -> int:
    """Group this iteration's new submissions into job arrays (core/arrays.py) and write each
    member's array name and index into its task, with its intent, before any sbatch: a daemon
    that dies after the sbatch finds the array by that name. Every other submission (a resumed
    intent whose job was not found, a retry with changed resources, a group of one) goes as a
    plain job and forgets any array of an earlier attempt. Returns the number of arrays."""
    if not any(D.SUBMIT in w.actions for w in work):
        return 0
    idx = st.index()
    subs = [(w, t) for w in work if D.SUBMIT in w.actions and (t := idx.of(w)) is not None]    # (of: by run, job, seg)
    for w, t in subs:
        w.array_name, w.array_index = "", None
        t.array_name, t.array_index = "", None
    ready = [A.ready(t, resources(w.job)) for w, t in subs if w.fresh]
    by_key = {w.key: (w, t) for w, t in subs}
    n = 0
    for members in A.group(ready, max_size):
        if len(members) < 2:
            continue
        name = A.array_name(st.store_id, members[0].job, f"{stamp}{A.base36(n)}")
        n += 1
        for key, i in A.index_map(members).items():
            w, t = by_key[key]
            w.array_name, w.array_index = t.array_name, t.array_index = name, i
    return n


def record_batch_health(st: Status, rep: IterationReport, pacing, now: float) -> None:
    """The banner of an unreachable batch system: since when, the last error, the next try."""
    if rep.batch == "down":
        st.batch_unreachable_since = st.batch_unreachable_since or now
        st.batch_last_error, st.batch_last_error_at = pacing.last_error, now
    elif rep.batch == "ok" or not pacing.failures:
        st.batch_unreachable_since = None
    st.batch_next_try = pacing.next_try()


def counted(counters: dict[str, dict], inbatch) -> list[Task]:
    """The tasks of the jobs that reported ``counters``, by job name from the tasks in the
    batch system (``inbatch``: daemon/inbatch.InBatch, as surveyed; read_counters reads only
    theirs): a look at each job reported, not a pass over every live task (~70 ms at 1,000,000)."""
    return [t for n in counters if (t := inbatch.task_of(n)) is not None]


def record_counters(tasks: list[Task], counters: dict[str, dict]) -> None:
    """The counters jobs reported, into their tasks (``tasks``: those that may have some)."""
    if not counters:
        return
    for t in tasks:
        c = counters.get(t.job_name)
        if c and t.job_name and c != {k: t.counters.get(k) for k in c}:
            t.counters = {**t.counters, **c}


def needs_record(work: list[Work], results: Results) -> bool:
    """Must the results be written now (a job id, a refusal, a removal, a failed action)?"""
    for w in work:
        if D.SUBMIT in w.actions or D.CANCEL in w.actions or D.REMOVE in w.actions:
            return True
    return any(ok is False for r in results.values() for ok in r.values())


def apply_cleared(st: Status, cleared: dict[str, Work], me: str) -> None:
    """Clear this daemon's finished staging-only intents in a status read from disk (``cleared``:
    their work by key; found by run, job and segment, not by the key read back)."""
    if not cleared:
        return
    idx = st.index()
    for w in cleared.values():
        t = idx.of(w)
        if t is not None and t.intent is not None and t.intent.owner == me:
            t.intent = None


def _submission(store, t: Task, out, now: float, me: str, rep: IterationReport) -> None:
    """What a submission's outcome makes of its task."""
    if isinstance(out, Submitted):
        t.job_id = out.job_id
        t.submitted_at = now
        journal(store, change_state(t, S.SUBMITTED, f"submitted as job {out.job_id}", now, me), t, rep)
    elif isinstance(out, Refused):
        t.error = out.message
        t.failure = "submit-rejected"
        journal(store, change_state(t, S.ERROR, f"submission refused: {out.message}", now, me), t, rep)
    else:
        t.warning = f"submission not confirmed ({out.message}); will look for the job by name and retry"


def record_results(store, st: Status, work: list[Work], results: Results, used: dict[str, dict],
                   now: float, me: str, rep: IterationReport) -> None:
    """Results of the slow actions: job ids, refusals, removals; failed actions stay intents."""
    idx = st.index()
    remove: set[str] = set()
    for w in work:
        t = idx.of(w)         # (idx.get(w.key), without reading the key string back)
        if t is None or t.intent is None or t.intent.owner != me:
            continue
        r = results.get(w.key, {})
        failed_actions = [a for a, ok in r.items() if ok is False]
        sub = r.get(D.SUBMIT)
        if sub is not None:
            if w.key in used:
                t.used = used.pop(w.key)
            _submission(store, t, sub, now, me, rep)
        if failed_actions:
            t.intent.actions = [a for a in t.intent.actions if a in failed_actions]
            continue
        t.intent = None
        if r.get(D.REMOVE):
            remove.add(t.key)
    if remove:
        st.tasks = [t for t in st.tasks if t.key not in remove]
        store.purged(len(remove))
        rep.actions.append(f"purged {len(remove)} task(s)")


def heartbeat(st: Status, me: str, now: float, started: float, mode: str, iterations: int) -> None:
    for d in st.daemons:
        if d.id == me:
            d.heartbeat = now
            d.iterations = iterations
            d.mode = mode
            break
    else:
        host, _, pid = me.rpartition(":")          # daemon_id(): host:pid (in-process test daemons too)
        st.daemons.append(Daemon(id=me, host=host, pid=int(pid), started=started,
                                 heartbeat=now, mode=mode, iterations=iterations))
    # Forget daemons that have been silent for a day.
    st.daemons = [d for d in st.daemons if d.id == me or now - d.heartbeat < 86400]


# ---- the iteration log (status page, `batchman status`) ------------------------------------
def command_log(records: list[CommandRecord]) -> list[str]:
    return [f"{' '.join(r.argv[:1] + [a for a in r.argv[1:3] if not a.startswith('-')])} {r.seconds:.3f}s"
            + ("" if r.returncode == 0 else f" exit {r.returncode}" if r.returncode is not None else "")
            + (f": {r.error}" if r.error else "") for r in records]


def count_calls(st: Status, now: float, n: int) -> int:
    """Add n batch commands to the per-minute counts of the last hour; return the hour's total."""
    minute = float(int(now // 60) * 60)
    calls = [c for c in st.batch_calls if c[0] > now - 3600]
    if n:
        if calls and calls[-1][0] == minute:
            calls[-1] = [minute, calls[-1][1] + n]
        else:
            calls.append([minute, float(n)])
    st.batch_calls = calls
    return int(sum(c[1] for c in calls))


def log_observed(st: Status, now: float, cmds: list[CommandRecord], rep: IterationReport) -> None:
    """The iteration's log as of the first write: the commands that observed."""
    st.last_iteration = IterationLog(at=now, seconds=sum(r.seconds for r in cmds),
                                     commands=command_log(cmds), errors=rep.errors[:20],
                                     changes=len(rep.transitions), queried=rep.batch in ("ok", "down"),
                                     calls_hour=count_calls(st, now, len(cmds)))


def log_acted(st: Status, now: float, acted: list[CommandRecord], rep: IterationReport) -> None:
    """Add the commands that acted to the iteration's log."""
    li = st.last_iteration
    if not acted or li is None:
        return
    li.commands = (li.commands + command_log(acted))[-50:]
    li.seconds += sum(r.seconds for r in acted)
    li.errors = rep.errors[:20]
    li.calls_hour = count_calls(st, now, len(acted))
