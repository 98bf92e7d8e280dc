"""Getting started and checking: check the configuration, run the demo.
(`init` lives in ``commands``.)"""

from __future__ import annotations

import json
import os
import sys

import click

from batchman.store.store import StoreError
from batchman.experiment import Experiment
from batchman.cli.main import colour, exp, main
from batchman.cli.options import SafePath, json_option

DEMO_MIN_RUNS = 12      # the demo's special runs (failing, incomplete, killed) are among the first 12


@main.command()
@json_option
@click.pass_context
def check(ctx, as_json):
    """Validate batchman.yaml and the places it names; say what is wrong, by key."""
    e = exp(ctx)
    problems, notes = _problems(e)
    if as_json:
        click.echo(json.dumps({"ok": not problems, "notes": notes,
                               "problems": [{"key": k, "problem": p} for k, p in problems]}, indent=1))
    else:
        for n in notes:
            click.echo(n)
        for k, pr in problems:
            click.echo(colour("problem: ", "failed") + f"{k}: {pr}", err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) found; nothing was changed")
    if not as_json:
        click.echo("batchman.yaml is valid; file locking works; the job command exists")


def _problems(e: Experiment) -> tuple[list[tuple[str, str]], list[str]]:
    """(key, what is wrong) for each problem found, and notes on what is fine."""
    from batchman.backends.factory import make_batch, make_staging
    from batchman.daemon.jobspec import JobSpecs
    from batchman.paths import Paths
    from batchman.store.store import check_locking
    p = e.params
    problems, notes = [], []
    stub = p.path("staging.stub_dir")
    if not os.path.isdir(stub):
        problems.append(("staging.stub_dir", f"{stub} is not a directory"))
    staging = make_staging(p)
    problems += [tuple(pr.split(": ", 1)) for pr in staging.check()]   # tape-rest, xrootd: the server answers
    batch = make_batch(p)
    cp = JobSpecs(p, Paths(p), staging).command_problem()
    if cp:
        problems.append(("batch.command", cp))
    _ask_batch(p, batch, problems, notes)
    os.makedirs(os.path.dirname(e.store.path), exist_ok=True)
    lp = check_locking(e.store.path)
    if lp:
        problems.append(("daemon.status_file", lp))
    try:
        st = e.store.read()
        notes.append(f"status file {e.store.path}: {len(st.tasks)} task(s), generation {st.generation}")
    except StoreError as err:
        problems.append(("daemon.status_file", str(err)))
    return problems, notes


def _ask_batch(p, batch, problems: list, notes: list) -> None:
    """Ask the batch system once which partitions / queues exist; name those we would ask for
    that do not (found now, not when the first submission is refused after staging), and on
    SLURM the account and QOS the partition refuses, from the same answer."""
    from batchman.backends.base import BackendUnavailable
    what = "partition" if p["batch.backend"] == "slurm" else "queue"
    try:
        known = batch.known_queues()
    except BackendUnavailable as err:
        # An outage is not a mistake in batchman.yaml (the daemon waits it out): said, not refused.
        notes.append(f"warning: the {p['batch.backend']} batch system could not be asked which {what}s exist, "
                     f"so batch.queue is not checked: {'; '.join(str(err).splitlines())}")
        return
    if known is None:
        return
    wanted = {"batch.queue": p["batch.queue"]}
    wanted.update({f"jobs.{n}.queue": jd.queue for n in p.jobs.names() if (jd := p.jobs.get(n)) and jd.queue})
    found = unknown_queues(wanted, known, what)
    problems += found
    problems += [("batch.account" if pr.startswith("account") else "batch.qos", pr) for pr in
                 batch.access_problems(p["batch.queue"] or None, p["batch.account"] or None, p["batch.qos"] or None)]
    if not found:
        notes.append(f"batch system: {len(known)} {what}(s): {', '.join(sorted(known))}")


def unknown_queues(wanted: dict[str, str], known: set[str], what: str = "queue") -> list[tuple[str, str]]:
    """(key, problem) for each partition / queue named in ``wanted`` ({key: value as written;
    SLURM takes a comma-separated list, Grid Engine queue@host}) that is not in ``known``.
    Wildcard patterns are left to the batch system."""
    import difflib
    out = []
    for key, value in wanted.items():
        for item in (value or "").split(","):
            name = item.strip().split("@", 1)[0]
            if not name or any(c in name for c in "*?[") or name in known:
                continue
            hint = difflib.get_close_matches(name, sorted(known), n=1)
            out.append((key, f"{what} {name!r} does not exist in the batch system"
                             + (f" (did you mean {hint[0]!r}?)" if hint else "")
                             + f"; it has: {', '.join(sorted(known)) or 'none'}"))
    return out


def _empty_dir(_ctx, param, value):
    """The demo writes a fresh experiment: a directory holding anything (a previous demo) is refused."""
    if value and os.path.isdir(value) and os.listdir(value):
        raise click.BadParameter(f"{value} is not empty (a previous demo?); give a new or empty directory, "
                                 f"or leave --dir out for a temporary one", param=param)
    return value


@main.command()
@click.option("--dir", "directory", type=SafePath(file_okay=False), callback=_empty_dir,
              help="Where to create the demo experiment: a new or empty directory (default: a new temporary one).")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(DEMO_MIN_RUNS, 10_000),
              help=f"How many runs ({DEMO_MIN_RUNS} at least: run {DEMO_MIN_RUNS - 1} of them ends incomplete).")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(0.1, 100.0),
              help="Higher is faster (2 = twice as fast; 0.1 to 100).")
def demo(directory, runs, speed):
    """Create a throw-away experiment with local backends and run it to the end (about a minute)."""
    from batchman.demo import run_demo
    sys.exit(run_demo(directory, runs, speed, click.echo))
