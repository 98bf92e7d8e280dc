"""Named commands the keymap runs. The only TUI code that changes the status file, and
only through ``batchman.actions`` (one short locked transaction per action).

A command is either the top view's own (a method marked ``@handles(name)``: scrolling,
dialog buttons, the log and parameter dialog keys) or app-wide, here: ``fn(app, *args)``
with string arguments, registered by name. ``run`` asks the top view first.
"""

from __future__ import annotations

import inspect
import shlex
from typing import TYPE_CHECKING, Callable

from batchman import actions as A
from batchman.core import runspec
from batchman.core import states as S
from batchman.core.model import JOB_NAME_RE, Task
from batchman.core.segview import Group
from batchman.core.runspec import RunSpecError
from batchman.store.store import StoreError
from batchman.tui.tasklist import SORTS, parse_states
from batchman.tui.views.base import VIEW_COMMANDS
from batchman.tui.views.dialogs import AddDialog, Confirm, Prompt, PurgeMenu
from batchman.tui.views.help import HelpView
from batchman.tui.views.params import ParamsDialog
from batchman.tui.views.task import TaskView

if TYPE_CHECKING:   # pragma: no cover
    from batchman.tui.app import App

COMMANDS: dict[str, Callable] = {}


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn
    return deco


class CommandError(Exception):
    pass


def run(app: "App", line: str) -> None:
    """Run a command line: the top view's handler if it has one, else the app-wide command.
    A view command the top view does not handle does nothing (its key means nothing there)."""
    name, *args = shlex.split(line)
    handler = app.top().handler(name)
    if handler is not None:
        handler(*args)
        return
    fn = COMMANDS.get(name)
    if fn is None:
        if name in VIEW_COMMANDS:
            return
        raise CommandError(f"no command {name!r}")
    fn(app, *args)


def check(line: str) -> str | None:
    """None if the command exists and takes these arguments (for the keymap test)."""
    words = shlex.split(line)
    fn = COMMANDS.get(words[0]) or VIEW_COMMANDS.get(words[0])
    if fn is None:
        return f"no command {words[0]!r}"
    try:
        inspect.signature(fn).bind(None, *words[1:])
    except TypeError as e:
        return f"{line!r}: {e}"
    return None


# ---- general ------------------------------------------------------------------------
@command("help")
def _help(app):
    app.push(HelpView(app))


@command("quit")
def _quit(app):
    app.ask_quit()


@command("refresh")
def _refresh(app):
    app.refresh(force=True)
    app.say("status file re-read")


@command("view.back")
def _back(app):
    app.pop()


# ---- moving -------------------------------------------------------------------------
@command("nav.move")
def _move(app, n):
    app.move_to(app.index.focus + int(n))


@command("nav.page")
def _page(app, n):
    app.move_to(app.index.focus + int(n) * app.tasklist.page_rows())


@command("nav.top")
def _top(app):
    app.move_to(0)


@command("nav.bottom")
def _bottom(app):
    app.move_to(len(app.index.order) - 1)


@command("prompt.goto")
def _goto(app):
    def ok(text):
        try:
            run = int(text.strip())
        except ValueError:
            return f"{text.strip()!r} is not a run number"
        pos = app.index.find_run(run)
        if pos is None:
            inlist = any(t.run == run for t in app.index.status.tasks)
            return f"run {run} is " + ("hidden by the filter (c clears it)" if inlist else "not in the list")
        app.move_to(pos)
        return None
    app.push(Prompt(app, "jump to run", "run: ", ok))


# ---- filter and sort ----------------------------------------------------------------
@command("prompt.filter")
def _filter(app):
    def ok(text):
        try:
            app.index.set_text_filter(text)
        except RunSpecError as e:
            return str(e)
        app.list_changed()
        return None
    idx = app.index
    initial = idx.text or (runspec.compress(list(idx.runs)) if idx.runs is not None else "")
    app.push(Prompt(app, "filter", "show tasks matching: ", ok, initial,
                    hint="text in run, job, state, job id, error; or runs: 1000-1010,1020; empty: all"))


