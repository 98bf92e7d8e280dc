"""`batchman notify` and `batchman watch-daemon`: who is told, and a watchdog for cron.

Registered onto the main group by ``register(main)`` (one hook at the end of commands.py).
Target URLs are only ever shown masked (apprise's privacy form).
"""

from __future__ import annotations

import sys
import time

import click
from batchman.cli.main import BatchmanCommand
from batchman.store.errors import cannot_write, disk_full
from batchman.store.lock import SideLockBusy

from batchman.core import alerts as AL
from batchman.core import decide as D
from batchman.core import jobs as J
from batchman.experiment import Experiment, open_experiment
from batchman.notify import step as NS
from batchman.notify import targets as T
from batchman.page.render import duration


def _exp(ctx: click.Context) -> Experiment:
    if "exp" not in ctx.obj:
        ctx.obj["exp"] = open_experiment(ctx.obj.get("dir"))
    return ctx.obj["exp"]


@click.command("notify", cls=BatchmanCommand)
@click.option("--test", "test", is_flag=True, help="Send a test message to every target now and say which took it.")
@click.pass_context
def notify_cmd(ctx, test):
    """Show where alerts go and what is in force; --test sends a test message to each target.

    \b
    Targets and thresholds are the notify: section of batchman.yaml (apprise URLs: mail,
    Mattermost, Slack, Teams, Matrix, JSON webhooks). The daemon tells when production
    stalls, when one failure class dominates the last hour, when the batch or staging
    system is unreachable (and back), when a run has no retry left and when all is done.
    Exit status: 1 if a target did not take the test message.
    """
    e = _exp(ctx)
    urls = e.params["notify.targets"]
    if not urls:
        raise click.ClickException("no notify.targets in batchman.yaml: add apprise URLs there "
                                   "(e.g. mailtos://user:pass@smtp.lab.org?to=you@lab.org)")
    if test:
        _send_test(e, urls)
        return
    ob = NS.outbox_for(e.params)
    af = ob.load()
    click.echo("targets:")
    for u in urls:
        click.echo(f"  {T.masked(u)}")
    click.echo("in force:" if af.state.active else "in force: nothing")
    for key, a in sorted(af.state.active.items()):
        click.echo(f"  {key} since {time.strftime('%Y-%m-%d %H:%M', time.localtime(a.since))}: {a.text}")
    if af.outbox:
        click.echo(f"not delivered yet: {len(af.outbox)} message(s), tried again every "
                   f"{e.params['notify.retry_minutes']:g} min")
    for line in af.log[-10:]:
        click.echo(f"  {line}")


def _send_test(e: Experiment, urls: list[str]) -> None:
    title = f"batchman {e.params.experiment}: test message"
    body = f"A test from `batchman notify --test` in {e.root}. Alerts of this production come here."
    bad = 0
    for i, u in enumerate(urls, 1):
        click.echo(f"[{i}/{len(urls)}] {T.masked(u)} ... ", nl=False)
        r = T.send(u, title, body, e.params["notify.timeout"])
        click.echo("sent" if r.ok else f"FAILED ({r.error})")
        bad += not r.ok
    if bad:
        raise click.ClickException(f"{bad} of {len(urls)} target(s) did not take the test message; "
                                   "check the URL (host, port, token) and that the service is up")


@click.command("watch-daemon", cls=BatchmanCommand)
@click.option("--quiet", is_flag=True, help="Print nothing when all is well (for cron mail).")
@click.pass_context
def watch_daemon(ctx, quiet):
    """Check that a daemon is alive while work is pending (run it from cron or a systemd timer).

    \b
    Exit status 0: a daemon's heartbeat is fresh, or nothing is pending; 1: work is
    pending and no heartbeat is newer than daemon.stale_after. The first time it finds
    the daemon dead it notifies the notify.targets (once, not on every run); it also
    delivers messages a daemon could not send. contrib/systemd has a timer for it.
    """
    e = _exp(ctx)
    p = e.params
    st = e.store.read()
    now = time.time()
    pending = D.has_work(st.tasks, D.Policy.from_params(p), J.stuck(st.tasks, p.jobs))
    problem = ""
    if p["notify.targets"]:
        ob = NS.outbox_for(p, say=lambda s: None)
        try:
            with ob.lock:
                af = ob.load()
                af.state, msgs, problem = AL.watchdog(af.state, st, NS.conditions(p), now, p.stale_after, pending)
                ob.queue(af, msgs, now)
                ob.save(af)
        except SideLockBusy:
            raise click.ClickException(f"{ob.lock.lock_file} is held by another process for more than "
                                       f"{ob.lock.timeout:g} s; try again") from None
        except OSError as err:
            if not disk_full(err):
                raise
            problem = _tell_unrecorded(e, st, now, pending, cannot_write(err, e.store.path))
        else:
            ob.kick()
            if not ob.wait(p["notify.timeout"] * max(1, len(p["notify.targets"])) + 5):
                click.echo("warning: a notification target is slow; undelivered messages stay queued", err=True)
    else:
        _s, _m, problem = AL.watchdog(AL.AlertState(), st, NS.conditions(p), now, p.stale_after, pending)
    if problem:
        click.echo(f"batchman {p.experiment}: {problem}", err=True)
        sys.exit(1)
    if not quiet:
        click.echo("nothing pending" if not pending else "a daemon is alive" if st.daemons else
                   f"no daemon running; a oneshot's round {duration(now - (st.last_round or now))} ago")


def _tell_unrecorded(e: Experiment, st, now: float, pending: bool, full: str) -> str:
    """The disk where the status file is is full, so what was told cannot be recorded (the
    alert file): tell the targets now, the watchdog's problem and the full disk in one message,
    at each check until there is room again (a daemon there cannot write either: left alone it
    would stall unseen). Returns the problem line."""
    p = e.params
    _s, _m, problem = AL.watchdog(AL.AlertState(), st, NS.conditions(p), now, p.stale_after, pending)
    problem = f"{problem}; {full}" if problem else full
    body = (f"{problem}\n\nThis message cannot be recorded where the status file is, so it comes again at "
            f"each check until there is room; a daemon there waits for room too, then goes on by itself.")
    for url in p["notify.targets"]:
        r = T.send(url, f"batchman {p.experiment}: {problem}", body, p["notify.timeout"])
        if not r.ok:
            click.echo(f"warning: {r.target} did not take the message ({r.error})", err=True)
    return problem


def register(group: click.Group) -> None:
    group.add_command(notify_cmd)
    group.add_command(watch_daemon)
