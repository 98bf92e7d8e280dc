"""Small widgets for a screen designed at 80x24 first: a line that never wraps."""

from __future__ import annotations

import urwid


class FitLine(urwid.WidgetWrap):
    """Text shown as the first of its variants (most complete first) that fits the width on
    one line; when none fits, the last is cut with an ellipsis, or wrapped (``overflow="wrap"``,
    for messages too important to lose). Variants are urwid markup."""

    def __init__(self, *variants, overflow: str = "ellipsis") -> None:
        self.overflow = overflow
        self._variants: tuple = ()
        self._widths: tuple[int, ...] = ()
        self._chosen: tuple[int, urwid.Text] | None = None
        super().__init__(urwid.Text(""))
        self.set(*variants)

    def set(self, *variants) -> None:
        variants = variants or ("",)
        if variants == self._variants:
            return
        self._variants = variants
        self._widths = tuple(urwid.Text(v).pack()[0] for v in variants)
        self._chosen = None
        self._invalidate()

    @property
    def text(self) -> str:
        """The most complete variant as plain text (what the line says)."""
        return urwid.Text(self._variants[0]).text

    def _for(self, cols: int) -> urwid.Text:
        if self._chosen is not None and self._chosen[0] == cols:
            return self._chosen[1]
        for v, w in zip(self._variants, self._widths):
            if w <= cols:
                t = urwid.Text(v, wrap="clip")
                break
        else:
            t = urwid.Text(self._variants[-1], wrap="any" if self.overflow == "wrap" else "ellipsis")
        self._chosen = (cols, t)
        return t

    def rows(self, size, focus=False) -> int:
        return self._for(size[0]).rows(size, focus)

    def render(self, size, focus=False):
        return self._for(size[0]).render(size, focus)