@command("prompt.states")
def _states(app):
    def ok(text):
        try:
            sts = parse_states(text)
        except ValueError as e:
            return str(e)
        app.index.set_states(sts)
        app.list_changed()
        return None
    initial = ",".join(s for s in S.ALL if s in app.index.states)
    app.push(Prompt(app, "filter by state", "states: ", ok, initial,
                    hint="e.g. failed,error  or a group: active, problem, terminal, batch; empty: all"))


@command("filter.clear")
def _clear(app):
    app.index.clear_filters()
    app.list_changed()
    app.say("filters cleared")


@command("sort.cycle")
def _sort_cycle(app):
    i = SORTS.index(app.index.sort)
    _sort(app, SORTS[(i + 1) % len(SORTS)])


@command("sort")
def _sort(app, by):
    app.index.set_sort(by)
    app.list_changed()


# ---- marks --------------------------------------------------------------------------
@command("mark.toggle")
def _mark(app):
    app.index.toggle_mark()
    app.move_to(app.index.focus + 1)
    app.list_changed()


@command("mark.range")
def _mark_range(app):
    n = app.index.mark_range()
    app.list_changed()
    app.say(f"marked {n} task(s); {len(app.index.marks)} marked in all")


@command("mark.filtered")
def _mark_filtered(app):
    n = app.index.mark_filtered()
    app.list_changed()
    app.say(f"marked {n} shown task(s)" if n >= 0 else f"unmarked {-n} shown task(s)")


@command("mark.clear")
def _unmark(app):
    app.index.marks.clear()
    app.list_changed()


# ---- acting -------------------------------------------------------------------------
def _request(app: "App", what: str, tasks: list[Task], only: Callable[[Task], bool] | None = None,
             nothing: str = "") -> None:
    """Queue a request on ``tasks`` (those where it applies: ``states.request_applies``, and
    ``only`` says yes); ask first when several."""
    chosen = [t for t in tasks if S.request_applies(what, t.state) and (only is None or only(t))]
    if not chosen:
        why = S.REQUEST_REFUSAL.get(what, "")
        app.say(nothing or f"nothing to {what}" + (f": {why}" if why else ""), error=True)
        return

    def go():
        try:
            n = A.queue_request(app.store, {t.key for t in chosen}, what, who=f"batchman tui {what}")
        except StoreError as e:
            app.say(str(e), error=True)
            return
        app.refresh(force=True)
        runs = runspec.brief([t.run for t in chosen])
        alive = app.daemon_alive()
        app.say(f"{what} queued for {n} task(s) ({runs}); the daemon carries it out at its next iteration"
                + ("" if alive else "; no live daemon is recorded (q offers to start one)"),
                f"{what} queued for {n} task(s) ({runs}); the daemon does it next"
                + ("" if alive else "; no live daemon (q offers one)"))
    if len(chosen) > 1:
        skipped = len(tasks) - len(chosen)
        app.push(Confirm(app, f"{what} {len(chosen)} tasks ({runspec.brief([t.run for t in chosen])})?"
                         + (f"\n({skipped} marked task(s) are not in a state to {what})" if skipped else ""),
                         go, title=what))
    else:
        go()


@command("task.kill")
def _kill(app):
    _request(app, "kill", app.selection())


@command("task.restart")
def _restart(app):
    _request(app, "restart", app.selection(), lambda t: t.state != S.COMPLETED,
             "nothing to restart here: completed tasks are re-run with R")


@command("task.rerun")
def _rerun(app):
    _request(app, "restart", app.selection(), lambda t: t.state == S.COMPLETED,
             "nothing to re-run: only completed tasks are re-run")


@command("task.priority")
def _priority(app, delta):
    tasks = app.selection()
    if not tasks:
        return
    by_new: dict[int, set[str]] = {}
    for t in tasks:
        by_new.setdefault(t.priority + int(delta), set()).add(t.key)
    try:
        for p, keys in by_new.items():
            A.set_priority(app.store, keys, p, who="batchman tui priority")
    except StoreError as e:
        app.say(str(e), error=True)
        return
    app.refresh(force=True)
    app.say(f"priority of {len(tasks)} task(s) " + ", ".join(f"-> {p}" for p in sorted(by_new)))


