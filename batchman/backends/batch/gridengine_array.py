"""Grid Engine job arrays: pure argv builders and parsers (issue 14).

``qsub -t 1-N`` submits one array job of N tasks. Grid Engine numbers tasks from 1 (``-t 0-``
is refused), batchman's indexes are 0..N-1: element ``i`` is task ``i + 1``, its id
``<job id>.<i + 1>`` (``615.3``), which ``qdel 615.3`` deletes alone ("root has deleted
job-array task 615.3"), and the task sees ``$SGE_TASK_ID`` = ``i + 1``; ``$TASK_ID`` in the
``-o``/``-e`` path is the same number. Facts observed on Son of Grid Engine 8.1.9 (captured
text in tests/backends/test_gridengine_array.py):

* ``qsub -terse -t 1-5`` prints ``615.1-5:1``;
* ``qstat -xml`` lists each running task on a row of its own (``<tasks>3</tasks>``) and the
  pending ones of a job on one row, as a range (``1-12:1``), a list (``4,5``) or one (``12``);
* ``qacct -j NAME`` has one record per task that ran, with ``taskid``; a task deleted while
  pending leaves none;
* ``max_aj_tasks`` (``qconf -sconf``) caps the tasks of one array, 0 meaning no limit.
"""

from __future__ import annotations

import dataclasses
import re

from batchman.backends.base import JobSpec
from batchman.backends.batch.array_ranges import parse_ranges
from batchman.backends.batch.gridengine_text import AcctRecord, QueuedJob, build_qsub_argv

UNLIMITED_CAP = 75000        # max_aj_tasks 0 ("no limit"): batchman's own cap (SGE's default value)
CONFIG_ARGV = ["qconf", "-sconf"]
_ELEMENT = re.compile(r"(\d+)\.(\d+)")


def build_qsub_array_argv(spec: JobSpec, size: int, *, pe_name: str = "smp",
                          memory_resource: str = "h_vmem") -> list[str]:
    """qsub for an array of ``size`` tasks (1..size). ``spec`` is the array's: its name, its
    dispatcher (which picks the element's own job script by ``$SGE_TASK_ID``), its log paths
    with ``$TASK_ID``."""
    if size < 1:
        raise ValueError(f"an array needs at least one element, not {size}")
    argv = build_qsub_argv(spec, pe_name=pe_name, memory_resource=memory_resource)
    at = len(argv) - 1 - argv[::-1].index("-V")
    return argv[:at] + ["-t", f"1-{size}"] + argv[at:]


def element_id(array_id: str, index: int) -> str:
    """The id of batchman's element ``index`` (task ``index + 1``): ``615.3``."""
    return f"{array_id}.{index + 1}"


def element_index(job_id: str) -> int | None:
    """``615.3`` -> 2 (batchman's 0-based index); None for a plain job's id."""
    m = _ELEMENT.fullmatch(job_id.strip())
    return int(m.group(2)) - 1 if m and int(m.group(2)) >= 1 else None


def split_id(job_id: str) -> tuple[str, int | None]:
    """``615.3`` -> ('615', 2); ``615`` -> ('615', None)."""
    i = element_index(job_id)
    return (job_id.strip().split(".", 1)[0], i) if i is not None else (job_id.strip(), None)


def parse_tasks(text: str) -> list[int]:
    """qstat's task ids ('3', '4,5', '1-12:1', '2-10:2,15') -> the task numbers, sorted.
    Raises ValueError on anything else."""
    return parse_ranges(text, "a Grid Engine task range")


def expand_queue(rows: list[QueuedJob]) -> list[QueuedJob]:
    """Every row of an array job replaced by one row per task, with the task's own element id
    (``615.4``) and the row's state; rows of plain jobs (no tasks) stay as they are. A row whose
    task ids do not parse is left out (never shown as a plain job)."""
    out: list[QueuedJob] = []
    for r in rows:
        if not r.tasks:
            out.append(r)
            continue
        try:
            tasks = parse_tasks(r.tasks)
        except ValueError:
            continue
        out += [dataclasses.replace(r, job_id=f"{r.job_id}.{t}", tasks=str(t)) for t in tasks]
    return out


def pick_element(records: list[AcctRecord], array_name: str, array_id: str, index: int) -> AcctRecord | None:
    """The accounting record of batchman's element ``index`` of the array ``array_name`` with
    id ``array_id`` ('' when unknown: the latest array of that name)."""
    mine = [r for r in records if r.name == array_name and r.task_id == str(index + 1)
            and (not array_id or r.job_id == array_id)]
    return max(mine, key=lambda r: (r.latest, int(r.job_id or 0)), default=None)


def max_array_size(sconf: str) -> int:
    """Most tasks one array may have, from ``qconf -sconf`` (``max_aj_tasks``): 0 there means
    no limit, which is capped at :data:`UNLIMITED_CAP`; the cap too when the line is missing."""
    m = re.search(r"^max_aj_tasks\s+(\d+)\s*$", sconf, re.M)
    n = int(m.group(1)) if m else 0
    return UNLIMITED_CAP if n == 0 else min(n, UNLIMITED_CAP)
