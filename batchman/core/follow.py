"""Following a job in the batch system: what its queue entry, its marker files and its
outputs make of the task (queued, running, completed, incomplete, failed, vanished), and
how a kill ends. Pure, like ``decide``."""

from __future__ import annotations

from batchman.core import retry as R
from batchman.core import states as S
from batchman.core.decision import (
    CANCEL, CANCEL_STAGE, RELEASE, SUBMIT, Decision, Observations, Policy, release_if, start_over,
)
from batchman.core.model import Task
from batchman.core.observed import FINISHED, QUEUED as JQUEUED, RUNNING as JRUNNING, JobInfo


def judge_finished(task: Task, exit_code: int | None, info: JobInfo | None, obs: Observations,
                   pol: Policy) -> Decision:
    """A job that left the queue: completed, incomplete or failed, and what to release."""
    analysed = obs.analysed.get(task.job_name)
    n = len(task.segments)
    upd = {"exit_code": exit_code, "finished_at": obs.now, "analysed": analysed}
    if info is not None and info.node:
        upd["native_state"] = info.native_state
    node = (info.node if info is not None and info.node else "") or \
        (obs.markers[task.job_name].node if task.job_name in obs.markers else "")
    if node:
        upd["node"] = node
    if exit_code == 0 and not (info is not None and info.failure and info.failure != "exit-nonzero"):
        outs = obs.outputs.get(task.job_name)
        if outs is not None:
            upd["outputs"] = tuple(outs[0])
            if outs[1]:
                why = "exit 0 but " + "; ".join(outs[1][:3]) + (f" (+{len(outs[1]) - 3} more)" if len(outs[1]) > 3 else "")
                return Decision(S.FAILED, why, release_if(pol.release_failed_files),
                                {**upd, "failure": "missing-outputs", "error": why, "failure_class": R.MISSING_OUTPUTS})
        if analysed is not None and analysed < n:
            return Decision(S.INCOMPLETE, f"exit 0 but analysed {analysed} of {n} segments",
                            release_if(pol.release_failed_files),
                            {**upd, "failure": "incomplete", "failure_class": R.INCOMPLETE})
        if analysed is None and pol.require_stats and n:
            return Decision(S.INCOMPLETE, "exit 0 but no stats file says how many segments were analysed",
                            release_if(pol.release_failed_files),
                            {**upd, "failure": "incomplete", "failure_class": R.INCOMPLETE})
        return Decision(S.COMPLETED, "exit 0" + (f", {analysed} of {n} segments analysed" if analysed is not None else ""),
                        [RELEASE], {**upd, "failure": "", "failure_class": ""})
    failure = (info.failure if info is not None and info.failure else "exit-nonzero")
    if exit_code is None and failure == "exit-nonzero":
        failure = "lost"
    why = info.reason if info is not None and info.reason else ""
    if exit_code is not None:
        why = f"exit {exit_code}" + (f" ({why})" if why else "")
    hint = obs.hints.get(task.job_name, "")
    cls = R.classify(S.FAILED, failure, exit_code, hint)
    if hint and cls == hint and R._BY_FAILURE.get(failure) != cls:
        why = (why or failure) + f"; its stderr says {hint}"
    return Decision(S.FAILED, why or failure, release_if(pol.release_failed_files),
                    {**upd, "failure": failure, "error": why or failure, "failure_class": cls})


def _batch_has_the_last_word(marker, info: JobInfo | None) -> bool:
    """A job killed by a signal (exit 128+N: scancel, the time limit, the node's OOM killer)
    whose batch system still lists it: its word (cancelled, timeout) decides, not the marker's
    exit status, so wait for the job to leave the queue."""
    return marker.exit_code > 128 and info is not None and info.state in (JQUEUED, JRUNNING)


def _adopts(task: Task, info: JobInfo) -> bool:
    """The queue names the job by an id the task does not record yet (or another one)."""
    return bool(info.job_id) and info.job_id != task.job_id and info.state != "absent"


