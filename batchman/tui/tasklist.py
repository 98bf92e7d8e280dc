"""The task list: a model over the status (filter, sort, cursor, marks) and the
ListWalker that builds a row only for the positions the ListBox asks for.

The model keeps the cursor and the marks by task key, so a new status (a daemon wrote
the file) keeps both; ``rebuild`` runs only when the status, the filter or the sort changed,
and takes its sorted orders from ``ordering.Orders`` (made once per status), so its own work
is one C-level pass per filter. Moving the cursor is O(1).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

import urwid

from batchman.page import render as export
from batchman.core import runspec
from batchman.core import segview as SV
from batchman.core import states as S
from batchman.core.model import Status, Task
from batchman.tui.ordering import CHUNK, SORTS, Orders, find_key, find_run, find_task, resort, split_key

SORT_LABEL = {"run": "run", "state": "state", "time": "time in state"}
GROUPS = {"active": S.ACTIVE, "terminal": S.TERMINAL, "problem": S.PROBLEM, "batch": S.IN_BATCH}


def parse_states(text: str) -> frozenset[str]:
    """'failed,error' or 'problem' -> the states; ValueError names an unknown word."""
    out: set[str] = set()
    for w in text.replace(",", " ").split():
        w = w.lower()
        if w in GROUPS:
            out |= GROUPS[w]
        elif w in S.ALL:
            out.add(w)
        else:
            raise ValueError(f"{w!r} is not a state ({', '.join(S.ALL)}) nor a group ({', '.join(GROUPS)})")
    return frozenset(out)


class TaskIndex:
    """What the list shows: the filtered, sorted tasks, the cursor and the marks."""

    def __init__(self, segmented: Callable[[], bool] = lambda: True,
                 job_order: Callable[[], tuple[str, ...]] = tuple) -> None:
        self.segmented = segmented        # may a task be a segment task (a per: segment job defined)?
        self.job_order = job_order        # batchman.yaml's jobs: a run's tasks in that order, as `batchman list`
        self.status = Status()
        self.orders = Orders(self.status.tasks)
        self.order: list[Task] = []
        self.text = ""                    # text filter
        self.runs: frozenset[int] | None = None   # run filter (from a run spec typed as text)
        self.states: frozenset[str] = frozenset()
        self.sort = "run"
        self.focus = 0
        self.focus_key: str | None = None
        self.marks: set[str] = set()
        self.anchor: str | None = None    # the last task marked, for mark.range
        self.open: set[str] = set()       # per: segment runs (2120.reco) shown with their segment tasks
        self.rebuilds = 0
        self._search = threading.Thread()     # making the search text ahead (prepare_search)

    # ---- building -------------------------------------------------------------------
    def set_status(self, status: Status, orders: Orders | None = None) -> None:
        """A new status; the same one again means only requests were queued in it (see ordering).
        ``orders``: of this status's tasks, made ahead (``Orders.warm``)."""
        if status is self.status:
            self.orders.requests_changed()
        else:
            self.status = status
            self.orders.drop()
            self.orders = orders if orders is not None and orders.tasks is status.tasks \
                else Orders(status.tasks, self.job_order())
            if self.marks:       # the marks of tasks (or segmented runs) that are still there
                self.marks = {k for t in self._among_marks(status.tasks) for k in (t.key, t.run_key) if k in self.marks}
        self.rebuild()

    def prepare_search(self) -> None:
        """Make a long list's search text ahead, in a thread of its own (~0.3 s at 1M tasks), so
        that the first text filter need not wait for all of it; a key waits for one piece at most.
        Called after each screen drawn: the blocks by state wait for a quiet one (Orders.busy)."""
        o = self.orders
        o.busy()
        if len(o.tasks) > CHUNK and o.needs_text() and not o.stepping and not self._search.is_alive():
            self._search = threading.Thread(target=o.prepare, name="batchman-search", daemon=True)
            self._search.start()

    def _among_marks(self, tasks: list[Task]) -> list[Task]:
        """The marked ones of ``tasks`` (a segment task also when its run is marked: a folded
        row), in their order (a key is made only for a marked run)."""
        runs = {split_key(k)[0] for k in self.marks}
        marks = self.marks
        return [t for t in tasks if t.run in runs and (t.key in marks or (t.seg is not None and t.run_key in marks))]

    def rebuild(self) -> None:
        """Filter and sort from the status's cached orders (``ordering.Orders``): at most one
        pass over the tasks the cached ones leave, a sort only of what is left."""
        o, sts = self.orders, self.states
        was = self.order[self.focus] if self.focus < len(self.order) else None
        if self.text:
            tasks = o.matching(self.text.lower())
            if sts:
                tasks = [t for t in tasks if t.state in sts]
        elif sts:
            tasks = o.of_states(sts, self.sort)
        else:
            tasks = o.by(self.sort)
        if self.runs is not None:
            rs = self.runs
            tasks = [t for t in tasks if t.run in rs]
        if self.text or (sts and self.sort == "time"):
            tasks = resort(tasks, self.sort)      # these came in run order
        # a run's segment tasks: one row (no pass over the tasks when no job runs per segment); not
        # when a state or a text picks tasks: a row of some of a run's segment tasks counted only
        # those ('0/1 segments completed, 1 failed') and hid which segment (runs picked: whole)
        self.order = SV.fold(tasks, self.open.__contains__) if self.segmented() and not (sts or self.text) else tasks
        self.rebuilds += 1
        self._restore_focus(was)

    def _restore_focus(self, was=None) -> None:
        """The cursor back on the task it was on (``was``: that row, a hint for the search)."""
        n = len(self.order)
        if not n:
            self.focus = 0
            return
        k = self.focus_key
        if k is not None:
            # fast path: the task is still where it was
            if self.focus < n and self.order[self.focus].key == k:
                return
            hint = was if was is not None and was.key == k and not self.segmented() else None
            i = find_task(self.order, hint, self.sort)      # by bisection (no folded rows)
            i = find_key(self.order, k, self.sort == "run") if i is None else i
            if i is not None:
                self.focus = i
                return
        # the task is gone (purged or filtered out): stay at the same position
        self.focus = max(0, min(self.focus, n - 1))
        self.focus_key = self.order[self.focus].key

    # ---- filter and sort ------------------------------------------------------------
    def set_text_filter(self, text: str) -> None:
        """A run spec (1000-1010,1020) filters runs; anything else is a text search."""
        text = text.strip()
        self.runs = None
        self.text = ""
        if text and all(c.isdigit() or c in " ,-" for c in text) and any(c in ",-" for c in text):
            self.runs = frozenset(runspec.parse(text))   # RunSpecError for the caller
        else:
            self.text = text
        self.rebuild()

    def set_states(self, states: frozenset[str]) -> None:
        self.states = states
        self.rebuild()

    def clear_filters(self) -> None:
        self.text, self.runs, self.states = "", None, frozenset()
        self.rebuild()

    def set_sort(self, sort: str) -> None:
        if sort not in SORTS:
            raise ValueError(f"sort by one of {', '.join(SORTS)}")
        self.sort = sort
        self.rebuild()

    def describe_filter(self) -> str:
        bits = []
        if self.states:
            bits.append("state " + ",".join(s for s in S.ALL if s in self.states))
        if self.runs is not None:
            bits.append("runs " + runspec.brief(list(self.runs)))
        if self.text:
            bits.append(f"text {self.text!r}")
        return "; ".join(bits)

    def toggle_open(self, key: str) -> None:
        """Show or hide the segment tasks of a per: segment run (its folded row's key)."""
        self.open ^= {key}
        self.rebuild()

    # ---- cursor ---------------------------------------------------------------------
    def current(self) -> SV.Row | None:
        """The task under the cursor, or the folded row of a run's segment tasks (SV.Group)."""
        return self.order[self.focus] if self.order else None

    def move_to(self, pos: int) -> None:
        if not self.order:
            return
        self.focus = max(0, min(pos, len(self.order) - 1))
        self.focus_key = self.order[self.focus].key

    def find_run(self, run: int) -> int | None:
        return find_run(self.order, run, run_sorted=self.sort == "run")

    # ---- marks ----------------------------------------------------------------------
    def toggle_mark(self) -> None:
        t = self.current()
        if t is None:
            return
        if t.key in self.marks:
            self.marks.discard(t.key)
        else:
            self.marks.add(t.key)
            self.anchor = t.key

    def mark_range(self) -> int:
        """Mark from the anchor (the last task marked) to the cursor; returns how many."""
        if not self.order:
            return 0
        start = self.focus
        if self.anchor is not None:
            i = find_key(self.order, self.anchor, self.sort == "run")
            start = self.focus if i is None else i
        a, b = sorted((start, self.focus))
        for t in self.order[a:b + 1]:
            self.marks.add(t.key)
        self.anchor = self.order[self.focus].key
        return b - a + 1

    def mark_filtered(self) -> int:
        keys = {t.key for t in self.order}
        if keys and keys <= self.marks:
            self.marks -= keys
            return -len(keys)
        self.marks |= keys
        return len(keys)

    def selection(self) -> list[Task]:
        """The marked tasks (all of them, shown or not), else the one under the cursor."""
        if self.marks:
            return self._among_marks(self.status.tasks)
        t = self.current()
        return [] if t is None else t.tasks if isinstance(t, SV.Group) else [t]


