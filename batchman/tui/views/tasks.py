"""The main screen: header (counts, daemon, lock, banners), the task list, its column titles."""

from __future__ import annotations


import urwid

from batchman.page import render as export
from batchman.core import states as S
from batchman.core.model import Status
from batchman.tui.tasklist import HEADER_TEXT, SORT_LABEL, TaskWalker
from batchman.tui.views.base import View


class TaskListView(View):
    title = "tasks"
    keyctx = ("tasklist", "global")

    def __init__(self, app) -> None:
        super().__init__(app)
        self.walker = TaskWalker(app.index, app.focus_map, app.clock)
        self.listbox = urwid.ListBox(self.walker)
        self.counts_text = urwid.Text("")
        self.daemon_text = urwid.Text("")
        self.banner_text = urwid.Text("")
        self.info_text = urwid.Text("")
        self._counts_for: Status | None = None
        self.header = header = urwid.Pile([self.counts_text, self.daemon_text, self.banner_text, self.info_text,
                             urwid.AttrMap(urwid.Text(HEADER_TEXT, wrap="clip"), "colhead")])
        self.widget = urwid.Frame(self.listbox, header=header)
        self.last_rows = 20

    # how many rows the list had when last drawn (page up/down moves by that)
    def page_rows(self) -> int:
        return max(1, self.last_rows - 1)

    def on_status(self, status: Status) -> None:
        self.walker.changed()
        self.update_header()

    def tick(self) -> None:
        self.walker.changed()   # time in state moves on
        self.update_header()

    def model_changed(self) -> None:
        self.walker.changed()
        self.update_header()

    def update_header(self) -> None:
        app = self.app
        st = app.index.status
        now = app.clock()
        if self._counts_for is not st:
            c = export.counts(st.tasks)
            markup: list = [("title", f" batchman: {st.experiment or app.params.experiment} "),
                            f" {len(st.tasks)} task(s): "]
            first = True
            for s in S.ALL:
                if c.get(s):
                    if not first:
                        markup.append(", ")
                    markup.append((f"state.{s}", f"{c[s]} {s}"))
                    first = False
            if first:
                markup.append("none yet: press a to add runs")
            self.counts_text.set_text(markup)
            self._counts_for = st
        line, ok = export.daemon_line(st, now, app.params.stale_after)
        d: list = [("ok" if ok else "bad", " " + line)]
        if app.locked_by:
            d += ["   ", ("warn", f"locked by {app.locked_by}")]
        self.daemon_text.set_text(d)
        banners: list = []
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
        joined: list = []
        for b in banners:
            joined += (["\n"] if joined else []) + [b]
        self.banner_text.set_text(joined or "")
        idx = app.index
        f = idx.describe_filter()
        info = f" {len(idx.order)} shown" + (f" (filter: {f})" if f else "") + f", sorted by {SORT_LABEL[idx.sort]}"
        if idx.marks:
            info += f", {len(idx.marks)} marked"
        info += "    ? help  q quit"
        self.info_text.set_text(("info", info))

    def render_hook(self, size) -> None:
        # rows of the list = the view's rows minus its header
        if len(size) == 2:
            self.last_rows = max(1, size[1] - self.header.rows((size[0],)))
