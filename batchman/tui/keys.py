"""Every key of the TUI, as data: (key, command, contexts, help).

A view names the contexts it answers to (its own, then usually ``global``); a key goes
to the first context that binds it, and the command string (a name and its arguments,
split like a shell line) is run by ``commands``. Keys nobody binds go to the focused
widget (text fields in dialogs). The help screen is generated from this table.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

# Human names of the contexts, in the order the help screen lists them.
CONTEXTS = {
    "global": "Everywhere (outside dialogs)",
    "tasklist": "Task list",
    "taskview": "One task",
    "log": "Log file",
    "help": "Help",
    "dialog": "Dialogs with a text field",
    "confirm": "Yes/no questions",
    "purge": "Purge: which tasks",
    "params": "Parameter dialog",
}


@dataclass(frozen=True)
class Binding:
    key: str
    command: str
    contexts: tuple[str, ...]
    help: str

    @property
    def name(self) -> str:
        return shlex.split(self.command)[0]

    @property
    def args(self) -> list[str]:
        return shlex.split(self.command)[1:]


class Keymap:
    def __init__(self) -> None:
        self.bindings: list[Binding] = []
        self._by_ctx: dict[str, dict[str, Binding]] = {}

    def add(self, key: str, command: str, contexts: list[str] | tuple[str, ...], help: str) -> None:
        for c in contexts:
            if c not in CONTEXTS:
                raise ValueError(f"binding {key!r}: unknown context {c!r}")
        b = Binding(key, command, tuple(contexts), help)
        # a later binding of the same key in the same context replaces the earlier one
        self.bindings = [x for x in self.bindings if not (x.key == key and set(x.contexts) & set(contexts))]
        self.bindings.append(b)
        for c in contexts:
            self._by_ctx.setdefault(c, {})[key] = b

    def get(self, contexts: tuple[str, ...] | list[str], key: str) -> Binding | None:
        for c in contexts:
            b = self._by_ctx.get(c, {}).get(key)
            if b is not None:
                return b
        return None

    def list(self, context: str) -> list[Binding]:
        return [b for b in self.bindings if context in b.contexts]

    def keys_for(self, command: str, context: str | None = None) -> list[str]:
        return [b.key for b in self.bindings if b.command == command and (context is None or context in b.contexts)]


# Every binding: (key, command, contexts, help); later ones replace earlier ones of the same
# key and context. A table, not code: users' overrides and the help screen read it alike.
LIST = ("tasklist",)
ONE = ("tasklist", "taskview")
TEXT = ("taskview", "log", "help")
DEFAULT_BINDINGS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    # ---- everywhere
    ("?", "help", ("global",), "this help: every key"),
    ("q", "quit", ("global",), "quit (offers to start a daemon if work is pending)"),
    ("ctrl l", "refresh", ("global",), "re-read the status file now"),
    # ---- moving
    ("up", "nav.move -1", LIST, "previous task"),
    ("down", "nav.move 1", LIST, "next task"),
    ("k", "nav.move -1", LIST, "previous task"),
    ("j", "nav.move 1", LIST, "next task"),
    ("page up", "nav.page -1", LIST, "one screen up"),
    ("page down", "nav.page 1", LIST, "one screen down"),
    ("home", "nav.top", LIST, "first task"),
    ("end", "nav.bottom", LIST, "last task"),
    ("g", "prompt.goto", LIST, "jump to a run number"),
    # ---- filter and sort
    ("/", "prompt.filter", LIST, "filter by text (run, job, state, job id, error) or by runs (1000-1010)"),
    ("s", "prompt.states", LIST, "filter by state(s): failed,error or a group: active, problem, terminal"),
    ("c", "filter.clear", LIST, "clear the filters"),
    ("o", "sort.cycle", LIST, "sort by run / state / time in state"),
    # ---- selection
    (" ", "mark.toggle", LIST, "mark or unmark this task (and move down)"),
    ("V", "mark.range", LIST, "mark every task from the last marked one to this one"),
    ("*", "mark.filtered", LIST, "mark every task the filter shows (again: unmark them)"),
    ("u", "mark.clear", LIST, "unmark all"),
    # ---- acting (on the marked tasks, or on the one under the cursor)
    ("a", "prompt.add", LIST, "add runs (ranges and lists: 1000-1010,1020 2000)"),
    ("x", "task.kill", ONE, "kill: cancel the job or staging; the task ends aborted"),
    ("r", "task.restart", ONE, "restart from the beginning (not completed ones: see R)"),
    ("R", "task.rerun", ONE, "re-run completed tasks"),
    ("h", "task.hold", ONE, "hold / release: a held task starts nothing new (a running job goes on)"),
    ("p", "drain.toggle", LIST, "pause / resume: no daemon starts new staging or submissions"),
    ("+", "task.priority 1", ONE, "raise the priority by one"),
    ("-", "task.priority -1", ONE, "lower the priority by one"),
    ("D", "prompt.purge", LIST, "purge tasks: completed, aborted, failed, ... or the marked ones"),
    ("U", "task.adopt", LIST, "merge the unknown jobs (found in the batch system, not in the list)"),
    ("enter", "task.open", LIST, "open the task: history, segments, job details, log (a run's segment tasks: show or hide them)"),
    ("P", "params.open", LIST, "edit the parameters (batchman.yaml)"),
    # ---- one task
    ("esc", "view.back", TEXT, "back"),
    ("q", "view.back", TEXT, "back"),
    ("d", "task.details", ("taskview",), "ask the batch system for the job's details"),
    ("l", "log.open out", ("taskview",), "the job's output log, following new lines"),
    ("e", "log.open err", ("taskview",), "the job's error log, following new lines"),
    ("up", "view.scroll -1", TEXT, "scroll up"),
    ("down", "view.scroll 1", TEXT, "scroll down"),
    ("page up", "view.page -1", TEXT, "scroll one screen up"),
    ("page down", "view.page 1", TEXT, "scroll one screen down"),
    ("home", "view.start", TEXT, "to the start"),
    ("end", "view.end", TEXT, "to the end"),
    # ---- log
    ("f", "log.follow", ("log",), "follow new lines on / off"),
    ("tab", "log.switch", ("log",), "switch between the output and the error log"),
    # ---- dialogs
    ("enter", "dialog.ok", ("dialog",), "accept"),
    ("esc", "dialog.cancel", ("dialog", "confirm", "purge", "params"), "cancel"),
    ("y", "dialog.ok", ("confirm",), "yes"),
    ("n", "dialog.no", ("confirm",), "no"),
    ("c", "purge.state completed", ("purge",), "purge the completed tasks"),
    ("a", "purge.state aborted", ("purge",), "purge the aborted tasks"),
    ("f", "purge.state failed", ("purge",), "purge the failed tasks"),
    ("i", "purge.state incomplete", ("purge",), "purge the incomplete tasks"),
    ("e", "purge.state error", ("purge",), "purge the tasks in error"),
    ("m", "purge.selected", ("purge",), "purge the marked tasks (or the one under the cursor)"),
    ("ctrl s", "params.save", ("params",), "validate and save"),
    ("f2", "params.save", ("params",), "validate and save"),
    ("tab", "params.tab 1", ("params",), "next section"),
    ("shift tab", "params.tab -1", ("params",), "previous section"),
)


def default_keymap() -> Keymap:
    km = Keymap()
    for key, command, contexts, help in DEFAULT_BINDINGS:
        km.add(key, command, contexts, help)
    return km
