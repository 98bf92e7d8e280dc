"""The tasks written since the page last looked, handed to a page that takes them (page.live).

The page keeps totals per position of the task list and moves only the tasks that changed;
without help it finds them by a pass over every task (~60 ms at 1,000,000 tasks, ~250 ms for
a list read again). The store knows them: every write collects the tasks it changed in place
or appended (changes.collect). This keeps them, for the list of tasks this process follows,
from when that list was read (as generation ``origin``) or from the last page on; a list
read again or replaced starts afresh. A status file read whole is followed from its own
generation, before the change log's records are applied: the tasks they replace are touched
too, so a page tally saved for that generation (a new process's first page after another
writer's change) moves those alone instead of comparing every task (~0.2 s at 1,000,000). No I/O.
"""

from __future__ import annotations

MAX = 200_000       # tasks written between two pages kept, at most (more: the page compares)


class Touched:
    def __init__(self, store=None) -> None:
        self.store = store                  # whose page may take them (store.Store: its html_path, render_html)
        self.tasks: list | None = None      # None: not kept (no page takes them, or too many)
        self.list: list | None = None       # the task list they are in
        self.origin = 0                     # the generation that list was read as
        self.base: list | None = None       # the list the tasks are of (the page's last; ``list`` made of it by replays)

    def follow(self, status) -> None:
        """``status`` is this process's copy now (read or written)."""
        if status.tasks is not self.list:       # read again, or replaced by a write
            self.list, self.origin, self.tasks = status.tasks, status.generation, [] if self._wanted() else None
            self.base = self.list

    def _wanted(self) -> bool:
        s = self.store
        return s is not None and bool(s.html_path) and getattr(s.render_html, "takes_touched", False)

    def replaced(self, before: list, after: list, swapped: list, gone: bool) -> None:
        """A record of the change log made list ``after`` of ``before`` (store/replays.py): when
        that is the list kept and no task left, the new versions (same places) and the tasks
        appended are touched, and ``after`` is the list kept."""
        if before is self.list and not gone and self.tasks is not None:
            self.list = after
            self.add([new for _, new in swapped] + after[len(before):])

    def add(self, put: list) -> None:
        """A write changed or appended these."""
        if self.tasks is not None:
            self.tasks += put
            if len(self.tasks) > MAX:
                self.tasks = None

    def hand_over(self, status) -> dict:
        """The page's keywords for a page of ``status`` (none if it is not of the list kept),
        starting afresh: the page is in step with the tasks after it."""
        if self.tasks is None or status.tasks is not self.list:
            return {}
        out = {"touched": self.tasks, "origin": self.origin}
        if self.base is not self.list:
            out["base"] = self.base
        self.tasks, self.base = [], self.list
        return out
