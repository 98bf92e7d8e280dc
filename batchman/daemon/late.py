"""Files of a split run that arrive after the split (issue 18).

A per: segment job's run task is split into one task per file when the run's files are first
found (Engine._split). A file written after that would get no task, and the run's all-segments
step (``after: reco, all-segments``, a merge) would go on without it. So the files of a run are
looked at once more when that step could start: a file whose segment number has no task gets one
(under the lock, ``add``), and the step waits for it in this iteration and then until its task
completes. Looked at again only when more segments completed since (a later look finds the files
of those added). A file that arrives after the step started still gets no task (README).
"""

from __future__ import annotations

from typing import Callable

from batchman.core import jobs as J
from batchman.core.model import Status, Task, parse_key, task_key
from batchman.daemon.segments import find_segments, numbered


class Late:
    """What the last observe found: per: segment run key -> (a segment task's key, late files)."""

    def __init__(self) -> None:
        self.found: dict[str, tuple[str, list[tuple[int, str]]]] = {}
        self.looked: dict[str, int] = {}     # step task key -> its segments completed at the look

    def look(self, status: Status, gates: dict, jobs, params, only: Callable[[Task], bool] | None) -> None:
        """Look at the files of each run whose all-segments step may start now (its gate open);
        a run with late files: noted in ``found``, and its step's gate closed for this iteration."""
        self.found = {}
        self.looked = {k: n for k, n in self.looked.items() if k in gates}     # (a step that left NEW)
        for key, g in list(gates.items()):
            if g.wait or self.looked.get(key) == len(g.inputs):
                continue
            parts = parse_key(key)
            d = jobs.defs.get(parts[1]) if parts else None
            if d is None or not d.after_all:
                continue
            step = status.index().get(key)
            if step is None or (only is not None and not only(step)):
                continue
            self.looked[key] = len(g.inputs)
            late = self._files(status, step.run, d.after, params)
            if late:
                gates[key] = J.Gate(wait=f"waiting for {d.after}: {len(late)} file(s) found after its run was "
                                         f"split", staging=g.staging)

    def _files(self, status: Status, run: int, job: str, params) -> list[tuple[int, str]]:
        pat, pre, suf = params["staging.pattern"], params["staging.prefix"], params["staging.suffix"]
        stub = params.path("staging.stub_dir")
        paths, _ = find_segments(stub, pat, run, pre, suf)
        found = numbered(paths, stub, pat, run, pre, suf)
        idx = status.index()
        late = J.late_files(run, job, found, idx)
        sibling = next((k for seg, _ in found if (k := task_key(run, job, seg)) in idx), None)
        if late and sibling is not None:
            self.found[task_key(run, job)] = (sibling, late)
            return late
        return []


def add(late: Late, st: Status, now: float) -> list[Task]:
    """Under the lock: the segment tasks of the late files found by the last observe, those whose
    number still has no task, for the caller to append and journal."""
    out: list[Task] = []
    idx = st.index()
    for sibling_key, found in late.found.values():
        sib = idx.get(sibling_key)
        if sib is None:
            continue
        run_task = Task(run=sib.run, job=sib.job, priority=sib.priority, meta=sib.meta)
        out += J.split(run_task, J.late_files(sib.run, sib.job, found, idx), idx, now, late=True)
    late.found = {}
    return out
