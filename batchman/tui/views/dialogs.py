"""Small dialogs drawn over the screen: a text prompt, the add dialog, yes/no, the purge menu."""

from __future__ import annotations

from typing import Callable

import urwid

from batchman.tui.views.base import View, handles

# on_ok returns None when done (the dialog closes) or a message to show (it stays open)
OnOk = Callable[[str], "str | None"]


class Dialog(View):
    overlay = True
    keyctx = ("dialog",)

    @handles("dialog.ok")
    def ok(self) -> None:
        self.app.pop()

    @handles("dialog.cancel")
    def cancel(self) -> None:
        self.app.pop()

    @handles("dialog.no")
    def no(self) -> None:
        self.cancel()


class Prompt(Dialog):
    def __init__(self, app, title: str, label: str, on_ok: OnOk, initial: str = "", hint: str = "") -> None:
        super().__init__(app)
        self.title = title
        self.on_ok = on_ok
        self.edit = urwid.Edit(("info", label), initial)
        self.error = urwid.Text("")
        rows = [self.edit]
        if hint:
            rows.append(urwid.Text(("info", hint)))
        rows += [self.error, urwid.Text(("info", "enter: ok   esc: cancel"))]
        self.widget = urwid.LineBox(urwid.Pile(rows), title=title)

    def ok(self) -> None:
        problem = self.on_ok(self.edit.edit_text)
        if problem:
            self.error.set_text(("bad", problem))
        else:
            self.app.pop(self)


class AddDialog(Dialog):
    """Runs (the CLI's run specs), job definition, priority."""
    title = "add runs"

    def __init__(self, app, on_ok: Callable[[str, str, str], "str | None"]) -> None:
        super().__init__(app)
        self.on_ok = on_ok
        self.runs = urwid.Edit(("info", "runs:     "), "")
        self.job = urwid.Edit(("info", "job:      "), "analysis")
        self.priority = urwid.Edit(("info", "priority: "), "0")
        self.error = urwid.Text("")
        self.widget = urwid.LineBox(urwid.Pile([
            self.runs, self.job, self.priority,
            urwid.Text(("info", "runs: 1000  1000-1010  1000,1020 2000 (up/down: next field)")),
            self.error, urwid.Text(("info", "enter: add   esc: cancel"))]), title=self.title)

    def ok(self) -> None:
        problem = self.on_ok(self.runs.edit_text, self.job.edit_text, self.priority.edit_text)
        if problem:
            self.error.set_text(("bad", problem))
        else:
            self.app.pop(self)


class Confirm(Dialog):
    keyctx = ("confirm",)

    def __init__(self, app, question: str, on_yes: Callable[[], None], on_no: Callable[[], None] | None = None,
                 title: str = "confirm") -> None:
        super().__init__(app)
        self.title = title
        self.on_yes = on_yes
        self.on_no = on_no
        self.widget = urwid.LineBox(urwid.Pile([urwid.Text(question), urwid.Text(""),
                                                urwid.Text(("info", "y: yes   n: no   esc: cancel"))]), title=title)

    def ok(self) -> None:
        self.app.pop(self)
        self.on_yes()

    def no(self) -> None:
        self.app.pop(self)
        if self.on_no:
            self.on_no()


class PurgeMenu(Dialog):
    keyctx = ("purge",)
    title = "purge"

    def __init__(self, app) -> None:
        super().__init__(app)
        c = {}
        for t in app.index.status.tasks:
            c[t.state] = c.get(t.state, 0) + 1
        sel = len(app.selection())
        rows = [urwid.Text("Remove tasks from the list (their files are released; live ones are killed first):"), urwid.Text("")]
        for b in app.keymap.list("purge"):
            if b.name == "purge.state":
                n = c.get(b.args[0], 0)
                rows.append(urwid.Text(f"  {b.key}  {b.args[0]:<11} {n:>7} task(s)"))
            elif b.name == "purge.selected":
                rows.append(urwid.Text(f"  {b.key}  {'marked' if app.index.marks else 'this task':<11} {sel:>7} task(s)"))
        rows += [urwid.Text(""), urwid.Text(("info", "esc: cancel"))]
        self.widget = urwid.LineBox(urwid.Pile(rows), title=self.title)

