"""`batchman-daemon`: the process that does the work."""

from __future__ import annotations

import gc
import signal
import socket
import sys
import time

import click

from batchman.daemon import hangup, stall
from batchman.paths import daemon_log_path
from batchman.said import plain_errors
from batchman.store.errors import in_words
from batchman.store.store import StatusLost, StoreError
from batchman.util import procs, progress

MODES = ("loop", "oneshot", "quietone", "verbose")
ONE = ("oneshot", "quietone")     # one iteration, then the process ends


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("mode", required=False, default="loop", type=click.Choice(MODES))
@click.option("-C", "directory", type=click.Path(file_okay=False), help="Experiment directory (default: here or the nearest parent with batchman.yaml).")
@click.option("--forever", is_flag=True, help="Keep running when nothing is left to track (new runs are picked up).")
@click.option("--delay", type=float, default=None, help="Seconds between iterations (default: daemon.delay).")
@click.option("--no-new-starts", is_flag=True, help="This daemon starts no new staging or submission; it only follows what runs.")
@click.option("--dataset", "datasets", multiple=True, help="Advance only runs of this dataset (run list column; repeatable).")
@click.option("--where", "wheres", multiple=True, help="Advance only runs whose run list column KEY has VALUE (KEY=VALUE; repeatable).")
@click.option("--daemon-wait", type=click.FloatRange(min=0), default=20.0, show_default=True, metavar="SECONDS",
              help="oneshot/quietone: how long to wait for a running daemon of this directory to take the "
                   "round before doing it in this process (0: always in this process).")
@click.option("--debug", is_flag=True, help="Show Python tracebacks.")
def main(mode, directory, forever, delay, no_new_starts, datasets, wheres, daemon_wait, debug):
    """Advance every run: stage, submit, follow, check, release.

    \b
    MODE
      loop      (default) iterate until nothing is left to track, quietly
      oneshot   one iteration, printing what it did (e.g. after changes)
      quietone  one iteration, silently
      verbose   iterate like loop, printing what it does

    Run it in the background: `batchman-daemon &` (closing the terminal does not stop
    it: its output then goes to <daemon.log_dir>/daemon-<host>-<time>.log). Several daemons (even on several
    hosts sharing the directory) may run at once. While one runs (not restricted by
    --dataset, --where or --no-new-starts), oneshot and quietone ask it to do the round
    now and print its report: faster, and no second copy of the status in memory; with
    no such daemon they do the round themselves. SIGTERM or Ctrl-C end it after the
    current iteration; it never leaves the status file locked. If the status file is
    deleted or replaced under it, it writes nothing, keeps its last good copy beside the
    file and stops with exit code 3: run `batchman recover`. If a round cannot be written
    (the disk or quota full, the lock held too long by another process), it says so,
    waits and starts afresh: free the space and it goes on by itself.
    """
    try:
        opened: dict = {}        # (the experiment, once open: whose status file a full disk is near)
        with plain_errors(lambda: debug, lambda: opened.get("path")):
            try:
                argv = _argv(mode, directory, forever, delay, no_new_starts, datasets, wheres, debug)
                _main(directory, mode, forever, delay, no_new_starts, datasets, wheres, daemon_wait, argv, opened)
            except StatusLost as err:
                # Stop acting: the store kept our last good copy and a note beside the file.
                click.echo(f"batchman-daemon: stopped, nothing more is done: {err}", err=True)
                sys.exit(3)
    except KeyboardInterrupt:
        sys.exit(130)


def _argv(mode, directory, forever, delay, no_new_starts, datasets, wheres, debug) -> list[str]:
    """The command line of this daemon, for the process that replaces it (daemon/stall.py)."""
    argv = [mode] + (["-C", directory] if directory else []) + (["--forever"] if forever else [])
    argv += (["--delay", repr(delay)] if delay is not None else []) + (["--no-new-starts"] if no_new_starts else [])
    for d in datasets:
        argv += ["--dataset", d]
    for w in wheres:
        argv += ["--where", w]
    return argv + (["--debug"] if debug else [])


def _main(directory, mode, forever, delay, no_new_starts, datasets, wheres, daemon_wait, argv, opened) -> None:
    """Ask a running daemon for the round (oneshot, quietone) or do this process's own rounds."""
    from batchman.experiment import open_experiment
    e = open_experiment(directory)
    opened["path"] = e.store.path
    restricted = bool(no_new_starts or datasets or wheres)   # (a round of some runs: no daemon's)
    if mode in ONE and daemon_wait > 0 and not restricted:
        if _asked(e, daemon_wait, click.echo if mode == "oneshot" else (lambda text: None)):
            return
    if mode == "oneshot":       # (its round reads the whole file first)
        e.store.progress = progress.on_terminal(e.store.path)
    _work(e, mode, forever, delay, no_new_starts, datasets, wheres, restricted, argv)
    if mode in ONE:
        _leave()


