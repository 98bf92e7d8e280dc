"""The `batchman` click group: where domain errors become a one-line message, in one place.
Nothing below it prints or prompts except through the command modules of this package.

Exit codes: 0 done, 1 refused or failed (the message names what and why), 2 bad usage.
"""

from __future__ import annotations

import os
import sys
import time

import click

from batchman.cli.options import SafePath
from batchman.core import states as S
from batchman.experiment import Experiment, open_experiment
from batchman.page import render as export
from batchman.said import plain_errors
from batchman.store.errors import StoreError, cannot_write, disk_full
from batchman.store import partial
from batchman.util import procs, progress


def _set_dir(ctx: click.Context, _param, value):
    if value is not None:
        ctx.ensure_object(dict)["dir"] = value
    return value


class BatchmanCommand(click.Command):
    """A subcommand: takes ``-C DIR`` after its name too, and lists in ``batchman --help``
    with its whole first sentence (its ``short_help``), never cut with '...'."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        if self.name not in NO_EXPERIMENT:
            self.params.append(click.Option(["-C", "directory"], type=SafePath(file_okay=False), expose_value=False,
                                            is_eager=True, callback=_set_dir,
                                            help="Experiment directory (as in batchman -C DIR)."))

    def get_short_help_str(self, limit: int = 45) -> str:
        if self.short_help:
            return self.short_help
        text = " ".join((self.help or "").split("\n\n")[0].split())    # the first paragraph
        end = text.find(". ")
        return text if end < 0 else text[:end + 1]                     # its first sentence


NO_EXPERIMENT = ("demo", "report")      # commands that do not open an experiment directory


class BatchmanGroup(click.Group):
    """Turns our errors into a message and exit code 1; ``--debug`` shows the traceback. The
    page of a command's last write is written once the command is done (exp())."""
    command_class = BatchmanCommand

    def invoke(self, ctx):
        def opened() -> Experiment | None:         # (the command's experiment, once exp() opened it)
            return (ctx.obj or {}).get("exp")
        with plain_errors(lambda: bool((ctx.obj or {}).get("debug")), lambda: opened() and opened().store.path):
            try:
                return super().invoke(ctx)
            finally:
                publish_page(opened())


def publish_page(e: Experiment | None) -> None:
    """The status page of the command's last write, if any. The write itself is done: a page
    that cannot be written (a full disk) is a warning, never the command's failure (a person
    told 'Error' would take the change for not made)."""
    if e is None:
        return
    try:
        e.store.flush_html()
    except (OSError, StoreError) as err:
        why = cannot_write(err, e.store.path) if disk_full(err) else str(err)
        click.echo(f"warning: the status page was not written ({why}); the change itself was", err=True)


def leave_now() -> None:
    """A reading command has written all it had: end the process at once, exit code 0, rather
    than free every task one by one (util.procs.leave_now; under CliRunner this returns). Safe
    for commands that hold no lock, start no thread and leave no file half written."""
    try:
        procs.leave_now()
    except BrokenPipeError:
        procs.reader_gone()


def colour(text: str, state: str | None = None, **kw) -> str:
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return text
    fg = {S.COMPLETED: "green", S.FAILED: "red", S.ERROR: "red", S.INCOMPLETE: "yellow",
          S.RUNNING: "blue", S.QUEUED: "cyan", S.ABORTED: "magenta"}.get(state or "", None)
    return click.style(text, fg=fg, **kw) if fg or kw else text


STARTS_WORK = ("add", "run", "watch", "check")   # refuse a batchman.yaml that does not validate


def exp(ctx: click.Context) -> Experiment:
    """The experiment of this command. Commands that start work (and check) refuse a broken
    batchman.yaml; the others (reading, requests, the TUI) use the last good parameters after a
    one-line warning on stderr, so a typo never stops an operator from listing or killing."""
    if "exp" not in ctx.obj:
        strict = ctx.command.name in STARTS_WORK
        e = ctx.obj["exp"] = open_experiment(ctx.obj.get("dir"), strict=strict)
        if e.params_problem:
            click.echo(f"warning: {e.params_problem}", err=True)
        if ctx.parent is not None:      # (a command; the TUI shows its own, and writes its page itself)
            e.store.progress = progress.on_terminal(e.store.path)
            e.store.defer_html = True   # (publish_page, once the command is done)
    return ctx.obj["exp"]


def daemon_alive(e: Experiment) -> bool:
    st = partial.read(e.store, partial.HEAD) or e.store.read()     # (its own fields: store/partial.py)
    _, ok = export.daemon_line(st, time.time(), e.params.stale_after)
    return ok


@click.group(cls=BatchmanGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=SafePath(file_okay=False), help="Experiment directory (default: here or the nearest parent with batchman.yaml).")
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of short messages.")
@click.version_option(package_name="batchman", message="batchman %(version)s")
@click.pass_context
def main(ctx, directory, debug):
    """batchman: stage, submit, follow and check the batch analysis of every run.

    \b
    Start here:
      batchman demo                 see 20 runs go through, on this machine
      batchman init                 write a commented batchman.yaml here
      batchman add 1000-1010 1020   add runs
      batchman-daemon &             let the daemon do the work
      batchman                      watch and steer (terminal UI)
    """
    ctx.ensure_object(dict)
    ctx.obj["dir"] = directory
    ctx.obj["debug"] = debug
    if ctx.invoked_subcommand is None:
        try:
            from batchman.tui.app import run_tui
        except ImportError:
            click.echo(ctx.get_help())
            return
        e = exp(ctx)
        sys.exit(run_tui(e))
