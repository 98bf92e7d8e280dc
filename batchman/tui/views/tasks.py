"""The main screen: header (counts, daemon, lock, banners), the task list, its column titles.

Designed for 80x24 first: every header line is one line (the first of its variants that
fits, the least important parts dropped first); an unreadable status file takes the list's
place with what to do, rather than an empty list.
"""

from __future__ import annotations

import urwid

from batchman.page import render as export
from batchman.core import states as S
from batchman.core.model import Status, awaits_daemon
from batchman.tui.tasklist import SORT_LABEL, ColumnTitles, TaskWalker
from batchman.tui.views.base import View
from batchman.tui.widgets import FitLine


LOOK = {"ok": "ok", "calm": "info", "bad": "bad"}      # the daemon line's look -> its attribute
HOW = {"start": "q offers to start one", "release": "h on them releases them"}    # (the keys: keys.py)


def counts_variants(title: str, n: int, counts) -> tuple:
    """The counts line, most complete first: ' batchman: exp  10 task(s): 6 new, 1 running',
    then without 'batchman:' and the commas, then without the experiment's name (the counts
    matter more: the person knows where they are)."""
    present = [s for s in S.ALL if counts.get(s)]
    if not present:
        full = [("title", f" batchman: {title} "), f" {n} task(s): none yet: press a to add runs"]
        return full, [("title", f" {title} "), " no tasks yet: a adds runs"]
    full: list = [("title", f" batchman: {title} "), f" {n} task(s): "]
    short: list = [("title", f" {title} "), f" {n} tasks: "]
    for i, s in enumerate(present):
        full += ([", "] if i else []) + [(f"state.{s}", f"{counts[s]} {s}")]
        short += ([" "] if i else []) + [(f"state.{s}", f"{counts[s]} {s}")]
    return full, short, short[1:]


def store_error_lines(error: str, root: str) -> list:
    """What the list area says when the status file cannot be read: the error and what to do."""
    return [("bad", " The status file cannot be read: no task is shown and no change can be made. "),
            f" To rebuild it: batchman recover -C {root}",
            "   (from the batch system, the attempt markers and the journal; the unreadable",
            "   file is kept aside), or restore the good copy the message below names.", "",
            error, "",
            "This screen comes back to the list by itself once the file is readable."]


