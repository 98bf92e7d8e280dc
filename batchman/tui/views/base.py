"""The protocol every screen and dialog follows (after mitmproxy's LayoutWidget)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import urwid

from batchman.core.model import Status

if TYPE_CHECKING:   # pragma: no cover
    from batchman.tui.app import App


class View:
    """A screen (``overlay = False``) or a dialog drawn over the screen below it."""
    title = ""
    keyctx: tuple[str, ...] = ("global",)
    overlay = False
    width: int | tuple = ("relative", 70)
    height: int | tuple | str = "pack"

    def __init__(self, app: "App") -> None:
        self.app = app
        self.widget: urwid.Widget = urwid.SolidFill(" ")

    def on_status(self, status: Status) -> None:
        """A new status was read (the file changed)."""

    def tick(self) -> None:
        """Called at every refresh (about twice a second)."""

    def on_pop(self) -> None:
        """The view is about to leave the stack."""


class TextView(View):
    """A scrolling list of text lines (task view, log, help)."""

    def __init__(self, app: "App") -> None:
        super().__init__(app)
        self.lines = urwid.SimpleFocusListWalker([])
        self.listbox = urwid.ListBox(self.lines)
        self.head = urwid.Text("")
        self.widget = urwid.Frame(self.listbox, header=urwid.AttrMap(self.head, "title"))

    def set_lines(self, items: list, keep: bool = True) -> None:
        pos = self.lines.focus if keep and len(self.lines) else 0
        self.lines[:] = [urwid.Text(x, wrap="any") for x in items] or [urwid.Text("")]
        self.lines.set_focus(max(0, min(pos or 0, len(self.lines) - 1)))

    def scroll(self, n: int) -> None:
        if not len(self.lines):
            return
        pos = max(0, min((self.lines.focus or 0) + n, len(self.lines) - 1))
        self.listbox.set_focus(pos, coming_from="above" if n > 0 else "below")

    def to_start(self) -> None:
        if len(self.lines):
            self.listbox.set_focus(0, coming_from="below")

    def to_end(self) -> None:
        if len(self.lines):
            self.listbox.set_focus(len(self.lines) - 1, coming_from="above")
