"""Repair: take in jobs of ours the list lost (adopt), rebuild a lost status file (recover)."""

from __future__ import annotations

import time

import click

from batchman import actions as A
from batchman.cli.main import exp, main


@main.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every unknown job the daemon found.")
@click.pass_context
def adopt(ctx, names, all_):
    """Take unknown jobs of ours (batchman list --unknown) into the task list, to be followed."""
    if not names and not all_:
        raise click.UsageError("name the jobs to adopt (batchman list --unknown shows them), or --all")
    e = exp(ctx)
    res = A.adopt(e.store, None if all_ else list(names))
    for r in res.refused:
        click.echo(f"not adopted: {r}", err=True)
    click.echo(f"adopted {len(res.adopted)} job(s)" + (": " + ", ".join(res.adopted) if res.adopted else ""))
    if res.refused and not res.adopted:
        raise click.ClickException("no job was adopted; `batchman list --unknown` shows those that can be")


@main.command(short_help="Rebuild a lost or unreadable status file; says what it could not recover.")
@click.option("--force", is_flag=True, help="Rebuild even though the status file is readable.")
@click.pass_context
def recover(ctx, force):
    """Rebuild a lost or unreadable status file from the journal, the attempt directories
    and the jobs of ours the batch system still knows; says what it could not recover."""
    from batchman.backends.factory import make_batch
    from batchman.daemon.recover import recover as do_recover
    e = exp(ctx)
    t0 = time.time()
    rec = do_recover(e.params, e.store, make_batch(e.params), force=force)
    click.echo(f"recovered {len(rec.status.tasks)} task(s) into {e.store.path} in {time.time() - t0:.1f} s:")
    for src, n in sorted(rec.sources.items(), key=lambda x: -x[1]):
        click.echo(f"  {n:6d}  from {src}")
    for k in rec.kept:
        click.echo(f"the unreadable original is kept as {k}")
    for k in rec.readable:
        click.echo(f"a readable copy this rebuild replaced is kept as {k}; if it is the better one, stop the "
                   f"daemons and restore it: cp {k} {e.store.path}")
    for line in rec.lost:
        click.echo(f"not recovered: {line}")
    click.echo("next: `batchman-daemon &` follows every job again (none is submitted twice)")
