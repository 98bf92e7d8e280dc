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
    now = clock()
    return [UnknownJob(name=j.name, job_id=j.job_id, state=j.state, seen=now,
                       array_name=where.get(j.name, ("", None))[0], array_index=where.get(j.name, ("", None))[1])
            for j in jobs if parse_job_name(j.name) and not taken(status, j.name)]


def taken(st: Status, name: str) -> bool:
    """Whether a task of ``st`` has the job ``name`` (ours: it parses) as its current attempt.
    A task's job name always names its own key (job_name(), adopt), so the index finds it:
    no set of a million names for a listing of a few jobs."""
    parsed = parse_job_name(name)
    t = st.index().get(parsed.key) if parsed is not None else None
    return t is not None and t.job_name == name


def still_unknown(st: Status, unknown: list[UnknownJob]) -> tuple[list[UnknownJob], bool]:
    """Those of ``unknown`` that no task of ``st`` took in, and whether they differ from the
    ones ``st`` records."""
    unknown = [u for u in unknown if not taken(st, u.name)]
    return unknown, [u.name for u in st.unknown] != [u.name for u in unknown]


def keep_unknown(st: Status, unknown: list[UnknownJob]) -> tuple[list[UnknownJob], bool]:
    """Record them in a status read under the lock (without the jobs tasks took in since);
    returns them and whether anything changed."""
    unknown, changed = still_unknown(st, unknown)
    if changed:
        st.unknown = unknown
    return unknown, changed
