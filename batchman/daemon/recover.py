"""`batchman recover`: rebuild a usable status file when it and its backup are lost.

Sources, most trusted first:
1. the jobs of ours the batch system still knows (by name: ``bm.<store>.<run>.<job>.<attempt>``);
2. the attempt directories and the marker files each job script leaves (exit code);
3. the journal of transitions (``<status>.journal``), for tasks that never reached a job
   and for the states a person chose (aborted, skipped) or a problem found (error).

A task whose latest job is known is put back as ``submitted`` with that job: the daemon's
ordinary logic then follows it if it still runs, or judges it from its markers (exit code,
stats file) if it ended, so nothing is submitted again. Segments are found again from the
stub directory. The unreadable originals are never destroyed: they are kept under dated
names (hard links) before the new file replaces them.
"""

from __future__ import annotations

import collections
import glob
import os
import time
from dataclasses import dataclass, field

import msgspec

from batchman.daemon import arrayjob, jobscript
from batchman.core import states as S
from batchman.backends.base import BackendUnavailable, QUEUED, RUNNING
from batchman.core.triggers import SPLIT
from batchman.core.model import Segment, Status, Task, decode, parse_job_name, parse_key
from batchman.daemon.segments import find_segments, own_segment
from batchman.store.store import CorruptStatus, Store, new_store_id

CRASH_ENV = "BATCHMAN_CRASH_AT"


class RecoverRefused(CorruptStatus):
    pass


@dataclass
class Recovery:
    status: Status
    sources: dict = field(default_factory=dict)      # how many tasks came from where
    lost: list[str] = field(default_factory=list)    # what could not be recovered
    kept: list[str] = field(default_factory=list)    # where the unreadable originals are
    readable: list[str] = field(default_factory=list)  # readable files replaced (a backup; the file with --force): kept here


def _readable(store: Store) -> bool:
    try:
        Store(store.path, traces=tuple(store.traces)).read()
        return os.path.exists(store.path)
    except CorruptStatus:
        return False


def _keep_what_people_asked(rec: Recovery, store: Store) -> None:
    """--force on a readable file: queued kills/restarts, holds, priorities and notes stay."""
    try:
        old = {t.key: t for t in Store(store.path, traces=tuple(store.traces)).read().tasks}
    except CorruptStatus:
        return
    for t in rec.status.tasks:
        o = old.get(t.key)
        if o is not None:
            t.held, t.priority, t.note = o.held, o.priority, o.note
            if o.request and S.request_applies(o.request, t.state):
                t.request = o.request


def running_daemons(params, store: Store) -> list[str]:
    """Daemons a readable status file lists as alive (fresh heartbeat; on this host, a live pid)."""
    from batchman.util.procs import pid_alive
    import socket
    try:
        st = Store(store.path, traces=tuple(store.traces)).read()
    except CorruptStatus:
        return []
    now, host = time.time(), socket.gethostname()
    return [d.id for d in st.daemons if now - d.heartbeat <= params.stale_after and (d.host != host or pid_alive(d.pid))]


def _decodes(path: str) -> bool:
    """Whether the status file (or backup) at ``path`` can be read."""
    try:
        with open(path, "rb") as f:
            decode(f.read())
        return True
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return False


def _scan_attempts(attempts_root: str, attempts: dict, store_ids: collections.Counter) -> None:
    """2. attempt directories: key -> attempt -> job name, and the store ids they name."""
    try:
        names = os.listdir(attempts_root)
    except FileNotFoundError:
        names = []
    for n in names:
        p = parse_job_name(n)
        if p:
            store_ids[p.store_id] += 1
            attempts[p.key][p.attempt] = n


def _scan_journal(journal: list[dict], store_ids: collections.Counter) -> dict[str, dict]:
    """3. the journal: the last entry of every task."""
    last: dict[str, dict] = {}
    for e in journal:
        last[e["task"]] = e
        if e.get("s"):
            store_ids[e["s"]] += 1
    return last


