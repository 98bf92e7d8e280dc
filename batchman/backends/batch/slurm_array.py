"""SLURM job arrays: pure argv builders and parsers (issue 14; the engine uses them in phase B).

One array job carries many tasks of the same job definition and resources: ``sbatch
--array=0-N%M`` submits them with one RPC. Each element has its own id ``<array id>_<index>``
(``123_4``), shown so by squeue and sacct, cancelled alone by ``scancel 123_4``. While elements
are pending squeue may show them as ONE row ``123_[5-9%4]``; :func:`expand_rows` turns such a
row into one row per index. SLURM refuses indexes at or above ``MaxArraySize`` (default 1001),
which :func:`max_array_size` reads from ``scontrol show config``.
"""

from __future__ import annotations

import dataclasses
import re

from batchman.backends.base import QUEUED, JobInfo, JobSpec
from batchman.backends.batch.array_ranges import parse_ranges
from batchman.backends.batch.slurm_text import SQUEUE_FORMAT, build_sbatch_argv

DEFAULT_MAX_ARRAY_SIZE = 1001          # SLURM's default MaxArraySize
# squeue's JobID field shows each element's own raw id (949, 950, ...); JobArrayID shows
# 948_1, 948_[2-5%2] (and a plain job's id as JobID does), so array queries use it.
SQUEUE_ARRAY_FORMAT = SQUEUE_FORMAT.replace("JobID:", "JobArrayID:", 1)
_ARRAY_ID = re.compile(r"(\d+)_(?:(\d+)|\[([^\]]*)\])")


def build_sbatch_array_argv(spec: JobSpec, size: int, max_running: int = 0) -> list[str]:
    """sbatch for an array of ``size`` elements (indexes 0..size-1), at most ``max_running``
    of them running at once (0: no limit). ``spec`` is the array's: its name, its dispatcher
    script (which picks the element's own job script by ``$SLURM_ARRAY_TASK_ID``), its logs."""
    if size < 1:
        raise ValueError(f"an array needs at least one element, not {size}")
    if max_running < 0:
        raise ValueError(f"max_running must be 0 (no limit) or more, not {max_running}")
    argv = build_sbatch_argv(spec)
    opt = f"--array=0-{size - 1}" + (f"%{max_running}" if max_running else "")
    argv.insert(argv.index("--export=ALL"), opt)
    return argv


def element_id(array_id: str, index: int) -> str:
    """The id of one element, as squeue/sacct show it and scancel takes it: ``123_4``."""
    return f"{array_id}_{index}"


def element_index(job_id: str) -> int | None:
    """``123_4`` -> 4; None for a plain job's id or a range of pending elements."""
    m = _ARRAY_ID.fullmatch(job_id.strip())
    return int(m.group(2)) if m and m.group(2) is not None else None


def parse_indexes(text: str) -> list[int]:
    """SLURM's index expression ('0-9%5', '1,4-6', '7', '0-10:2') -> the indexes, sorted.
    Raises ValueError on anything else."""
    return parse_ranges(text.split("%", 1)[0], "a SLURM array index expression")


def split_id(job_id: str) -> tuple[str, list[int] | None]:
    """'123_4' -> ('123', [4]); '123_[0-3%2]' -> ('123', [0, 1, 2, 3]); '123' -> ('123', None)."""
    m = _ARRAY_ID.fullmatch(job_id.strip())
    if not m:
        return job_id.strip(), None
    if m.group(2) is not None:
        return m.group(1), [int(m.group(2))]
    return m.group(1), parse_indexes(m.group(3))


def expand_rows(rows: list[JobInfo], array_id: str) -> dict[int, JobInfo]:
    """The rows (squeue or sacct) of one array, by element index. A pending range row
    (``123_[5-9]``) gives each of its indexes a QUEUED row with the element's own id; a row of
    one element wins over a range that also names it."""
    single: dict[int, JobInfo] = {}
    ranged: dict[int, JobInfo] = {}
    for r in rows:
        try:
            base, idx = split_id(r.job_id)
        except ValueError:
            continue
        if base != array_id or idx is None:
            continue
        if _ARRAY_ID.fullmatch(r.job_id).group(2) is not None:
            single[idx[0]] = r
        else:
            for i in idx:
                ranged[i] = dataclasses.replace(r, job_id=element_id(array_id, i), state=QUEUED)
    return {**ranged, **single}


def expand_all(rows: list[JobInfo]) -> list[JobInfo]:
    """Every range row (``123_[5-9%4]``) replaced by one row per element, with the element's
    own id and the range's state (pending; or cancelled, for elements cancelled before they
    started); a row of one element wins over a range that also names it. Other rows (plain
    jobs, single elements) stay as they are."""
    singles = {r.job_id for r in rows}
    out: list[JobInfo] = []
    for r in rows:
        m = _ARRAY_ID.fullmatch(r.job_id.strip())
        if m is None or m.group(3) is None:
            out.append(r)
            continue
        try:
            idx = parse_indexes(m.group(3))
        except ValueError:
            continue
        out += [dataclasses.replace(r, job_id=e) for i in idx if (e := element_id(m.group(1), i)) not in singles]
    return out


def resolve(arrays: dict[str, tuple[str, int]], rows: list[JobInfo]) -> dict[str, str]:
    """The element ids of asked array elements whose array shows in ``rows`` under its name.
    ``arrays``: task job name -> (array name, index). Array names are unique per submission,
    so any row of the array gives its id."""
    base: dict[str, str] = {}
    wanted = {a for a, _ in arrays.values()}
    for r in rows:
        if r.name in wanted:
            b, idx = split_id(r.job_id)
            if idx is not None:
                base[r.name] = b
    return {n: element_id(base[a], i) for n, (a, i) in arrays.items() if a in base}


def match_elements(ids: dict[str, str], arrays: dict[str, tuple[str, int]],
                   rows: list[JobInfo]) -> dict[str, JobInfo]:
    """For each asked task job name -> element id, its row (renamed to the task's job name).
    The row must carry the array's name (ids are reused when a cluster's state is reset), or
    "allocation"/"" as slurmdbd may call a job that just ended."""
    by_id = {r.job_id: r for r in rows}
    found = {}
    for name, job_id in ids.items():
        r = by_id.get(job_id) if job_id else None
        if r is not None and r.name in (arrays[name][0], "allocation", ""):
            found[name] = dataclasses.replace(r, name=name)
    return found


def max_array_size(conf: dict[str, str]) -> int:
    """Most elements one array may have (indexes 0..MaxArraySize-1), from ``scontrol show
    config`` as parsed by :func:`batchman.backends.batch.slurm.parse_scontrol_config`."""
    try:
        n = int(conf.get("MaxArraySize", DEFAULT_MAX_ARRAY_SIZE))
    except ValueError:
        return DEFAULT_MAX_ARRAY_SIZE
    return max(0, n)