def as_before(task: Task, info: JobInfo) -> bool:
    """The queue says what the task records already (queued for the same reason, or running,
    under its id): unless a marker says the job ended, following it changes nothing."""
    same_id = not info.job_id or info.job_id == task.job_id     # (not _adopts: called per running job)
    if info.state == JQUEUED:
        return task.state == S.QUEUED and task.native_state == info.reason and same_id
    return info.state == JRUNNING and task.state == S.RUNNING and same_id


def follow_job(task: Task, obs: Observations, pol: Policy) -> Decision | None:
    st = task.state
    marker = obs.markers.get(task.job_name)
    info = obs.jobs.get(task.job_name) if obs.jobs is not None else None
    if marker is not None and marker.exit_code is not None and not _batch_has_the_last_word(marker, info):
        d = judge_finished(task, marker.exit_code, info if info is not None and info.state == FINISHED else None, obs, pol)
        d.updates.setdefault("started_at", marker.started or task.started_at)
        if not task.job_id and info is not None and info.job_id:
            d.updates["job_id"] = info.job_id
        return d
    if info is None:
        if st == S.SUBMITTING and obs.jobs is not None:
            return None
        return None       # batch system not asked or unreachable: change nothing
    if as_before(task, info):
        return None
    adopt = {"job_id": info.job_id} if _adopts(task, info) else {}
    if info.state == JQUEUED:
        return Decision(S.QUEUED, "seen in the queue" if st != S.QUEUED else "",
                        [], {**adopt, "native_state": info.reason or info.native_state})
    if info.state == JRUNNING:
        started = (marker.started if marker and marker.started else obs.now)
        return Decision(S.RUNNING, "seen running" + (f" on {info.node}" if info.node else ""), [],
                        {**adopt, "native_state": info.native_state, "started_at": task.started_at or started})
    if info.state == FINISHED:
        d = judge_finished(task, info.exit_code, info, obs, pol)
        d.updates.update(adopt)
        return d
    # ABSENT: the batch system does not know the job.
    if st == S.SUBMITTING:
        # No job of that name anywhere and no marker: submit (again).
        return Decision(S.SUBMITTING, "no job of this name found: submitting", [SUBMIT], {})
    since = task.submitted_at or task.since
    if obs.now - since < pol.submit_grace:
        return None
    if (marker is not None and marker.started) or st == S.RUNNING:
        why = "job vanished while running: no exit status (killed, or its node died)"
    else:
        why = f"job vanished: not in the batch system {obs.now - since:.0f} s after submission and never started"
    hint = obs.hints.get(task.job_name, "")
    return Decision(S.FAILED, why, release_if(pol.release_failed_files),
                    {"failure": "vanished", "error": why, "finished_at": obs.now,
                     "failure_class": R.classify(S.FAILED, "vanished", None, hint)})


def follow_abort(task: Task, obs: Observations, pol: Policy) -> Decision | None:
    info = obs.jobs.get(task.job_name) if obs.jobs is not None and task.job_name else None
    marker = obs.markers.get(task.job_name)
    gone = (marker is not None and marker.exit_code is not None) or not task.job_name or \
           (info is not None and info.state in (FINISHED, "absent"))
    if not gone:
        if info is None:
            return None
        if not task.job_id and info.job_id:
            return Decision(S.ABORTING, "found the job to kill", [CANCEL], {"job_id": info.job_id})
        if obs.now - (task.finished_at or task.since) > pol.recancel_after:
            return Decision(S.ABORTING, "still alive after the kill: cancelling again", [CANCEL],
                            {"finished_at": obs.now})
        return None
    if task.request == "restart":
        d = start_over(f"killed in {task.killed_in} and restarted", task, request="", auto_restarts=0)
        d.actions = [CANCEL_STAGE, RELEASE]
        return d
    if task.request == "skip":
        return Decision(S.SKIPPED, "skipped by hand" + (f": {task.note}" if task.note else ""),
                        [CANCEL_STAGE, RELEASE], {"request": ""})
    return Decision(S.ABORTED, f"killed in {task.killed_in}", [CANCEL_STAGE, RELEASE], {})