def _scan_batch(batch, store_id: str, attempts: dict, lost: list[str],
                members: dict[str, dict[int, str]] | None = None) -> dict[str, object]:
    """1. the jobs of this store the batch system still knows, by name (elements of our job
    arrays by their task's job name, from the arrays' ``members`` files)."""
    live: dict[str, object] = {}
    members = members or {}
    try:
        rows = batch.list_ours(f"bm.{store_id}.")
        for j in [j for j in rows if j.name not in members] + arrayjob.element_rows(rows, members, batch.element_index):
            p = parse_job_name(j.name)
            if p and p[0] == store_id:
                live[j.name] = j
                attempts[p.key].setdefault(p.attempt, j.name)
    except BackendUnavailable as e:
        lost.append(f"the batch system could not be asked ({e}): jobs are judged from their marker files only")
    return live


def _from_attempt(t: Task, mine: dict[int, str], live: dict, attempts_root: str,
                  member_of: dict[str, tuple[str, int]] | None = None) -> str:
    """Put back a task whose latest job is known, as ``submitted`` (or ``submitting``); returns the source."""
    n = max(mine)
    name = mine[n]
    t.attempt, t.job_name = n, name
    if name in (member_of or {}):
        # an element of a job array: followed by its element id, looked up through its array's
        # name and index when the id is not known (never submitted again while the array exists)
        t.array_name, t.array_index = member_of[name]
    info = live.get(name)
    t.job_id = getattr(info, "job_id", "") or ""
    t.submitted_at = t.since
    t.state = S.SUBMITTED
    if info is not None and info.state in (QUEUED, RUNNING):
        t.reason = f"recovered: job {t.job_id} found in the batch system"
        return "live job in the batch system"
    if jobscript.read_exit(os.path.join(attempts_root, name)) is not None:
        t.reason = "recovered: the job had ended (exit marker); judged again"
        return "exit marker in its attempt directory"
    # The daemon may have died after writing the job script and before submitting:
    # as `submitting`, the job is looked up by name and adopted, or submitted now. An element
    # of a job array is looked up through its array's name and index (never submitted again
    # while that array exists).
    t.state = S.SUBMITTING
    t.reason = "recovered: attempt directory without an exit marker; looking for the job by name"
    return "attempt directory only (job looked up by name)"


def _recover_task(t: Task, mine: dict[int, str], j_last: dict | None, live: dict, attempts_root: str,
                  member_of: dict[str, tuple[str, int]] | None = None) -> str:
    """Set the state of one task from its attempts, live jobs and last journal entry; returns the source."""
    j_state = j_last["to"] if j_last else ""
    if mine and j_state in S.BEFORE_BATCH and not any(mine[a] in live for a in mine):
        # restarted after its last job: start again, with the next attempt number
        t.attempt = max(mine)
        t.state, t.reason = S.NEW, "recovered from the journal: restarted, starts again from new"
        return "journal (restarted: starts again)"
    if mine and j_state not in (S.ABORTED, S.SKIPPED, S.ERROR):
        return _from_attempt(t, mine, live, attempts_root, member_of)
    if j_state in (S.ABORTED, S.SKIPPED, S.ERROR):
        t.state, t.reason = j_state, f"recovered from the journal: {j_last.get('why', '')}"
        if mine:
            t.attempt = max(mine)
        if j_state == S.ERROR:
            t.error = j_last.get("why", "")
        return f"journal ({j_state})"
    t.state, t.reason = S.NEW, "recovered from the journal: starts again from new"
    return "journal (no job yet: starts again)"


