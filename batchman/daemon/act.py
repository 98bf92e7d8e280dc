"""Step 4 of an iteration, outside the lock: the slow actions (staging requests, releases,
cancellations, submissions), each kind in one call to its backend where it can be."""

from __future__ import annotations

from typing import Callable

from batchman.backends.base import BackendUnavailable, Refused, Rejected, Submitted, SubmitOutcome, Unreachable
from batchman.core import decide as D
from batchman.daemon import arrayjob
from batchman.daemon.crash import crash_point
from batchman.daemon.jobspec import JobSpecs, used_resources
from batchman.daemon.pacing import Pacing
from batchman.daemon.work import IterationReport, Work

# Per task key: action -> True/False (done?), or the SubmitOutcome of a submission.
Results = dict[str, dict]


_SAID = {D.CANCEL_STAGE: "cancel staging"}      # (the report's word for an action, where its name is not one)


class Actor:
    """Carries out the work of one iteration; remembers what each submission asked for."""

    def __init__(self, batch, staging, specs: JobSpecs, pacing: Pacing, clock: Callable[[], float]):
        self.batch = batch
        self.staging = staging
        self.specs = specs
        self.pacing = pacing
        self.clock = clock
        self.used: dict[str, dict] = {}                   # task key -> resources of the spec submitted
        self.engine = None                                # the engine, for the test hooks at crash points

    def act(self, work: list[Work], rep: IterationReport) -> Results:
        """Run the slow actions. Returns, per task key, what happened to each action."""
        res: Results = {w.key: {} for w in work}
        self._files(work, D.CANCEL_STAGE, self.staging.cancel, res, rep)
        self._cancel(work, res, rep)
        self._files(work, D.RELEASE, self.staging.release, res, rep)
        self._files(work, D.STAGE, self.staging.request, res, rep)
        for w in work:
            if D.REMOVE in w.actions:
                res[w.key][D.REMOVE] = True
        self._submit_all(work, res, rep)
        return res

    @staticmethod
    def _files(work: list[Work], action: str, fn, res: Results, rep: IterationReport) -> None:
        """One staging call for the files of every task with ``action``."""
        ws = [w for w in work if action in w.actions]
        files = [f for w in ws for f in w.files]
        if not ws:
            return
        ok, said = True, _SAID.get(action, action)
        if files:
            try:
                fn(files)
                rep.actions.append(f"{said}: {len(files)} file(s) of {len({w.run for w in ws if w.files})} run(s)")
            except (BackendUnavailable, Rejected) as e:
                ok = False
                rep.errors.append(f"{said}: {e}")
        for w in ws:
            res[w.key][action] = ok

    def _cancel(self, work: list[Work], res: Results, rep: IterationReport) -> None:
        ids = [w.job_id for w in work if D.CANCEL in w.actions and w.job_id]
        ok = True
        if ids:
            try:
                self.batch.cancel(ids)
                rep.actions.append(f"cancel: {len(ids)} job(s)")
            except BackendUnavailable as e:
                rep.errors.append(f"cancel: {e}")
                ok = False
        for w in work:
            if D.CANCEL in w.actions:
                res[w.key][D.CANCEL] = ok

    def _submit_all(self, work: list[Work], res: Results, rep: IterationReport) -> None:
        # Once one submission finds the batch system unreachable (controller down, sbatch timed
        # out), the rest are not tried this iteration: each would wait its command_timeout, and
        # hundreds of them would hang the iteration. They stay SUBMITTING, looked up by name and
        # submitted next time, exactly as after an unconfirmed submission.
        down: Unreachable | None = None
        for unit in _units(work):
            if down is not None:
                for w in unit:
                    res[w.key][D.SUBMIT] = Unreachable(f"not tried: {down.message}", down.timed_out)
                continue
            crash_point("before-submit", self.engine)
            outs = self.submit_array(unit, rep) if unit[0].array_name else [self.submit(unit[0], rep)]
            for w, out in zip(unit, outs):
                res[w.key][D.SUBMIT] = out
            crash_point("after-submit", self.engine)
            out = outs[0]
            if isinstance(out, Unreachable):
                down = out
                if not out.timed_out:
                    # The controller refused to talk (not: sbatch hung, which may have
                    # submitted -- the next round looks the job up by name): back off.
                    self.pacing.failed(self.clock(), f"sbatch: {out.message}")

    def submit_array(self, unit: list[Work], rep: IterationReport) -> list[SubmitOutcome]:
        """One sbatch for the tasks of one array (recorded with their indexes in the intent):
        each element's own job script is written as for a plain job, then the array's files."""
        name = unit[0].array_name
        problem = self.specs.command_problem(unit[0].job)
        if problem:
            return [Refused(problem)] * len(unit)
        try:
            specs = {w.array_index: self.specs.spec(w) for w in unit}
            aspec = arrayjob.prepare(self.specs.paths.arrays, name, specs, self.batch.array_form)
        except (OSError, KeyError, ValueError, IndexError, TypeError) as e:
            return [Refused(f"cannot write the job scripts of array {name}: {e}")] * len(unit)
        for w in unit:
            self.used[w.key] = used_resources(specs[w.array_index])
        out = self.batch.try_submit_array(aspec, len(unit))
        if isinstance(out, Submitted):
            rep.actions.append(f"submitted {len(unit)} run(s) as job array {out.job_id} ({name})")
            return [Submitted(self.batch.element_id(out.job_id, w.array_index)) for w in unit]
        if isinstance(out, Refused):
            rep.errors.append(f"submit array {name} ({len(unit)} runs): rejected: {out.message}")
        else:
            rep.errors.append(f"submit array {name} ({len(unit)} runs): {out.message}")
        return [out] * len(unit)

    def submit(self, w: Work, rep: IterationReport) -> SubmitOutcome:
        problem = self.specs.command_problem(w.job)
        if problem:
            return Refused(problem)
        try:
            spec = self.specs.spec(w)
        except (OSError, KeyError, ValueError, IndexError) as e:
            return Refused(f"cannot write the job script: {e}")
        self.used[w.key] = used_resources(spec)
        out = self.batch.try_submit(spec)
        if isinstance(out, Submitted):
            rep.actions.append(f"submitted {w.job_name} as job {out.job_id}")
        elif isinstance(out, Refused):
            rep.errors.append(f"submit {w.job_name}: rejected: {out.message}")
        else:
            rep.errors.append(f"submit {w.job_name}: {out.message}")
        return out


def _units(work: list[Work]) -> list[list[Work]]:
    """The submissions in order: each plain task alone, each array's tasks together (at the
    place of its first)."""
    units: list[list[Work]] = []
    arrays: dict[str, list[Work]] = {}
    for w in work:
        if D.SUBMIT not in w.actions:
            continue
        if not w.array_name:
            units.append([w])
        elif w.array_name in arrays:
            arrays[w.array_name].append(w)
        else:
            arrays[w.array_name] = [w]
            units.append(arrays[w.array_name])
    return units
