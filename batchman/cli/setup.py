"""Getting started and checking: check the configuration, run the demo.
(`init` lives in ``commands``.)"""

from __future__ import annotations

import os
import sys

import click

from batchman.store.store import StoreError
from batchman.cli.main import colour, exp, main


@main.command()
@click.pass_context
def check(ctx):
    """Validate batchman.yaml and the places it names; say what is wrong, by key."""
    from batchman.backends.factory import make_batch, make_staging
    from batchman.daemon.engine import Engine
    from batchman.store.store import check_locking
    e = exp(ctx)
    p = e.params
    problems, notes = [], []
    stub = p.path("staging.stub_dir")
    if not os.path.isdir(stub):
        problems.append(f"staging.stub_dir: {stub} is not a directory")
    eng = Engine(p, e.store, make_batch(p), make_staging(p))
    cp = eng.command_problem()
    if cp:
        problems.append(f"batch.command: {cp}")
    os.makedirs(os.path.dirname(e.store.path), exist_ok=True)
    lp = check_locking(e.store.path)
    if lp:
        problems.append(f"daemon.status_file: {lp}")
    try:
        st = e.store.read()
        notes.append(f"status file {e.store.path}: {len(st.tasks)} task(s), generation {st.generation}")
    except StoreError as err:
        problems.append(f"daemon.status_file: {err}")
    for n in notes:
        click.echo(n)
    if problems:
        for pr in problems:
            click.echo(colour("problem: ", "failed") + pr, err=True)
        raise click.ClickException(f"{len(problems)} problem(s) found; nothing was changed")
    click.echo("batchman.yaml is valid; file locking works; the job command exists")


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Where to create the demo experiment (default: a new temporary directory).")
@click.option("--runs", default=20, show_default=True, help="How many runs.")
@click.option("--speed", default=1.0, show_default=True, help="Higher is faster (2 = twice as fast).")
def demo(directory, runs, speed):
    """Create a throw-away experiment with local backends and run it to the end (about a minute)."""
    from batchman.demo import run_demo
    sys.exit(run_demo(directory, runs, speed, click.echo))