def rebuild(params, store: Store, batch, now: float | None = None) -> Recovery:
    """Build the status from the journal, the attempt directories and the batch system (pure-ish: reads only)."""
    now = time.time() if now is None else now
    attempts_root = os.path.join(params.path("daemon.temp_dir"), "attempts")
    attempts: dict[str, dict[int, str]] = collections.defaultdict(dict)    # key -> attempt -> job name
    store_ids: collections.Counter = collections.Counter()
    _scan_attempts(attempts_root, attempts, store_ids)
    journal = store.history()
    last = _scan_journal(journal, store_ids)
    store_id = store_ids.most_common(1)[0][0] if store_ids else new_store_id()
    lost: list[str] = []
    members = arrayjob.all_members(os.path.join(params.path("daemon.temp_dir"), "arrays"))
    live = _scan_batch(batch, store_id, attempts, lost, members)
    member_of = arrayjob.member_of(members)
    sources = collections.Counter()
    tasks: list[Task] = []
    stub = params.path("staging.stub_dir")
    pat, pre, suf = params["staging.pattern"], params["staging.prefix"], params["staging.suffix"]
    for key in sorted(set(attempts) | set(last), key=lambda k: (int(k.split(".", 1)[0]), k)):
        if key not in attempts and (last.get(key) or {}).get("to") == SPLIT:
            continue      # a per: segment job's run task, replaced by its segment tasks
        run, job, seg = parse_key(key) or (int(key.split(".", 1)[0]), key.split(".", 1)[1], None)
        t = Task(run=run, job=job, seg=seg, since=now, added_at=now)
        segs, _ = find_segments(stub, pat, t.run, pre, suf)
        t.segments = [Segment(p) for p in (segs if seg is None else own_segment(segs, stub, seg, pat, pre, suf, run))]
        sources[_recover_task(t, attempts.get(key, {}), last.get(key), live, attempts_root, member_of)] += 1
        tasks.append(t)
    if not journal:
        lost.append("no journal: tasks that never reached a batch job could not be recovered; add them again")
    lost.append("counters reported by jobs, priorities, holds and notes are not recovered")
    if tasks:
        lost.append("the history before recovery stays in the journal; the new file starts from here")
    st = Status(store_id=store_id, experiment=params.experiment, created=now, tasks=tasks)
    return Recovery(status=st, sources=dict(sources), lost=lost)


def recover(params, store: Store, batch, force: bool = False) -> Recovery:
    """Rebuild and put the new file in place, keeping the unreadable originals."""
    if _readable(store) and not force:
        raise RecoverRefused(f"the status file {store.path} is readable: nothing to recover "
                             f"(use --force to rebuild it anyway from the journal, attempts and batch system)")
    busy = running_daemons(params, store)
    if busy:
        raise RecoverRefused(f"daemon {busy[0]} is working on {store.path}: stop it first (it may be about to "
                             f"submit a job this rebuild cannot see yet, which would then run twice); nothing was "
                             f"changed. A daemon on another host that died counts as stopped "
                             f"{params.stale_after:g} s after its last heartbeat (daemon.stale_after)")
    with store.locked("batchman recover"):
        rec = rebuild(params, store, batch)
        _keep_what_people_asked(rec, store)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for p in (store.path, store.backup):
            if os.path.exists(p):
                ok = _decodes(p)        # a readable backup is kept for what it is, never called unreadable
                keep = f"{p}.{'replaced' if ok else 'unreadable'}-{stamp}"
                if not os.path.exists(keep):
                    os.link(p, keep)
                (rec.readable if ok else rec.kept).append(keep)
        if os.path.exists(store.log_path):       # the change log of the file replaced (issue 18)
            keep = f"{store.log_path}.replaced-{stamp}"
            if not os.path.exists(keep):
                os.link(store.log_path, keep)
            rec.readable.append(keep)
        if os.environ.get(CRASH_ENV) == "recover-before-write":
            import signal
            os.kill(os.getpid(), signal.SIGKILL)
        store.replace_with(rec.status)
    for last in sorted(glob.glob(glob.escape(store.path) + ".daemon-*.last")):
        rec.lost.append(f"a daemon that saw the file vanish kept its last good copy in {last} "
                        f"(counters, priorities, holds and notes are in it)")
    store.publish_html(rec.status)
    return rec

