"""The TUI's one app object: owns the model, the view stack and the main loop.

Views and commands get the app passed in; nothing is global. The status file is read
(cheaply: the store stats it and reuses its copy while unchanged) every
``REFRESH`` seconds; the lock is taken only inside ``batchman.actions``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

import urwid

from batchman.page import render as export
from batchman.core import states as S
from batchman.core.decide import Policy, has_work
from batchman.experiment import Experiment
from batchman.params import CONFIG_NAME
from batchman.paths import daemon_log_path
from batchman.store.errors import in_words
from batchman.store.store import StoreError
from batchman.tui import commands, loading
from batchman.tui.keys import Keymap, default_keymap
from batchman.tui.tasklist import TaskIndex
from batchman.tui.views.base import View
from batchman.tui.views.dialogs import Confirm
from batchman.tui.views.tasks import TaskListView
from batchman.tui.widgets import FitLine

REFRESH = 0.5          # seconds between looks at the status file
LOCK_PROBE_EVERY = 2   # ticks between looks at the lock

# The key hints of the message line, most complete first: the first that fits is shown.
HINTS = ("? help   a add   enter open   x kill   r restart   / filter   s states   space mark   q quit",
         "? help  a add  enter open  x kill  r restart  / filter  s states  space mark  q quit",
         "?:help a:add enter:open x:kill r:restart /:filter s:states space:mark q:quit",
         "?:help a:add enter:open x:kill r:restart q:quit")

ROW_ATTRS = ["row", "marked"] + [f"state.{s}" for s in S.ALL]


def palette(colour: bool = True) -> list:
    if not colour:
        return [("focus", "standout", ""), ("bad", "bold", ""), ("title", "standout", ""), ("tab.on", "standout", "")]
    p = [
        ("row", "default", "default"), ("marked", "yellow,bold", "default"),
        ("focus", "black", "light gray"), ("title", "white,bold", "dark blue"),
        ("colhead", "white,underline", "default"), ("info", "dark cyan", "default"),
        ("ok", "dark green", "default"), ("bad", "white,bold", "dark red"), ("warn", "yellow,bold", "default"),
        ("error", "light red,bold", "default"), ("tab", "light gray", "dark gray"), ("tab.on", "white,bold", "dark blue"),
    ]
    p += [(f"state.{s}", c, "default") for s, c in S.COLOURS.items()]
    return p


def spawn_daemon(root: str, log: str) -> str:
    """Start batchman-daemon for ``root`` in the background, detached, its output appended to
    ``log`` (its directory made if missing); returns ``log``."""
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    with open(log, "ab") as out:
        # `-m batchman.daemon` works too; -c keeps the argv the same as the installed script
        subprocess.Popen([sys.executable, "-c", "from batchman.daemon.main import main; main()", "-C", root],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                         start_new_session=True, close_fds=True)
    return log


class Window(urwid.WidgetWrap):
    """The screen: the top view (dialogs over the screen below them) and a message line.

    A key goes first to the keymap for the top view's contexts; what no binding takes
    goes to the widgets (text fields)."""

    def __init__(self, app: "App") -> None:
        self.app = app
        self.footer = FitLine("", overflow="wrap")
        super().__init__(urwid.SolidFill(" "))

    def rebuild(self) -> None:
        stack = self.app.stack
        base = 0
        for i, v in enumerate(stack):
            if not v.overlay:
                base = i
        w = stack[base].widget
        for v in stack[base + 1:]:
            w = urwid.Overlay(urwid.AttrMap(v.widget, "row"), w, "center", v.width, "middle", v.height)
        self._w = urwid.Frame(w, footer=urwid.AttrMap(self.footer, "info"))

    def render(self, size, focus=False):
        for v in self.app.stack:
            hook = getattr(v, "render_hook", None)
            if hook:
                hook((size[0], size[1] - self.footer.rows((size[0],))) if len(size) == 2 else size)
        canvas = super().render(size, focus)
        self.app.index.prepare_search()     # once a screen is drawn
        return canvas

    def keypress(self, size, key):
        return self.app.handle_key(key, size)


class App:
    def __init__(self, exp: Experiment, keymap: Keymap | None = None, clock: Callable[[], float] = time.time,
                 spawn: Callable[[str, str], str] = spawn_daemon) -> None:
        self.exp = exp
        self.params = exp.params
        self.store = exp.store
        self.store.defer_html = True     # keys answer at once; the page follows at the next tick
        self.paths = exp.paths
        self.keymap = keymap or default_keymap()
        self.clock = clock
        self.spawn = spawn
        self.loop: urwid.MainLoop | None = None
        self.index = TaskIndex(lambda: any(d.per_segment for d in self.params.jobs.defs.values()), lambda: tuple(self.params.jobs.names()))
        self.focus_map = {a: "focus" for a in (*ROW_ATTRS, None)}
        self.locked_by = ""
        self.message: tuple[str, bool] = ("", False)
        self.store_error = ""            # the status file cannot be read: the list area says so
        self.exit_code: int | None = None
        self.after_exit: list[str] = []
        self._ticks = 0
        self._bg: list[threading.Thread] = []
        self._done: list[tuple[Callable, object, object]] = []
        self._done_lock = threading.Lock()
        self.reading: loading.Reading | None = None     # a large status file being read in steps
        self.window = Window(self)
        self.tasklist = TaskListView(self)
        self.stack: list[View] = [self.tasklist]
        self.window.rebuild()
        self.say(*HINTS)
        loading.start(self)

    # ---- views ----------------------------------------------------------------------
    def top(self) -> View:
        return self.stack[-1]

    def push(self, view: View) -> None:
        self.stack.append(view)
        self.window.rebuild()

    def pop(self, view: View | None = None) -> None:
        if len(self.stack) <= 1:
            return
        if view is not None and self.stack[-1] is not view:
            if view in self.stack:
                view.on_pop()
                self.stack.remove(view)
                self.window.rebuild()
            return
        self.stack.pop().on_pop()
        self.window.rebuild()

    def say(self, text: str, *shorter: str, error: bool = False) -> None:
        """The message line: ``text``, or the first of the ``shorter`` ones that fits on one
        line (a message that fits nowhere wraps rather than lose its end)."""
        self.message = (text, error)
        attr = "error" if error else "info"
        self.window.footer.set(*((attr, " " + t) for t in (text, *shorter)))

    # ---- keys -----------------------------------------------------------------------
    def handle_key(self, key: str, size=(120, 40)):
        b = self.keymap.get(self.top().keyctx, key)
        if b is not None:
            try:
                loading.before(self, b.command)     # the rest of a first read, if the key needs it
                commands.run(self, b.command)
            except StoreError as e:   # a locked or unreadable file is a message, never a crash
                self.say(str(e), error=True)
            except OSError as e:      # so is a file or a disk that says no (batchman.yaml saved, a log read)
                self.say(in_words(e, self.store.path), error=True)
            return None
        return self.window._w.keypress(size, key)

    def press(self, key: str, size=(120, 40)) -> None:
        """Feed one key as urwid would (tests and the benchmark)."""
        self.window.keypress(size, key)

    def type(self, keys: str, size=(120, 40)) -> None:
        """Feed a key string: plain characters, and names in angle brackets: 'a1000-1002<enter>'."""
        for k in parse_keys(keys):
            self.press(k, size)

    def render(self, size=(120, 40)) -> str:
        return "\n".join(line.decode() for line in self.window.render(size, focus=True).text)

    # ---- the model ------------------------------------------------------------------
    def move_to(self, pos: int) -> None:
        self.index.move_to(pos)
        self.tasklist.walker._modified()

    def list_changed(self) -> None:
        self.tasklist.model_changed()

    def selection(self):
        """The tasks a task command acts on: the open task's view, else the list's marks or cursor."""
        for v in reversed(self.stack):
            chosen = v.selected_tasks()
            if chosen is not None:
                return chosen
            if not v.overlay:
                break
        return self.index.selection()

    def refresh(self, force: bool = False) -> bool:
        """Read the status file (cheap when unchanged); True if it changed."""
        if (self.reading is not None and not self.reading.shown) or (not force and loading.replaced(self)):
            return False        # being read (loading.step): first, or a large file replaced whole
        try:
            st = self.store.read()
        except StoreError as e:
            if str(e) != self.store_error:
                self.store_error = str(e)
                self.say("the status file cannot be read: see above; batchman recover rebuilds it", error=True)
                for v in self.stack:
                    v.on_status(self.index.status)
            return False
        if self.store_error:
            self.store_error = ""
            self.say(*HINTS)
            force = True
        if st is self.index.status and not force:
            return False
        changed = st is not self.index.status
        if changed and not force and loading.later(self, st):     # shown once its orders are made
            return True
        self.index.set_status(st)
        for v in self.stack:
            v.on_status(st)
        return changed

    def daemon_alive(self) -> bool:     # a daemon's heartbeat is fresh, or a oneshot's round (cron's: no daemon wanted)
        st, now, stale = self.index.status, self.clock(), self.params.stale_after
        return export.daemon_line(st, now, stale)[1] or (not st.daemons and export.last_round(st, now, stale) is not None)

    def params_problem(self) -> str:
        """Why the parameters in use are not the file's ("" when they are), for the header: the
        daemon's (the status file's ``params_problem``: it keeps its previous ones) first, then
        this screen's own (``Experiment.params_problem``: read with the last good values) when
        it names another problem."""
        st = self.index.status
        own = self.exp.params_problem.removeprefix(f"{CONFIG_NAME}: ")   # the banner says "the file's"
        if not st.params_problem:
            return own
        since = export.clock(st.params_problem_since or self.clock())
        daemon = f"{st.params_problem} (the daemon keeps its previous ones since {since})"
        return daemon if not own or st.params_problem in own else f"{daemon}; this screen: {own}"

    def params_saved(self, params) -> None:
        self.params = params
        self.exp.params = params
        self.exp.params_problem = ""     # validated and saved: this screen uses the file's own now

    def tick(self) -> None:
        """One refresh: finished background work, the status file, the lock, the views."""
        self._ticks += 1
        with self._done_lock:
            done, self._done = self._done, []
        for fn, result, error in done:
            fn(result, error)
        if self._ticks % LOCK_PROBE_EVERY == 1:
            try:
                self.locked_by = self.store.holder() if self.store.is_locked() else ""
            except OSError:
                self.locked_by = ""
        if not self.refresh():
            for v in self.stack:
                v.tick()
        try:
            self.store.flush_html()
        except (OSError, StoreError) as e:
            self.say(f"status page not written: {e}", error=True)

    def _alarm(self, loop, _data=None) -> None:
        self.tick()
        loop.set_alarm_in(REFRESH, self._alarm)

    # ---- background work (job details, history) ---------------------------------------
    def background(self, work: Callable[[], object], done: Callable[[object, object], None]) -> None:
        """Run ``work`` in a thread; ``done(result, error)`` runs at the next tick, in the UI thread."""
        def target():
            try:
                r, e = work(), None
            except Exception as ex:   # noqa: BLE001 - shown to the person as text
                r, e = None, ex
            with self._done_lock:
                self._done.append((done, r, e))
            if self.loop is not None:
                try:
                    self.loop.set_alarm_in(0, lambda *_: None)   # wake the loop to redraw soon
                except Exception:   # noqa: BLE001
                    pass
        th = threading.Thread(target=target, daemon=True)
        self._bg = [t for t in self._bg if t.is_alive()] + [th]
        th.start()

    def wait_background(self, timeout: float = 10.0) -> None:
        for t in list(self._bg):
            t.join(timeout)
        self.tick()

    # ---- leaving --------------------------------------------------------------------
    def ask_quit(self) -> None:
        st = self.index.status
        if has_work(st.tasks, Policy.from_params(self.params)) and not self.daemon_alive():
            def start():
                log = daemon_log_path(self.params.path("daemon.log_dir"), self.clock())
                try:
                    log = self.spawn(self.exp.root, log)
                except OSError as e:
                    self.say(f"could not start batchman-daemon (its log {log}): {e}", error=True)
                    return
                self.say(f"batchman-daemon started in the background; its output goes to {log}")
                self.after_exit.append(f"batchman-daemon started in the background; its output goes to {log}")
                self.exit(0)
            self.push(Confirm(self, "Work is pending and no live daemon is recorded.\n"
                                    "Start batchman-daemon in the background?\n"
                                    f"(its output: {self.params.path('daemon.log_dir')}/daemon-*.log)\n"
                                    "(y: start it and quit   n: quit without   esc: stay)",
                              start, on_no=lambda: self.exit(0), title="quit"))
            return
        self.exit(0)

    def exit(self, code: int = 0) -> None:
        self.exit_code = code
        if self.loop is not None:
            raise urwid.ExitMainLoop()


KEY_NAMES = {"space": " "}


def parse_keys(keys: str) -> list[str]:
    out = []
    i = 0
    while i < len(keys):
        if keys[i] == "<":
            j = keys.find(">", i)
            if j > i + 1:
                name = keys[i + 1:j]
                out.append(KEY_NAMES.get(name, name))
                i = j + 1
                continue
        out.append(keys[i])
        i += 1
    return out


def _own_flow_control(screen):
    """Ctrl-S and Ctrl-Q are keys while the TUI runs (Ctrl-S saves in the parameter dialog),
    not XOFF/XON, which would freeze the terminal; returns the settings to restore."""
    keys = getattr(screen, "tty_signal_keys", None)
    if keys is None:
        return None
    try:
        return keys(start="undefined", stop="undefined")
    except (OSError, ValueError):      # not a terminal after all
        return None


def run_tui(e: Experiment) -> int:
    """Open the TUI on an experiment; returns the exit code (130 after Ctrl-C)."""
    app = App(e)
    colour = not os.environ.get("NO_COLOR")
    loop = urwid.MainLoop(app.window, palette(colour), handle_mouse=False)
    app.loop = loop

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    flow = _own_flow_control(loop.screen)
    loop.set_alarm_in(REFRESH, app._alarm)
    loop.set_alarm_in(0, loading.alarm(app))
    code = 0
    try:
        loop.run()
        code = app.exit_code or 0
    except KeyboardInterrupt:
        code = 130
    finally:
        if flow is not None:
            loop.screen.tty_signal_keys(*flow)
        for s, h in old.items():
            signal.signal(s, h)
        try:
            app.store.flush_html()
        except (OSError, StoreError):
            pass
    for line in app.after_exit:
        print(line)
    return code