# ---- rows ---------------------------------------------------------------------------
# The state column holds the longest state with the longest request: 'incomplete [restart]'.
STATE_W = max(len(s) for s in S.ALL) + len(" []") + max(len(r) for r in S.REQUESTS)
# A request and a hold together do not fit: the tags are then shortened (the help says so).
TAG_SHORT = {S.KILL: "kil", S.RESTART: "rst", S.PURGE: "prg", S.SKIP: "skp", "held": "hld"}
NARROW = 100    # below this width: no segment count column (the detail says it while staging)


def state_label(t: Task | SV.Group) -> str:
    """The state with its tags, within STATE_W: 'running [kill]', 'incomplete [rst,hld]'; a run's
    folded segment tasks with those all of them have ('unstaged [held]')."""
    if isinstance(t, SV.Group):
        label, state, flags = t.label(), t.state, t.every()
    else:
        label, state, flags = export.state_label(t), t.state, SV.task_flags(t)
    if len(label) <= STATE_W:
        return label
    return f"{state} [{','.join(TAG_SHORT.get(f, f[:3]) for f in flags)}]"[:STATE_W]


def _job(job: str, w: int) -> str:
    return job if len(job) <= w else job[:w - 1] + "…"


def row_text(t: Task, now: float, marked: bool, narrow: bool = False) -> list:
    """The markup of one row: mark, run, job, segments (wide only), state, time in state, tries,
    detail, counters. Designed for 80 columns: the detail keeps 30 of them."""
    dur = export.duration(now - t.since) if t.since else ""
    if narrow:
        head = f"{'*' if marked else ' '}{t.run:>6} {_job(SV.job_label(t), 8):<8} "
        tail = f" {dur:>6} {t.attempt:>3}  {export.detail(t)}"
    else:
        head = f"{'*' if marked else ' '}{t.run:>7} {_job(SV.job_label(t), 10):<10} {len(t.segments) or '-':>3} "
        tail = f" {dur:>8} {t.attempt:>3}  {export.detail(t)}"
    c = export.counters_text(t)
    if c:
        tail += f"  [{c}]"
    return [("marked" if marked else "row", head), (f"state.{t.state}", f"{state_label(t):<{STATE_W}}"), ("row", tail)]