@command("task.hold")
def _hold(app):
    """Hold the selection, or release it if every selected task is held already."""
    tasks = app.selection()
    if not tasks:
        return
    hold = not all(t.held for t in tasks)
    already = sum(1 for t in tasks if t.held)          # (before the hold sets the flag in them)
    try:
        n = A.hold(app.store, {t.key for t in tasks}, hold, who="batchman tui " + ("hold" if hold else "release"))
    except StoreError as e:
        app.say(str(e), error=True)
        return
    app.refresh(force=True)
    app.say(f"{'held' if hold else 'released'} {max(0, n - already) if hold else n} task(s) "
            f"({runspec.brief([t.run for t in tasks])})" + (f", {already} held already" if hold and already else ""))


@command("drain.toggle")
def _drain(app):
    paused = not app.index.status.paused
    try:
        A.set_paused(app.store, paused, who="batchman tui " + ("pause" if paused else "resume"))
    except StoreError as e:
        app.say(str(e), error=True)
        return
    app.refresh(force=True)
    app.say("paused: no daemon starts new staging or submissions (p resumes)" if paused
            else "resumed: daemons start new work again")


@command("prompt.purge")
def _purge_menu(app):
    app.push(PurgeMenu(app))


@command("purge.state")
def _purge_state(app, state):
    app.pop()
    _request(app, "purge", [t for t in app.index.status.tasks if t.state == state], nothing=f"no task is {state}")


@command("purge.selected")
def _purge_selected(app):
    app.pop()
    _request(app, "purge", app.selection(), nothing="nothing to purge")


@command("task.adopt")
def _adopt(app):
    unknown = list(app.index.status.unknown)
    if not unknown:
        app.say("no unknown jobs to merge")
        return

    def go():
        try:
            res = A.adopt(app.store, [u.name for u in unknown])
        except (StoreError, ValueError) as e:
            app.say(str(e), error=True)
            return
        app.refresh(force=True)
        n = res if isinstance(res, int) else len(res.adopted)      # (a test's stand-in returns a count)
        refused = [] if isinstance(res, int) else res.refused
        app.say(f"merged {n} unknown job(s) into the list"
                + (f"; not merged: {refused[0]}" + (f" (+{len(refused) - 1} more)" if len(refused) > 1 else "")
                   if refused else ""), error=bool(refused) and not n)
    app.push(Confirm(app, f"merge {len(unknown)} unknown job(s) into the list: "
                     + ", ".join(u.name for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "") + "?", go,
                     title="merge unknown jobs"))


@command("prompt.add")
def _add(app):
    def ok(runs_text, job, prio):
        try:
            runs = runspec.parse(runs_text)
        except RunSpecError as e:
            return str(e)
        if not runs:
            return "name the runs to add (e.g. 1000-1010 1020)"
        job = job.strip() or A.DEFAULT_JOB
        if not JOB_NAME_RE.match(job):
            return f"{job!r}: a job name is a letter then letters, digits, _ or -"
        try:
            priority = int(prio.strip() or "0")
        except ValueError:
            return f"priority {prio!r} is not a whole number"
        try:
            res = A.add_runs(app.store, runs, (job,), priority, app.params.experiment, who="batchman tui add")
        except StoreError as e:
            return str(e)
        app.refresh(force=True)
        msg = f"added {len(res.added)} task(s)" + (f": {runspec.brief(res.added)}" if res.added else "")
        if res.skipped:
            msg += f"; skipped {len(res.skipped)} already in the list: " + ", ".join(res.skipped[:5]) + (" ..." if len(res.skipped) > 5 else "")
        if res.added and not app.daemon_alive():
            msg += "; no live daemon is recorded (q offers to start one)"
        app.say(msg)
        return None
    app.push(AddDialog(app, ok))


@command("task.open")
def _open(app):
    t = app.index.current()
    if t is None:
        app.say("no task here", error=True)
        return
    if isinstance(t, Group):      # a per: segment run: show or hide its segment tasks
        app.index.toggle_open(t.key)
        app.list_changed()
        return
    app.push(TaskView(app, t))


# ---- parameters ---------------------------------------------------------------------
@command("params.open")
def _params(app):
    app.push(ParamsDialog(app))