class TaskListView(View):
    title = "tasks"
    keyctx = ("tasklist", "global")

    def __init__(self, app) -> None:
        super().__init__(app)
        self.walker = TaskWalker(app.index, app.focus_map, app.clock)
        self.listbox = urwid.ListBox(self.walker)
        self.counts_text = FitLine("")
        self.daemon_text = FitLine("")
        self.info_text = FitLine("")
        self.banners: list[FitLine] = []
        self._counts_for: Status | None = None
        self._pending = 0                   # of those counts: the active tasks
        self._look: tuple | None = None     # (status, every pending task held) without a daemon: once a status
        self._shown_error = ""
        self.header = urwid.Pile([])
        self._set_header()
        self.error_box = urwid.ListBox(urwid.SimpleFocusListWalker([urwid.Text("")]))
        self.widget = urwid.Frame(self.listbox, header=self.header)
        self.last_rows = 20

    def _set_header(self) -> None:
        ws = [self.counts_text, self.daemon_text, *self.banners, self.info_text,
              urwid.AttrMap(ColumnTitles(), "colhead")]
        self.header.contents = [(w, self.header.options()) for w in ws]

    # how many rows the list had when last drawn (page up/down moves by that)
    def page_rows(self) -> int:
        return max(1, self.last_rows - 1)

    def on_status(self, status: Status) -> None:
        self.walker.changed()
        self.update_header()

    def tick(self) -> None:
        self.walker.changed()   # time in state moves on
        self.update_header()

    def counts_changed(self) -> None:
        """The counts by state grew (a large status file being read: loading.py)."""
        self._counts_for = None
        self.update_header()

    def model_changed(self) -> None:
        self.walker.changed()
        self.update_header()

    def update_header(self) -> None:
        app = self.app
        st = app.index.status
        now = app.clock()
        self._show_store_error(app.store_error)
        if app.store_error:
            self.counts_text.set([("title", f" batchman: {app.params.experiment} "), ("bad", " status file unreadable ")],
                                 [("bad", " status file unreadable ")])
            self._counts_for = None
        elif self._counts_for is not st:
            counts = app.index.orders.counts()      # (while a large file is read: of the tasks read so far)
            self.counts_text.set(*counts_variants(st.experiment or app.params.experiment, sum(counts.values()), counts))
            self._counts_for, self._pending = st, sum(counts[s] for s in S.ACTIVE)
        line, look = self._daemon_look(st, now)
        d: list = [(LOOK[look], " " + line)]
        if app.locked_by:
            d += ["   ", ("warn", f"locked by {app.locked_by}")]
        self.daemon_text.set(d)
        self._set_banners(self.banner_markups(st, now))
        idx = app.index
        f = idx.describe_filter()
        info = f" {len(idx.order)} shown" + (f" (filter: {f})" if f else "") + f", sorted by {SORT_LABEL[idx.sort]}"
        if idx.marks:
            info += f", {len(idx.marks)} marked"
        self.info_text.set(("info", info + "    ? help  q quit"), ("info", info))

    def _daemon_look(self, st: Status, now: float) -> tuple[str, str]:
        """render.daemon_look; without a daemon whether every pending task is held (at worst a
        pass over them) is found once a status; the rest moves with the time (a oneshot's round)."""
        if not st.daemons and (self._look is None or self._look[0] is not st):
            self._look = (st, self._pending and not any(map(awaits_daemon, st.tasks)))
        held = None if st.daemons else bool(self._look[1])
        return export.daemon_look(st, now, self.app.params.stale_after, self._pending, all_held=held, **HOW)

    def banner_markups(self, st: Status, now: float) -> list:
        """One line each, most important first."""
        banners: list = []
        problem = self.app.params_problem()
        if problem:
            banners.append(("bad", f" parameters in use are not the file's: {problem} "))
        if st.paused:
            banners.append(("warn", " PAUSED: no new staging or submissions (p resumes) "))
        if st.batch_unreachable_since:
            banners.append(("bad", f" {export.batch_line(st, now)} "))
        if st.batch_calls or st.batch_last_error:
            calls = int(sum(c[1] for c in st.batch_calls if c[0] > now - 3600))
            banners.append(("info", f" batch system: {calls} call(s) in the last hour"
                            + (f"; last error {export.clock(st.batch_last_error_at or 0)}: {st.batch_last_error[:80]}"
                               if st.batch_last_error else "") + " "))
        if st.staging_unreachable_since:
            banners.append(("bad", f" staging unreachable since {export.clock(st.staging_unreachable_since)} "))
        if st.unknown:
            banners.append(("warn", f" {len(st.unknown)} unknown job(s) under our name: "
                            + ", ".join(f"{u.name} ({u.job_id}, {u.state})" for u in st.unknown[:3])
                            + (" ..." if len(st.unknown) > 3 else "") + "; U merges them "))
        return banners

    def _set_banners(self, markups: list) -> None:
        if len(markups) != len(self.banners):
            self.banners = [FitLine("") for _ in markups]
            self._set_header()
        for w, m in zip(self.banners, markups):
            w.set(m)

    def _show_store_error(self, error: str) -> None:
        if error == self._shown_error:
            return
        self._shown_error = error
        if error:
            lines = store_error_lines(error, self.app.exp.root)
            self.error_box.body[:] = [urwid.Text(x) for x in lines]
            self.widget.body = self.error_box
        else:
            self.widget.body = self.listbox

    def render_hook(self, size) -> None:
        # rows of the list = the view's rows minus its header
        if len(size) == 2:
            self.last_rows = max(1, size[1] - self.header.rows((size[0],)))
