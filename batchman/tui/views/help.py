"""Help: every key, per context, generated from the keymap."""

from __future__ import annotations

import urwid

from batchman.tui.keys import CONTEXTS
from batchman.tui.tasklist import TAG_SHORT
from batchman.tui.views.base import TextView


class HelpView(TextView):
    title = "help"
    keyctx = ("help", "global")

    def __init__(self, app) -> None:
        super().__init__(app)
        self.head.set(" batchman keys (esc or q: back)")
        self.set_lines(self.keybindings(), keep=False)

    def keybindings(self) -> list:
        L: list = []
        for ctx, title in CONTEXTS.items():
            bs = self.app.keymap.list(ctx)
            if not bs:
                continue
            L.append(("title", f" {title} "))
            for b in bs:
                # the help text wraps under itself, not under the key
                L.append(urwid.Columns([(14, urwid.Text(f"  {_keyname(b.key):>12}")), urwid.Text(b.help)],
                                       dividechars=2))
            L.append("")
        L.append("Actions apply to the marked tasks, or to the task under the cursor when none is marked.")
        L.append("Each is one short locked change of the status file; the daemon carries it out.")
        L.append("")
        L.append("In the state column, a queued request and a hold together are shortened: "
                 + ", ".join(f"{v} = {k}" for k, v in TAG_SHORT.items()) + ".")
        return L


def _keyname(k: str) -> str:
    return {" ": "space"}.get(k, k)
