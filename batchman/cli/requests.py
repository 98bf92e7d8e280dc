"""Commands that ask the daemon to change tasks: kill, restart, purge, skip (queued requests),
hold, release, priority, pause, resume. Each is one short locked step through ``actions``."""

from __future__ import annotations

import sys

import click

from batchman import actions as A
from batchman.core import runspec
from batchman.core import states as S
from batchman.experiment import Experiment
from batchman.cli.main import daemon_alive, exp, main
from batchman.cli.options import (dataset_option, named_keys, named_runs, not_in_list, parse_runs, read_named, select, select_options,
                                  where_of, where_option, yes_option)


def _confirm(what: str, n: int, scope: str, yes: bool) -> None:
    """Ask before changing several tasks; refuse without a terminal unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(f"this would {what} {n} tasks{scope}; add --yes to confirm")
    click.confirm(f"{what} {n} tasks{scope}?", abort=True)


def _queue_request(ctx, what: str, runs, states, jobs, file, all_, yes, where: dict | None = None):
    e = exp(ctx)
    if not runs and not states and not file and not all_ and not where:
        raise click.UsageError(f"name the runs to {what} (e.g. 1000-1010), or --state STATE, --dataset, or --all")
    named = None if all_ else named_runs(runs, file)
    keys = frozenset() if all_ else named_keys(runs)
    st = e.store.read() if all_ else read_named(e, named, keys, states)
    chosen = select(st.tasks, named, () if all_ else states, () if all_ else jobs, where, keys)
    applies = [t for t in chosen if S.request_applies(what, t.state)]
    why = S.REQUEST_REFUSAL.get(what, "") if len(applies) < len(chosen) else ""
    chosen = _or_refuse(what, applies, not_in_list(st.tasks, named, keys), why)
    if len(chosen) > 1 or all_:
        live = sum(1 for t in chosen if t.state in S.IN_BATCH)
        staging = sum(1 for t in chosen if t.state in (S.STAGING, S.STAGED))
        scope = (f" (every active task: {live} with a batch job, {staging} staging or staged)" if all_
                 else f" ({runspec.brief([t.run for t in chosen])})")
        _confirm(what, len(chosen), scope, yes)
    n = A.queue_request(e.store, {t.key for t in chosen}, what)
    click.echo(f"{what} queued for {n} task(s); the daemon carries it out at its next iteration")
    if not daemon_alive(e):
        click.echo("no live daemon is recorded: `batchman-daemon oneshot` does it now, `batchman-daemon &` keeps at it")


@main.command()
@select_options
@click.option("--all", "all_", is_flag=True, help="Abort all: every task that is still active (asks first; --yes for scripts).")
@dataset_option
@where_option
@yes_option
@click.pass_context
def kill(ctx, runs, states, jobs, file, all_, datasets, wheres, yes):
    """Kill runs: cancel their job or staging; they end 'aborted' (remembering where).
    `kill --all` aborts everything under way: jobs cancelled, staging cancelled, files released.
    RUNS are run numbers and ranges (1000-1010), or task keys: 2120.reco (every segment task of a per: segment job), 2120.reco.17 (one)."""
    _queue_request(ctx, "kill", runs, states, jobs, file, all_, yes, where=where_of(datasets, wheres))


@main.command()
@select_options
@dataset_option
@where_option
@yes_option
@click.pass_context
def restart(ctx, runs, states, jobs, file, datasets, wheres, yes):
    """Restart runs from the beginning (a live job is killed first).
    RUNS are run numbers and ranges (1000-1010), or task keys: 2120.reco (every segment task of a per: segment job), 2120.reco.17 (one)."""
    _queue_request(ctx, "restart", runs, states, jobs, file, False, yes, where=where_of(datasets, wheres))


@main.command()
@select_options
@yes_option
@click.pass_context
def purge(ctx, runs, states, jobs, file, yes):
    """Remove runs from the list (releasing their files; live ones are killed first).
    RUNS are run numbers and ranges (1000-1010), or task keys: 2120.reco (every segment task of a per: segment job), 2120.reco.17 (one)."""
    _queue_request(ctx, "purge", runs, states, jobs, file, False, yes)


def _or_refuse(what: str, chosen: list, missing: str, why: str = "") -> list:
    """The tasks to act on; refused (exit 1) when there are none, saying why: runs not in the
    status file, tasks in a state where the request does not apply. Missing runs beside
    others acted on are named on stderr."""
    if not chosen:
        raise click.ClickException(f"no task to {what} matches" + (f" ({why})" if why else "")
                                   + (f"; {missing}" if missing else ""))
    if missing:
        click.echo(missing, err=True)
    return chosen


def _keys_for(ctx, runs, states, jobs, file, what: str) -> tuple[Experiment, list]:
    e = exp(ctx)
    if not runs and not states and not file:
        raise click.UsageError(f"name the runs to {what} (e.g. 1000-1010), or --state STATE")
    named, keys = named_runs(runs, file), named_keys(runs)
    tasks = read_named(e, named, keys, states).tasks
    chosen = _or_refuse(what, select(tasks, named, states, jobs, keys=keys), not_in_list(tasks, named, keys))
    return e, chosen


def _hold_command(name: str, held: bool, doc: str, done: str) -> click.Command:
    """hold and release: the same selection, the flag set one way or the other."""
    @main.command(name, help=doc)
    @select_options
    @click.pass_context
    def cmd(ctx, runs, states, jobs, file):
        e, chosen = _keys_for(ctx, runs, states, jobs, file, name)
        already = sum(1 for t in chosen if t.held == held)       # (as read, before the hold sets the flag in them)
        n = A.hold(e.store, {t.key for t in chosen}, held)
        click.echo(done.format(n=max(0, n - already), extra=f" ({already} {'held already' if held else 'not held'})"
                               if already else ""))
    return cmd


hold = _hold_command("hold", True, "Hold runs: the daemon starts nothing new for them (a running job is left running).",
                     "held {n} task(s){extra}; `batchman release` lets them go on")
release = _hold_command("release", False, "Release held runs: the daemon takes them up again.",
                        "released {n} task(s){extra}")


@main.command()
@select_options
@click.option("--reason", required=True, help="Why (kept with the task and shown everywhere).")
@yes_option
@click.pass_context
def skip(ctx, runs, reason, states, jobs, file, yes):
    """Mark runs done by hand, for example runs known to be bad: state "skipped", not "completed".
    RUNS are run numbers and ranges (1000-1010), or task keys: 2120.reco (every segment task of a per: segment job), 2120.reco.17 (one)."""
    if not reason.strip():
        raise click.BadParameter("say why the runs are skipped (it is kept with them and shown everywhere)",
                                 param_hint="--reason")
    e, chosen = _keys_for(ctx, runs, states, jobs, file, "skip")
    keys = {t.key for t in chosen}
    if len(keys) > 1:
        _confirm("skip", len(keys), "", yes)
    n = A.skip(e.store, keys, reason)
    click.echo(f"skip queued for {n} task(s) (live jobs are killed first)")


def _drain_command(name: str, paused: bool, doc: str, was_same: str, done: str) -> click.Command:
    """pause and resume: the drain flag set one way or the other."""
    @main.command(name, help=doc)
    @click.pass_context
    def cmd(ctx):
        was = A.set_paused(exp(ctx).store, paused)
        click.echo(was_same if was == paused else done)
    return cmd


pause = _drain_command("pause", True, "Drain: no daemon starts new staging or submissions; what runs is followed to the end.",
                       "already paused", "paused: no new starts until `batchman resume`")
resume = _drain_command("resume", False, "End a drain (batchman pause): daemons start new work again.",
                        "was not paused", "resumed")


@main.command()
@click.argument("runs", nargs=-1, required=True)
@click.argument("priority", type=int)
@click.pass_context
def priority(ctx, runs, priority):
    """Set the priority of runs (higher is staged and submitted first): batchman priority 1005 10."""
    e = exp(ctx)
    wanted = set(parse_runs(runs))
    tasks = read_named(e, wanted).tasks
    chosen = _or_refuse("set the priority of", select(tasks, wanted), not_in_list(tasks, wanted))
    n = A.set_priority(e.store, {t.key for t in chosen}, priority)
    click.echo(f"priority {priority} set on {n} task(s)")
