"""Which ready tasks go to the batch system together as one job array (pure).

Tasks of the same job definition submitted with the same resources that become ready in the
same iteration form one array, up to the site's ``MaxArraySize`` elements; more make several
arrays. A task whose retry changed its resources (``Task.resources``, set by the retry rules)
leaves the array and goes alone, so the changed request is its own. A group smaller than
``min_size`` goes as plain jobs. The engine (phase B of issue 14) records the array's name and
the task -> index map (:func:`index_map`) in the intent before ``sbatch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import re

from batchman.core.model import Task

_ARRAY_NAME_RE = re.compile(r"^bm\.([0-9a-z]+)\.([A-Za-z][A-Za-z0-9_-]*)\.a([0-9a-z]+)$")


@dataclass(frozen=True)
class Ready:
    key: str                               # the task's key
    job: str                               # its job definition
    resources: tuple[tuple[str, Any], ...]  # what the attempt is submitted with, sorted
    alone: bool = False                    # must not join an array (a retry changed its resources)


def freeze(resources: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-free form of a resource mapping (lists become tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in resources.items()))


def ready(task: Task, resources: Mapping[str, Any]) -> Ready:
    """The grouping view of a task about to be submitted with ``resources``."""
    return Ready(task.key, task.job, freeze(resources), alone=bool(task.resources))


def group(items: Sequence[Ready], max_size: int, min_size: int = 2) -> list[list[Ready]]:
    """Split the ready tasks, in order, into groups: each a list of tasks of one job definition
    and resources, at most ``max_size`` long; groups shorter than ``min_size`` become single
    tasks. ``max_size`` <= 1 (arrays off, or a site with MaxArraySize 1): every task alone."""
    if max_size <= 1:
        return [[r] for r in items]
    by_kind: dict[tuple, list[Ready]] = {}
    slots: list[Ready | tuple] = []        # in order of first appearance: a lone task or a kind
    for r in items:
        if r.alone:
            slots.append(r)
            continue
        kind = (r.job, r.resources)
        if kind not in by_kind:
            by_kind[kind] = []
            slots.append(kind)
        by_kind[kind].append(r)
    out: list[list[Ready]] = []
    for slot in slots:
        if isinstance(slot, Ready):
            out.append([slot])
            continue
        members = by_kind[slot]
        for i in range(0, len(members), max_size):
            chunk = members[i:i + max_size]
            out.extend([chunk] if len(chunk) >= max(min_size, 1) else [[r] for r in chunk])
    return out


def index_map(members: Sequence[Ready]) -> dict[str, int]:
    """Task key -> array index (0-based, in the group's order)."""
    return {r.key: i for i, r in enumerate(members)}


def array_name(store_id: str, job: str, stamp: str) -> str:
    """The batch job name of an array: ``bm.<store>.<job>.a<stamp>`` (``stamp``: unique per
    array of this status file, e.g. the daemon's pid, the time and a counter in base 36). It is
    how a daemon finds the array again after a crash, so it must never be reused; it never
    parses as a task's job name (:func:`batchman.core.model.parse_job_name`)."""
    name = f"bm.{store_id}.{job}.a{stamp}"
    if not _ARRAY_NAME_RE.match(name):
        raise ValueError(f"not a valid array name: {name!r} (stamp must be lowercase letters and digits)")
    return name


def parse_array_name(name: str) -> tuple[str, str] | None:
    """(store id, job) of an array's name, or None if it is not one."""
    m = _ARRAY_NAME_RE.match(name)
    return (m.group(1), m.group(2)) if m else None


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out
