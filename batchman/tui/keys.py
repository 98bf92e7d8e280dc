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


def default_keymap() -> Keymap:
    km = Keymap()
    add = km.add
    LIST = ["tasklist"]
    ONE = ["tasklist", "taskview"]
    # ---- everywhere
    add("?", "help", ["global"], "this help: every key")
    add("q", "quit", ["global"], "quit (offers to start a daemon if work is pending)")
    add("ctrl l", "refresh", ["global"], "re-read the status file now")
    # ---- moving
    add("up", "nav.move -1", LIST, "previous task")
    add("down", "nav.move 1", LIST, "next task")
    add("k", "nav.move -1", LIST, "previous task")
    add("j", "nav.move 1", LIST, "next task")
    add("page up", "nav.page -1", LIST, "one screen up")
    add("page down", "nav.page 1", LIST, "one screen down")
    add("home", "nav.top", LIST, "first task")
    add("end", "nav.bottom", LIST, "last task")
    add("g", "prompt.goto", LIST, "jump to a run number")
    # ---- filter and sort
    add("/", "prompt.filter", LIST, "filter by text (run, job, state, job id, error) or by runs (1000-1010)")
    add("s", "prompt.states", LIST, "filter by state(s): failed,error or a group: active, problem, terminal")
    add("c", "filter.clear", LIST, "clear the filters")
    add("o", "sort.cycle", LIST, "sort by run / state / time in state")
    # ---- selection
    add(" ", "mark.toggle", LIST, "mark or unmark this task (and move down)")
    add("V", "mark.range", LIST, "mark every task from the last marked one to this one")
    add("*", "mark.filtered", LIST, "mark every task the filter shows (again: unmark them)")
    add("u", "mark.clear", LIST, "unmark all")
    # ---- acting (on the marked tasks, or on the one under the cursor)
    add("a", "prompt.add", LIST, "add runs (ranges and lists: 1000-1010,1020 2000)")
    add("x", "task.kill", ONE, "kill: cancel the job or staging; the task ends aborted")
    add("r", "task.restart", ONE, "restart from the beginning (not completed ones: see R)")
    add("R", "task.rerun", ONE, "re-run completed tasks")
    add("h", "task.hold", ONE, "hold / release: a held task starts nothing new (a running job goes on)")
    add("p", "drain.toggle", LIST, "pause / resume: no daemon starts new staging or submissions")
    add("+", "task.priority 1", ONE, "raise the priority by one")
    add("-", "task.priority -1", ONE, "lower the priority by one")
    add("D", "prompt.purge", LIST, "purge tasks: completed, aborted, failed, ... or the marked ones")
    add("U", "task.adopt", LIST, "merge the unknown jobs (found in the batch system, not in the list)")
    add("enter", "task.open", LIST, "open the task: history, segments, job details, log")
    add("P", "params.open", LIST, "edit the parameters (batchman.yaml)")
    # ---- one task
    add("esc", "view.back", ["taskview", "log", "help"], "back")
    add("q", "view.back", ["taskview", "log", "help"], "back")
    add("d", "task.details", ["taskview"], "ask the batch system for the job's details")
    add("l", "log.open out", ["taskview"], "the job's output log, following new lines")
    add("e", "log.open err", ["taskview"], "the job's error log, following new lines")
    add("up", "view.scroll -1", ["taskview", "log", "help"], "scroll up")
    add("down", "view.scroll 1", ["taskview", "log", "help"], "scroll down")
    add("page up", "view.scroll -20", ["taskview", "log", "help"], "scroll one screen up")
    add("page down", "view.scroll 20", ["taskview", "log", "help"], "scroll one screen down")
    add("home", "view.start", ["taskview", "log", "help"], "to the start")
    add("end", "view.end", ["taskview", "log", "help"], "to the end")
    # ---- log
    add("f", "log.follow", ["log"], "follow new lines on / off")
    add("tab", "log.switch", ["log"], "switch between the output and the error log")
    # ---- dialogs
    add("enter", "dialog.ok", ["dialog"], "accept")
    add("esc", "dialog.cancel", ["dialog", "confirm", "purge", "params"], "cancel")
    add("y", "dialog.ok", ["confirm"], "yes")
    add("n", "dialog.no", ["confirm"], "no")
    add("c", "purge.state completed", ["purge"], "purge the completed tasks")
    add("a", "purge.state aborted", ["purge"], "purge the aborted tasks")
    add("f", "purge.state failed", ["purge"], "purge the failed tasks")
    add("i", "purge.state incomplete", ["purge"], "purge the incomplete tasks")
    add("e", "purge.state error", ["purge"], "purge the tasks in error")
    add("m", "purge.selected", ["purge"], "purge the marked tasks (or the one under the cursor)")
    add("ctrl s", "params.save", ["params"], "validate and save")
    add("f2", "params.save", ["params"], "validate and save")
    add("tab", "params.tab 1", ["params"], "next section")
    add("shift tab", "params.tab -1", ["params"], "previous section")
    return km