def _work(e, mode: str, forever: bool, delay, no_new_starts: bool, datasets, wheres, restricted: bool,
          argv: list[str]) -> None:
    """This process's own rounds (``_run``), then it unregisters (not from a file that is no
    longer ours) and writes the page of its last write. A round that could not be written for a
    full disk or a lock held too long (daemon/stall.py): a daemon that goes on waits, then a new
    process takes its place; a oneshot ends with the error."""
    failed_before = stall.failures_before()
    eng = _engine(e, mode, no_new_starts, datasets, wheres)
    stop = _stop_on_signals(click.echo)
    hangup.keep_going(lambda: daemon_log_path(e.params.path("daemon.log_dir"), time.time()))
    problem = eng.command_problem()
    if problem:
        click.echo(f"warning: {problem}; submissions will fail until it is fixed")
    try:
        _run(eng, e, mode, forever, delay, stop, click.echo, restricted)
    except StatusLost:
        eng = None      # the file is not ours any more: not even to unregister from it
        raise
    except (OSError, StoreError) as err:
        failures = 1 + (0 if eng.iterations else failed_before)
        every = delay if delay is not None else e.params["daemon.delay"]
        wait = None if mode in ONE else stall.wait_before_again(err, failures, every)
        if wait is None:
            raise
        eng = None      # (nothing more is written by this process: the next one registers again)
        click.echo(f"{time.strftime('%H:%M:%S')}  {in_words(err, e.store.path)}. Nothing is lost: "
                   f"what this round could not write is found again (its jobs by name). The daemon starts "
                   f"afresh in {wait:g} s.", err=True)
        if stall.wait(wait, stop):
            stall.start_afresh(argv, failures)
        raise                   # (stopped while waiting: it ends with the error)
    finally:
        try:
            if eng is not None:
                eng.unregister()
        except StoreError:
            pass
        if eng is not None:
            e.store.flush_html()         # (one iteration: the page of its last write only)


def _asked(e, wait: float, say) -> bool:
    """A running daemon did the round and ``say`` printed its report; False when none listens or
    none answered (daemon/asks.py), and this process is to do the round itself."""
    from batchman.daemon import asks as A
    from batchman.daemon.loop import print_round
    directory = A.directory_of(e.store.path)
    here, stale_after = socket.gethostname(), e.params.stale_after

    def alive():
        return A.listening(A.listeners(directory), time.time(), stale_after, here, procs.pid_alive)

    ans = A.ask(directory, wait, alive, said=say)
    if ans is None:
        return False
    print_round(ans, ans.unknown, say)
    say(f"(the round of the daemon {ans.by}; --daemon-wait 0 does it in this process)")
    return True


def _leave() -> None:
    """One iteration done and written (every write is fsynced before it returns; the page too):
    end the process without freeing a million tasks one by one (~1.5 s at 1,000,000 tasks).
    Not under a test's captured output (util.procs.leave_now)."""
    try:
        procs.leave_now()
    except BrokenPipeError:
        pass            # nobody reads our report any more: end as usual


def _engine(e, mode: str, no_new_starts: bool, datasets, wheres):
    """The engine with the backends batchman.yaml names and this daemon's own limits."""
    from batchman.backends.factory import make_batch, make_staging
    from batchman.daemon.engine import Engine
    eng = Engine(e.params, e.store, make_batch(e.params), make_staging(e.params), mode=mode, say=click.echo)
    eng.paused = no_new_starts
    if datasets or wheres:
        from batchman.core.jobs import matches, parse_where
        try:
            where = parse_where(datasets, wheres)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--where") from None
        eng.only = lambda t: matches(t.meta, where)
    return eng


def _stop_on_signals(say) -> list:
    """SIGTERM / Ctrl-C: stop after this iteration (a second one: at once). Returns the flag list."""
    stop: list = []

    def on_signal(signum, frame):
        if stop:
            raise KeyboardInterrupt
        stop.append(signum)
        say(f"signal {signum}: stopping after this iteration")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _run(eng, e, mode: str, forever: bool, delay, stop: list, say, restricted: bool) -> None:
    from batchman.daemon.loop import loop, print_round
    if mode in ONE:
        # The page is written once, after the daemon's last write (unregister), rather than
        # also at the end of the iteration, a moment before: ~0.4 s at 1,000,000 tasks.
        e.store.defer_html = True
        # The cyclic collector stays off to the end (os._exit, _leave): switched on again after
        # the iteration, it walked everything the iteration had made, three times (~1.5 s at
        # 1,000,000 tasks), to find no cycle worth freeing in a process about to end.
        gc.disable()
        rep = eng.run_once()
        unknown = eng.update_unknown()
        eng.compact_store()
        if mode == "oneshot":
            print_round(rep, unknown, say)
        return
    every = delay if delay is not None else e.params["daemon.delay"]
    if mode == "loop":
        say(f"batchman-daemon {eng.me} working on {e.store.path} every {every:g} s")
        if sys.stdout.isatty() and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:    # (hangup.py)
            say(f"(closing this terminal does not stop it: its output then goes to "
                f"{daemon_log_path(e.params.path('daemon.log_dir'), None)})")
    desk = None
    if not restricted:                  # (a restricted daemon would do a restricted round: it takes no ask)
        from batchman.daemon.asks import Desk, directory_of
        desk = Desk(directory_of(e.store.path), eng.me)
    loop(eng, every, forever, mode == "verbose", say, stop, desk)


if __name__ == "__main__":  # pragma: no cover
    main()
