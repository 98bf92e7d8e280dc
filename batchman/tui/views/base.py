"""The protocol every screen and dialog follows (after mitmproxy's LayoutWidget).

A view names the keymap contexts it answers to (``keyctx``) and the commands it carries out
itself: methods marked ``@handles("view.scroll")``. The keymap finds a key's command for the
top view's contexts; ``commands.run`` gives it to the top view's handler if it has one, else
to the app-wide commands. No command asks which class the top view is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, ClassVar

import urwid

from batchman.core.text import visible
from batchman.core.model import Status
from batchman.tui.widgets import FitLine

if TYPE_CHECKING:   # pragma: no cover
    from batchman.tui.app import App


# Every command some view handles, with one handler (the keymap test checks arguments on it).
VIEW_COMMANDS: dict[str, Callable] = {}


def handles(name: str):
    """Mark a view method as its handler of the keymap command ``name`` (string arguments)."""
    def deco(fn):
        fn.command_name = name
        return fn
    return deco


class View:
    """A screen (``overlay = False``) or a dialog drawn over the screen below it."""
    title = ""
    keyctx: tuple[str, ...] = ("global",)
    handlers: ClassVar[dict[str, str]] = {}    # command name -> method name, built from @handles
    overlay = False
    width: int | tuple = ("relative", 70)
    height: int | tuple | str = "pack"

    def __init__(self, app: "App") -> None:
        self.app = app
        self.widget: urwid.Widget = urwid.SolidFill(" ")

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        found = dict(cls.handlers)          # inherited ones first; a subclass may override
        for attr, fn in vars(cls).items():
            name = getattr(fn, "command_name", None)
            if name:
                found[name] = attr
                VIEW_COMMANDS.setdefault(name, fn)
        cls.handlers = found

    def handler(self, name: str) -> Callable | None:
        """The bound method that carries out command ``name`` here, or None."""
        attr = self.handlers.get(name)
        return getattr(self, attr) if attr else None

    def selected_tasks(self) -> list | None:
        """The tasks a task command acts on when this view is on top (None: ask the list)."""
        return None

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
        self.head = FitLine("")     # one line: set(most complete, shorter, ...)
        self.widget = urwid.Frame(self.listbox, header=urwid.AttrMap(self.head, "title"))

    def set_lines(self, items: list, keep: bool = True) -> None:
        """Show ``items`` (text, or (attribute, text)); control characters a job or batch system
        wrote are shown as escapes (``\\x1b``), never sent to the terminal."""
        pos = self.lines.focus if keep and len(self.lines) else 0
        self.lines[:] = [x if isinstance(x, urwid.Widget) else urwid.Text(_visible(x), wrap="any") for x in items] \
            or [urwid.Text("")]
        self.lines.set_focus(max(0, min(pos or 0, len(self.lines) - 1)))

    # the text area's size when last drawn: scrolling moves by what the person sees
    size: tuple[int, int] = (80, 23)

    def render_hook(self, size) -> None:
        if len(size) == 2:
            head = self.widget.header.rows((size[0],)) if isinstance(self.widget, urwid.Frame) else 0
            self.size = (size[0], max(1, size[1] - head))

    def _scroll_key(self, key: str, times: int = 1) -> None:
        # the list box scrolls lines that cannot take the focus itself, by line or by screen
        for _ in range(times):
            self.listbox.keypress(self.size, key)

    @handles("view.scroll")
    def scroll(self, n: int | str) -> None:
        if len(self.lines):
            self._scroll_key("down" if int(n) > 0 else "up", abs(int(n)))

    @handles("view.page")
    def page(self, n: int | str) -> None:
        if len(self.lines):
            self._scroll_key("page down" if int(n) > 0 else "page up", abs(int(n)))

    @handles("view.start")
    def to_start(self) -> None:
        if len(self.lines):
            self.listbox.set_focus(0, coming_from="below")
            self.listbox.set_focus_valign("top")

    @handles("view.end")
    def to_end(self) -> None:
        if len(self.lines):
            self.listbox.set_focus(len(self.lines) - 1, coming_from="above")
            self.listbox.set_focus_valign("bottom")


def _visible(x):
    """A text line's markup with every string made visible (a list of (attr, str) pieces too)."""
    if isinstance(x, str):
        return visible(x)
    if isinstance(x, tuple):
        return (x[0], _visible(x[1]))
    if isinstance(x, list):
        return [_visible(p) for p in x]
    return x
