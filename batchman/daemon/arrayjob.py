"""The files of one job array (issue 14), written before its ``sbatch`` in
``<temp_dir>/arrays/<array name>/``:

* ``dispatch.sh``: the array's script. SLURM runs it once per element; it ``exec``s the
  element's own ``job.sh`` (chosen by ``$SLURM_ARRAY_TASK_ID``), so each task keeps its attempt
  directory, markers, environment and done file exactly as a plain job.
* ``<i>.out`` / ``<i>.err``: symbolic links to the task's own log files. The array is submitted
  with ``--output=<dir>/%a.out --error=<dir>/%a.err``, so what SLURM itself writes (a time-limit
  or memory cancellation) lands in the task's own stderr, which the failure hints read.
* ``members``: ``<index> <job name>`` per line, so ``batchman recover`` and the unknown-job
  scan (``batchman adopt``) can tell which task an element is without the status file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex

from batchman.backends.base import JobInfo, JobSpec
from batchman.util.files import atomic_write

DISPATCHER = "dispatch.sh"
MEMBERS = "members"


def render_dispatcher(array_name: str, scripts: dict[int, str]) -> str:
    """The dispatcher's text (pure): index -> the element's job script."""
    if not scripts:
        raise ValueError(f"array {array_name}: no element")
    cases = "\n".join(f"{i}) exec {shlex.quote(s)} ;;" for i, s in sorted(scripts.items()))
    return f"""#!/bin/bash
# batchman job array {array_name}: runs the job script of element $SLURM_ARRAY_TASK_ID
case "${{SLURM_ARRAY_TASK_ID:-}}" in
{cases}
*) echo "batchman: array {array_name} has no element '${{SLURM_ARRAY_TASK_ID:-}}'" >&2; exit 2 ;;
esac
"""


def render_members(names: dict[int, str]) -> str:
    return "".join(f"{i} {n}\n" for i, n in sorted(names.items()))


def parse_members(text: str) -> dict[int, str]:
    """``members`` -> index -> job name (malformed lines skipped)."""
    out = {}
    for line in text.splitlines():
        i, _, name = line.strip().partition(" ")
        if i.isdigit() and name:
            out[int(i)] = name
    return out


def array_spec(array_dir: str, array_name: str, elements: dict[int, JobSpec]) -> JobSpec:
    """The array's JobSpec (pure): the elements' resources (all the same: they were grouped by
    them), the dispatcher, per-index log patterns; no environment on the submission line (each
    job.sh exports its own)."""
    first = elements[min(elements)]
    return dataclasses.replace(first, name=array_name, script=os.path.join(array_dir, DISPATCHER),
                               stdout=os.path.join(array_dir, "%a.out"), stderr=os.path.join(array_dir, "%a.err"),
                               attempt_dir=array_dir, env={})


def prepare(arrays_root: str, array_name: str, elements: dict[int, JobSpec]) -> JobSpec:
    """Write the array's files (the elements' job scripts are written already); returns its spec."""
    if sorted(elements) != list(range(len(elements))):
        raise ValueError(f"array {array_name}: indexes {sorted(elements)} are not 0..{len(elements) - 1}")
    d = os.path.join(arrays_root, array_name)
    os.makedirs(d, exist_ok=True)
    atomic_write(os.path.join(d, MEMBERS), render_members({i: s.name for i, s in elements.items()}))
    for i, s in elements.items():
        for ext, target in (("out", s.stdout), ("err", s.stderr)):
            link = os.path.join(d, f"{i}.{ext}")
            if os.path.lexists(link):
                os.unlink(link)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            os.symlink(os.path.abspath(target), link)
    atomic_write(os.path.join(d, DISPATCHER), render_dispatcher(array_name, {i: s.script for i, s in elements.items()}),
                 mode=0o755)
    return array_spec(d, array_name, elements)


def all_members(arrays_root: str, names: set[str] | None = None) -> dict[str, dict[int, str]]:
    """array name -> index -> job name, for every array written here (or those of ``names``
    only: one small read per array the batch system lists, not one per array ever made)."""
    out = {}
    if names is None:
        try:
            names = set(os.listdir(arrays_root))
        except OSError:
            return {}
    for n in names:
        try:
            with open(os.path.join(arrays_root, n, MEMBERS), encoding="utf-8") as f:
                out[n] = parse_members(f.read())
        except OSError:
            continue
    return out


_ELEMENT = re.compile(r"^\d+_(\d+)$")     # an element's id as the batch system lists it: 948_3


def member_of(members: dict[str, dict[int, str]]) -> dict[str, tuple[str, int]]:
    """job name -> (array name, index), from :func:`all_members`."""
    return {n: (a, i) for a, m in members.items() for i, n in m.items()}


def element_rows(rows: list[JobInfo], members: dict[str, dict[int, str]]) -> list[JobInfo]:
    """The listed elements of our arrays as rows of their tasks' own job names (the batch
    system lists them under the array's name); other rows are left out."""
    out = []
    for r in rows:
        m = _ELEMENT.match(r.job_id)
        name = members.get(r.name, {}).get(int(m.group(1))) if m else None
        if name:
            out.append(dataclasses.replace(r, name=name))
    return out
