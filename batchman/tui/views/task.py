"""One task: summary, segments (staged or not), its input and output files, history with reasons,
job details, logs."""

from __future__ import annotations

import os
import time

from batchman.page import render as export
from batchman.core import states as S
from batchman.core.model import Status, Task
from batchman.tui.views.base import TextView, handles
from batchman.tui.views.log import LogView


def _batch_said(t: Task) -> str:
    """The batch system's word: live while the job is in it; for an ended job, what it last
    said and until when (the task's end), never "says" as if it were now."""
    if not t.native_state:
        return ""
    if t.state in S.IN_BATCH:
        return f", batch says {t.native_state}"
    ended = t.finished_at or t.since
    return f", batch last said {t.native_state}" + (f" (the job ended {export.clock(ended)})" if ended else "")


class TaskView(TextView):
    title = "task"
    keyctx = ("taskview", "global")

    def __init__(self, app, task: Task) -> None:
        super().__init__(app)
        self.key = task.key
        self.task: Task | None = task
        self.history: list[dict] | None = None
        self.history_error = ""
        self.details: str | None = None
        self._seen = (task.state, task.since, task.request, task.attempt)
        self.load_history()
        self.redraw(keep=False)

    def load_history(self) -> None:
        store, key, gen = self.app.store, self.key, self.app.index.status.generation

        def work():
            return store.history({key, ".".join(key.split(".")[:2])}, upto=gen)   # a segment's: its split too

        def done(result, error):
            if error is not None:
                self.history_error = f"cannot read the journal: {error}"
            else:
                self.history = result
            self.redraw()
        self.app.background(work, done)

    def selected_tasks(self) -> list:
        return [self.task] if self.task is not None else []

    @handles("log.open")
    def open_log(self, ext: str) -> None:
        if self.task is not None:
            self.app.push(LogView(self.app, self.task, ext))

    @handles("task.details")
    def fetch_details(self) -> None:
        t = self.task
        if t is None or not t.job_id:
            self.app.say("this task has no batch job id (yet)", error=True)
            return
        self.details = f"asking the batch system about job {t.job_id} ..."
        self.redraw()
        params, job_id = self.app.params, t.job_id

        def work():
            from batchman.backends.factory import make_batch
            return make_batch(params).details(job_id)

        def done(result, error):
            self.details = f"could not ask the batch system: {error}" if error is not None else (result or "(nothing)")
            self.redraw()
        self.app.background(work, done)

    def on_status(self, status: Status) -> None:
        t = next((x for x in status.tasks if x.key == self.key), None)
        # tasks may be changed in place by this process's own transactions: compare a copy
        seen = (t.state, t.since, t.request, t.attempt) if t is not None else None
        changed = seen != self._seen
        self._seen = seen
        self.task = t
        if changed and t is not None:
            self.load_history()
        self.redraw()

    def tick(self) -> None:
        self.redraw()

    def redraw(self, keep: bool = True) -> None:
        t = self.task
        if t is None:
            self.head.set(f" task {self.key}: no longer in the status file (purged)")
            self.set_lines(["This task was removed from the list. esc goes back."], keep)
            return
        job = t.job if t.seg is None else f"{t.job}  segment {t.seg}"
        self.head.set(f" run {t.run}  job {job}  —  esc back, d job details, l/e output/error log, x kill, r restart, R re-run",
                      f" run {t.run}  job {job}  —  esc back  d details  l/e logs  x kill  r/R restart",
                      f" run {t.run}  job {job}  —  esc back  ? keys")
        self.set_lines(self._summary(t, self.app.clock()) + self._segments(t) + self._history(t)
                       + self._details(t) + self._logs(t), keep)

    def _summary(self, t: Task, now: float) -> list:
        L: list = [["state ", (f"state.{t.state}", export.state_label(t)),
                    f" for {export.duration(now - t.since) if t.since else '?'}  ({t.reason})"],
                   f"detail: {export.detail(t)}"]
        if t.error:
            L.append(("bad", f"error: {t.error}"))
        if t.warning:
            L.append(("warn", f"warning: {t.warning}"))
        L.append(f"attempt {t.attempt}" + (f", batch job {t.job_id} ({t.job_name})" if t.job_name or t.job_id else "")
                 + _batch_said(t)
                 + (f", exit code {t.exit_code}" if t.exit_code is not None else "")
                 + (f", failure {t.failure}" if t.failure else "")
                 + (f", killed in {t.killed_in}" if t.killed_in else "")
                 + (f", {t.analysed} segment(s) analysed" if t.analysed is not None else ""))
        L.append(f"priority {t.priority}, automatic restarts {t.auto_restarts}, added {export.clock(t.added_at)}"
                 + (f", submitted {export.clock(t.submitted_at)}" if t.submitted_at else "")
                 + (f", started {export.clock(t.started_at)}" if t.started_at else "")
                 + (f", finished {export.clock(t.finished_at)}" if t.finished_at else ""))
        if t.counters:
            L.append(f"counters: {export.counters_text(t)}")
        return L

    def _segments(self, t: Task) -> list:
        L: list = ["", ("title", f" segments ({len(t.segments)}, {export.staged_count(t)} staged) ")]
        for s in t.segments:
            L.append([("ok" if s.staged else "info", "  staged   " if s.staged else "  on tape  "), s.path])
        if not t.segments:
            L.append(f"  {export.no_files_note(t, self.app.params.jobs) or '(not looked up yet)'}")
        for label, files in (("inputs", t.inputs), ("outputs", t.outputs)):   # (a merge step's: its segments')
            if files:
                L += ["", ("title", f" {label} ({len(files)}) ")] + [f"  {f}" for f in files]
        return L

    def _history(self, t: Task) -> list:
        L: list = ["", ("title", " history ")]
        if self.history_error:
            L.append(("bad", "  " + self.history_error))
        elif self.history is None:
            L.append("  reading the journal ...")
        else:
            for h in self.history:
                L.append(f"  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(h.get('t', 0)))}  "
                         f"{h.get('from') or '':>10} -> {h.get('to', ''):<10} {h.get('why', '')}  ({h.get('by', '')})")
            if not self.history:
                L.append("  (no transitions recorded)")
        if t.past or t.used or t.resources:
            L += ["", ("title", " attempts ")] + ["  " + x for x in export.attempt_lines(t)]
        return L

    def _details(self, t: Task) -> list:
        L: list = ["", ("title", " job details ")]
        if self.details is None:
            L.append("  d asks the batch system" if t.job_id else "  no batch job yet")
        else:
            L.extend("  " + x for x in self.details.splitlines())
        return L

    def _logs(self, t: Task) -> list:
        L: list = ["", ("title", " logs ")]
        if not t.attempt:
            return L + ["  no attempt yet"]
        for ext in ("out", "err"):
            p = self.app.paths.log(t.run, t.job, t.attempt, ext, t.seg)
            L.append(f"  {ext}: {p}" + ("" if os.path.exists(p) else " (not there yet)"))
        return L
