"""LSF job arrays: pure argv builders and parsers (issue 14).

Following IBM Spectrum LSF 10.1.0's documentation (bsub -J, "Job arrays", LSB_BJOBS_DISPLAY_ENH):
``bsub -J "name[1-N]"`` submits one array of N elements sharing one job id; indexes start at 1
(batchman's element ``i`` is index ``i + 1``); ``%I`` in ``-o``/``-e`` is the element's index
and ``LSB_JOBINDEX`` its environment's. An element is ``<id>[<index>]`` (``101[3]``) for
``bjobs``, ``bkill`` and ``bhist``. By default bjobs shows an element's JOBID as the array's id
alone and its JOB_NAME as ``name[index]`` (with LSB_BJOBS_DISPLAY_ENH=Y the JOBID is
``101[3]`` already): :func:`as_element` turns either into the element's own id, listed under
the array's name. The index can never exceed MAX_JOB_ARRAY_SIZE (lsb.params, 1000 by default).
"""

from __future__ import annotations

import dataclasses
import re

from batchman.backends.base import JobInfo, JobSpec
from batchman.backends.batch.lsf_text import build_bsub_argv

MAX_JOB_ARRAY_SIZE = 1000              # LSF's default; a site may raise it in lsb.params
_ELEMENT = re.compile(r"(\d+)\[(\d+)\]")
_ELEMENT_NAME = re.compile(r"(.+)\[(\d+)\]")


def build_bsub_array_argv(spec: JobSpec, size: int, *, mem_units: bool = True) -> list[str]:
    """bsub for an array of ``size`` elements (indexes 1..size): ``-J "name[1-size]"``. ``spec``
    is the array's: its name, its dispatcher (which picks the element's own job script by
    ``$LSB_JOBINDEX``), its log paths with ``%I``; no environment (each job.sh exports its own)."""
    if size < 1:
        raise ValueError(f"an array needs at least one element, not {size}")
    if size > MAX_JOB_ARRAY_SIZE:
        raise ValueError(f"an LSF array has at most {MAX_JOB_ARRAY_SIZE} elements, not {size}")
    argv = build_bsub_argv(dataclasses.replace(spec, env={}), mem_units=mem_units)
    argv[argv.index("-J") + 1] = f"{spec.name}[1-{size}]"
    return argv


def element_id(array_id: str, index: int) -> str:
    """The id of batchman's element ``index`` (LSF's index ``index + 1``): ``101[3]``."""
    return f"{array_id}[{index + 1}]"


def element_index(job_id: str) -> int | None:
    """``101[3]`` -> 2 (batchman's 0-based index); None for a plain job's id."""
    m = _ELEMENT.fullmatch(job_id.strip())
    return int(m.group(2)) - 1 if m and int(m.group(2)) >= 1 else None


def as_element(info: JobInfo) -> JobInfo:
    """A bjobs or bhist row of an array element (JOB_NAME ``name[3]``, JOBID ``101`` or
    ``101[3]``) as the element's id under the array's name; other rows as they are."""
    m = _ELEMENT_NAME.fullmatch(info.name)
    if not m:
        return info
    base = info.job_id.split("[", 1)[0]
    return dataclasses.replace(info, name=m.group(1), job_id=f"{base}[{m.group(2)}]")


def resolve(where: tuple[str, int], rows: list[JobInfo]) -> str:
    """The element id of (array name, index) from the newest array of that name in ``rows``;
    '' when none is listed."""
    bases = [r.job_id.split("[", 1)[0] for r in rows if r.name == where[0] and element_index(r.job_id) is not None]
    return element_id(max(bases, key=int), where[1]) if bases else ""