def group_text(g: SV.Group, marked: bool, narrow: bool = False) -> list:
    """The folded row of a run's segment tasks: 'reco[*]', how many, the state that most needs a
    person, and '37/120 segments completed, 2 failed' (enter shows them)."""
    if narrow:
        head = f"{'*' if marked else ' '}{g.run:>6} {_job(g.job + '[*]', 8):<8} "
    else:
        head = f"{'*' if marked else ' '}{g.run:>7} {_job(g.job + '[*]', 10):<10} {len(g.tasks):>3} "
    return [("marked" if marked else "row", head), (f"state.{g.state}", f"{state_label(g):<{STATE_W}}"),
            ("row", f" {'':>{6 if narrow else 8}} {'':>3}  {g.summary()}")]


def header_text(narrow: bool = False) -> str:
    """The column titles, lined up with ``row_text``."""
    if narrow:
        return f"  {'run':>6} {'job':<8} {'state':<{STATE_W}} {'in st.':>6} {'try':>3}  detail  [counters]"
    return f"  {'run':>7} {'job':<10} {'seg':>3} {'state':<{STATE_W}} {'in state':>8} {'try':>3}  detail  [counters]"


class ColumnTitles(urwid.WidgetWrap):
    """The column titles for the width they are drawn at."""

    def __init__(self) -> None:
        self._texts = {n: urwid.Text(header_text(n), wrap="clip") for n in (False, True)}
        super().__init__(self._texts[False])

    def rows(self, size, focus=False) -> int:
        return 1

    def render(self, size, focus=False):
        return self._texts[size[0] < NARROW].render(size, focus)


