"""Jobs under our name pattern that no task accounts for (found with one queue listing,
within the polling budget, or from the round's own listing when the backend can reuse it)."""

from __future__ import annotations

from batchman.backends.base import BackendUnavailable
from batchman.core.arrays import parse_array_name
from batchman.core.model import Status, UnknownJob, parse_job_name
from batchman.daemon.arrayjob import all_members, element_rows, member_of


def scan(status: Status, batch, may_query: bool, clock, arrays_root: str = "") -> list[UnknownJob]:
    """The unknown jobs the batch system lists now (``status.unknown`` when it is not asked).
    Elements of our job arrays (listed under the array's name) count under their task's own
    job name, from the array's ``members`` file in ``arrays_root``, so ``batchman adopt`` takes
    them in as any other job."""
    fresh = batch.capabilities.listing_reuse and batch.listing_fresh()
    if not may_query and not fresh:
        return status.unknown     # not outside the polling budget (interval, back-off)
    try:
        jobs = batch.list_ours(f"bm.{status.store_id}.")
    except BackendUnavailable:
        return status.unknown
    listed = {j.name for j in jobs if parse_array_name(j.name)}
    members = all_members(arrays_root, listed) if arrays_root and listed else {}
    if members:
        jobs = [j for j in jobs if j.name not in members] + element_rows(jobs, members, batch.element_index)
    where = member_of(members)
    known = {t.job_name for t in status.tasks if t.job_name}
    now = clock()
    return [UnknownJob(name=j.name, job_id=j.job_id, state=j.state, seen=now,
                       array_name=where.get(j.name, ("", None))[0], array_index=where.get(j.name, ("", None))[1])
            for j in jobs if j.name not in known and parse_job_name(j.name)]


def still_unknown(st: Status, unknown: list[UnknownJob]) -> tuple[list[UnknownJob], bool]:
    """Those of ``unknown`` that no task of ``st`` took in, and whether they differ from the
    ones ``st`` records."""
    known = {t.job_name for t in st.tasks if t.job_name}
    unknown = [u for u in unknown if u.name not in known]
    return unknown, [u.name for u in st.unknown] != [u.name for u in unknown]


def keep_unknown(st: Status, unknown: list[UnknownJob]) -> tuple[list[UnknownJob], bool]:
    """Record them in a status read under the lock (without the jobs tasks took in since);
    returns them and whether anything changed."""
    unknown, changed = still_unknown(st, unknown)
    if changed:
        st.unknown = unknown
    return unknown, changed
