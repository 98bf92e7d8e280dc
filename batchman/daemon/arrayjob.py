"""The files of one job array (issue 14), written before its submission in
``<temp_dir>/arrays/<array name>/``. What differs between batch systems (the variable naming
the element's index, the index of element 0, the index token of log paths) is the backend's
:class:`batchman.backends.base.ArrayForm`; below, SLURM's (``SLURM_ARRAY_TASK_ID``, 0, ``%a``):

* ``dispatch.sh``: the array's script. The batch system runs it once per element; it ``exec``s
  the element's own ``job.sh`` (chosen by ``$SLURM_ARRAY_TASK_ID``), so each task keeps its
  attempt directory, markers, environment and done file exactly as a plain job.
* ``<n>.out`` / ``<n>.err`` (``n``: the batch system's index): symbolic links to the task's own
  log files. The array is submitted with ``--output=<dir>/%a.out --error=<dir>/%a.err``, so
  what the batch system itself writes (a time-limit or memory cancellation) lands in the
  task's own stderr, which the failure hints read.
* ``members``: ``<index> <job name>`` per line (batchman's 0-based index), so ``batchman
  recover`` and the unknown-job scan (``batchman adopt``) can tell which task an element is
  without the status file.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Callable

from batchman.backends.base import ArrayForm, JobInfo, JobSpec
from batchman.util.files import atomic_write

DISPATCHER = "dispatch.sh"
MEMBERS = "members"


def render_dispatcher(array_name: str, scripts: dict[int, str], form: ArrayForm) -> str:
    """The dispatcher's text (pure): index -> the element's job script, picked by the batch
    system's own index of the element (``form.first`` + index) in ``$<form.index_var>``."""
    if not scripts:
        raise ValueError(f"array {array_name}: no element")
    var = form.index_var
    cases = "\n".join(f"{i + form.first}) exec {shlex.quote(s)} ;;" for i, s in sorted(scripts.items()))
    return f"""#!/bin/bash
# batchman job array {array_name}: runs the job script of element ${var}
case "${{{var}:-}}" in
{cases}
*) echo "batchman: array {array_name} has no element '${{{var}:-}}'" >&2; exit 2 ;;
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


def array_spec(array_dir: str, array_name: str, elements: dict[int, JobSpec], form: ArrayForm) -> JobSpec:
    """The array's JobSpec (pure): the elements' resources (all the same: they were grouped by
    them), the dispatcher, per-index log patterns; no environment on the submission line (each
    job.sh exports its own)."""
    first = elements[min(elements)]
    logs = os.path.join(array_dir, form.log_token)
    return dataclasses.replace(first, name=array_name, script=os.path.join(array_dir, DISPATCHER),
                               stdout=f"{logs}.out", stderr=f"{logs}.err", attempt_dir=array_dir, env={})


def prepare(arrays_root: str, array_name: str, elements: dict[int, JobSpec], form: ArrayForm) -> JobSpec:
    """Write the array's files (the elements' job scripts are written already); returns its spec."""
    if sorted(elements) != list(range(len(elements))):
        raise ValueError(f"array {array_name}: indexes {sorted(elements)} are not 0..{len(elements) - 1}")
    d = os.path.join(arrays_root, array_name)
    os.makedirs(d, exist_ok=True)
    atomic_write(os.path.join(d, MEMBERS), render_members({i: s.name for i, s in elements.items()}))
    for i, s in elements.items():
        for ext, target in (("out", s.stdout), ("err", s.stderr)):
            link = os.path.join(d, f"{i + form.first}.{ext}")
            if os.path.lexists(link):
                os.unlink(link)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            os.symlink(os.path.abspath(target), link)
    atomic_write(os.path.join(d, DISPATCHER), render_dispatcher(array_name, {i: s.script for i, s in elements.items()}, form),
                 mode=0o755)
    return array_spec(d, array_name, elements, form)


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


def member_of(members: dict[str, dict[int, str]]) -> dict[str, tuple[str, int]]:
    """job name -> (array name, index), from :func:`all_members`."""
    return {n: (a, i) for a, m in members.items() for i, n in m.items()}


def element_rows(rows: list[JobInfo], members: dict[str, dict[int, str]],
                 element_index: Callable[[str], int | None]) -> list[JobInfo]:
    """The listed elements of our arrays as rows of their tasks' own job names (the batch
    system lists them under the array's name); other rows are left out. ``element_index``:
    the backend's, element id (``948_3``, ``948.4``, ``948[4]``) -> index."""
    out = []
    for r in rows:
        i = element_index(r.job_id) if r.name in members else None
        name = members[r.name].get(i) if i is not None else None
        if name:
            out.append(dataclasses.replace(r, name=name))
    return out