class Row(urwid.WidgetWrap):
    """One task's line; the focused one starts with '>' (visible without colours too).
    Its markup is made for the width it is drawn at (narrow or wide), once."""

    def __init__(self, t: Task, now: float, marked: bool, focus_map: dict) -> None:
        self.t, self.now, self.marked = t, now, marked
        self.focus_map = focus_map
        self._texts: dict[tuple[bool, bool], urwid.Widget] = {}
        super().__init__(urwid.Text(""))

    def selectable(self) -> bool:
        return True

    def rows(self, size, focus=False) -> int:
        return 1

    def render(self, size, focus=False):
        k = (size[0] < NARROW, bool(focus))
        w = self._texts.get(k)
        if w is None:
            markup = (group_text(self.t, self.marked, k[0]) if isinstance(self.t, SV.Group)
                      else row_text(self.t, self.now, self.marked, k[0]))
            w = urwid.Text([("row", ">" if focus else " ")] + markup, wrap="clip")
            if focus:
                w = urwid.AttrMap(w, None, self.focus_map)
            self._texts[k] = w
        return w.render(size, focus)

    def keypress(self, size, key):
        return key


class TaskWalker(urwid.ListWalker):
    """Rows over a TaskIndex, built on demand; positions are indices into ``index.order``."""

    CACHE = 256

    def __init__(self, index: TaskIndex, focus_map: dict, clock: Callable[[], float] = time.time) -> None:
        self.index = index
        self.focus_map = focus_map
        self.clock = clock
        self._cache: OrderedDict[int, Row] = OrderedDict()
        self._now = clock()
        self.built = 0

    # the model changed (new status, filter, sort, marks) or time passed
    def changed(self) -> None:
        self._cache.clear()
        self._now = self.clock()
        self._modified()

    def _get(self, pos: int) -> Row | None:
        order = self.index.order
        if pos < 0 or pos >= len(order):
            return None
        w = self._cache.get(pos)
        if w is None:
            t = order[pos]
            w = Row(t, self._now, t.key in self.index.marks, self.focus_map)
            self.built += 1
            self._cache[pos] = w
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        return w

    def get_focus(self):
        if not self.index.order:
            return None, None
        return self._get(self.index.focus), self.index.focus

    def set_focus(self, position) -> None:
        self.index.move_to(position)
        self._modified()

    def get_next(self, position):
        w = self._get(position + 1)
        return (w, position + 1) if w is not None else (None, None)

    def get_prev(self, position):
        w = self._get(position - 1)
        return (w, position - 1) if w is not None else (None, None)

    def positions(self, reverse: bool = False):
        n = len(self.index.order)
        return range(n - 1, -1, -1) if reverse else range(n)
