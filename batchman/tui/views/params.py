"""The parameter dialog: one tab per section of batchman.yaml (the 2002 GUI's tabs),
validated with the same code and messages as the CLI before it is written."""

from __future__ import annotations

import os

import urwid
import yaml

from batchman import params as P
from batchman.tui.views.base import View, handles
from batchman.util.files import atomic_write


def _show(p: P.Param, v) -> str:
    if p.kind in ("list", "mapping"):
        return yaml.safe_dump(v, default_flow_style=True, width=1000).strip()
    if v is None:
        return ""
    return str(v)


def _value(p: P.Param, text: str):
    """Text from a field -> the raw value batchman.yaml would hold (validate() judges it)."""
    if p.kind in ("str", "path"):
        return text
    if text.strip() == "":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _edited(path: str, new: P.Params, start: dict) -> tuple[str, P.Params]:
    """(text, its parameters): the file at ``path`` with the values changed in the dialog (those
    of ``new`` that differ from ``start``) set in place, comments, order and untouched lines
    kept; the file written afresh from ``new`` only if it cannot be round-tripped. Raises
    ParamError if the file, so changed, does not validate (someone else edited it meanwhile)."""
    from batchman.params_edit import update_text
    changes = {k: v for k, v in new.values.items() if v != start.get(k)}
    try:
        with open(path, encoding="utf-8") as f:
            text = update_text(f.read(), changes)
    except (OSError, UnicodeDecodeError):
        text = None
    if text is None:
        return P.render_yaml(new.values, new.jobs_raw), new
    return text, P.validate(yaml.safe_load(text), new.root, path)


class ParamsDialog(View):
    overlay = True
    keyctx = ("params",)
    title = "parameters"
    width = ("relative", 90)
    height = ("relative", 90)

    def __init__(self, app) -> None:
        super().__init__(app)
        self.sections = list(P.SECTIONS)
        self.tab = 0
        self.fields: dict[str, object] = {}
        self.radios: dict[str, list] = {}
        values = app.params.values
        self.start = dict(values)        # what the dialog showed: only what the user changes is written
        for p in P.SCHEMA:
            v = values.get(p.key, p.default)
            if p.kind == "bool":
                self.fields[p.key] = urwid.CheckBox(p.name, bool(v))
            elif p.kind == "choice":
                group: list = []
                for ch in p.choices:
                    urwid.RadioButton(group, ch, state=(ch == v))
                self.radios[p.key] = group
                self.fields[p.key] = urwid.Columns([(22, urwid.Text(p.name)), urwid.GridFlow(group, 16, 1, 0, "left")])
            else:
                self.fields[p.key] = urwid.Edit(f"{p.name:<20} ", _show(p, v))
        self.tabs = urwid.Text("")
        self.error = urwid.Text("")
        self.body = urwid.SimpleFocusListWalker([])
        self.widget = urwid.LineBox(urwid.Frame(urwid.ListBox(self.body), header=self.tabs,
                                                footer=urwid.Pile([self.error, urwid.Text(
                                                    ("info", "tab/shift tab: section   up/down: field   space: toggle   "
                                                              "ctrl s or F2: validate and save   esc: cancel"))])),
                                    title=f"parameters: {os.path.join(app.exp.root, P.CONFIG_NAME)}")
        self.show_tab()

    def show_tab(self) -> None:
        sec = self.sections[self.tab]
        self.tabs.set_text([(("tab.on" if i == self.tab else "tab"), f" {s} ") for i, s in enumerate(self.sections)]
                           + [("info", f"   {P.SECTIONS[sec]}")])
        rows: list = []
        for p in P.SCHEMA:
            if p.section != sec:
                continue
            rows.append(self.fields[p.key])
            rows.append(urwid.Padding(urwid.Text(("info", p.help)), left=4))
        self.body[:] = rows
        if rows:
            self.body.set_focus(0)

    @handles("params.tab")
    def next_tab(self, n: int | str) -> None:
        self.tab = (self.tab + int(n)) % len(self.sections)
        self.show_tab()

    def raw(self) -> dict:
        values = {}
        for p in P.SCHEMA:
            w = self.fields[p.key]
            if p.kind == "bool":
                values[p.key] = w.get_state()
            elif p.kind == "choice":
                values[p.key] = next((b.label for b in self.radios[p.key] if b.get_state()), p.default)
            else:
                values[p.key] = _value(p, w.edit_text)
        return P.to_raw(values)

    @handles("params.save")
    def save(self) -> None:
        path = os.path.join(self.app.exp.root, P.CONFIG_NAME)
        try:
            raw = self.raw()
            if self.app.exp.params.jobs_raw is not None:
                raw["jobs"] = self.app.exp.params.jobs_raw      # the dialog edits parameters, not jobs: keep them
            new = P.validate(raw, self.app.exp.root, path)
            text, new = _edited(path, new, self.start)
        except P.ParamError as e:
            self.error.set_text(("bad", f"not saved: {len(e.problems)} problem(s):\n  " + "\n  ".join(e.problems)))
            return
        try:
            atomic_write(path, text)
        except OSError as e:
            self.error.set_text(("bad", f"not saved: {e}"))
            return
        self.app.params_saved(new)
        self.app.pop(self)
        self.app.say(f"saved {path}; a running daemon takes it at its next iteration")

    @handles("dialog.cancel")
    def cancel(self) -> None:
        self.app.pop(self)
