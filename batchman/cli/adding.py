"""Commands that bring work in: add runs, trigger a job by hand, watch runs for their data,
and `report`, with which a running job hands its counters back."""

from __future__ import annotations

import os

import click

from batchman import actions as A
from batchman import report as R
from batchman.core import jobs as J
from batchman.core import runspec
from batchman.core.runspec import RunSpecError
from batchman.experiment import Experiment
from batchman.report import ReportError
from batchman.cli.main import daemon_alive, exp, main
from batchman.cli.options import dataset_option, file_option, parse_runs, run_list, where_of, where_option

NO_DAEMON = "no live daemon is recorded: start one with `batchman-daemon &`"


def _check_jobs_defined(e: Experiment, jobs) -> None:
    defs = e.params.jobs
    unknown = [j for j in jobs if defs.explicit and j not in defs.defs]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not defined in batchman.yaml (jobs: {', '.join(defs.names())})",
                                 param_hint="--job")


@main.command(short_help="Add runs: batchman add 1000-1010,1020 2000, or --file F (- for stdin).")
@click.argument("runs", nargs=-1)
@file_option
@click.option("--job", "jobs", multiple=True,
              help="Job for the new tasks (repeatable; default: every on-add job; jobs that run after: it come too).")
@click.option("--priority", type=int, default=0, help="Staging/submission priority (higher goes first).")
@dataset_option
@where_option
@click.pass_context
def add(ctx, runs, file, jobs, priority, datasets, wheres):
    """Add runs: 1000-1010,1020 2000 (or --file F, - for stdin: one run or range per line, or a
    table with a header line 'run dataset quality ...' whose columns are kept with the runs)."""
    if not runs and not file:
        raise click.UsageError("name the runs to add (e.g. batchman add 1000-1010 1020) or give --file")
    wanted, meta = run_list(runs, file)
    where = where_of(datasets, wheres)
    if where:
        wanted = [r for r in wanted if J.matches(meta.get(r, {}), where)]
        if not wanted:
            raise RunSpecError("no run of the list matches --dataset/--where (columns come from a run list file's header)")
    if not wanted:
        raise RunSpecError("the run list is empty")
    from batchman.core.model import JOB_NAME_RE
    for j in jobs:
        if not JOB_NAME_RE.match(j):
            raise click.BadParameter(f"{j!r}: a job name is a letter then letters, digits, _ or -", param_hint="--job")
    e = exp(ctx)
    jobs = _jobs_for(e, jobs)
    res = A.add_runs(e.store, wanted, jobs, priority, e.params.experiment, meta=meta)
    added, skipped = res.added, res.skipped
    click.echo(f"added {len(added)} task(s)" + (f": {runspec.brief(added)}" if added else ""))
    if skipped:
        click.echo(f"skipped {len(skipped)} already in the list: " + ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    if added and not daemon_alive(e):
        click.echo(NO_DAEMON)


def _jobs_for(e: Experiment, jobs) -> list[str]:
    """The jobs `add` creates tasks for: those named (default: every on-add job) and their after: dependents."""
    defs = e.params.jobs
    if not defs.explicit:
        return list(jobs) or [A.DEFAULT_JOB]
    _check_jobs_defined(e, jobs)
    chosen = list(jobs) or defs.on_add()
    if not chosen:
        raise click.UsageError(f"no job is triggered on-add; name one with --job ({', '.join(defs.names())})")
    return defs.expand(chosen)


@main.command("run", short_help="Trigger a job for runs by hand, again if it ran before.")
@click.argument("runs", nargs=-1)
@file_option
@click.option("--job", "jobs", multiple=True, required=True, help="The job to trigger (repeatable).")
@dataset_option
@where_option
@click.pass_context
def run_cmd(ctx, runs, file, jobs, datasets, wheres):
    """Trigger a job for runs by hand, again if it ran before (each execution keeps its own
    attempt record): batchman run 1000-1010 --job calib."""
    if not runs and not file:
        raise click.UsageError("name the runs (e.g. batchman run 1000-1010 --job calib) or give --file")
    wanted, meta = run_list(runs, file)
    e = exp(ctx)
    _check_jobs_defined(e, jobs)
    where = where_of(datasets, wheres)
    if where:
        known = {t.run: t.meta for t in e.store.read().tasks if t.meta}
        wanted = [r for r in wanted if J.matches(meta.get(r) or known.get(r, {}), where)]
    if not wanted:
        raise RunSpecError("no run to trigger")
    for j in jobs:
        res = A.trigger_runs(e.store, wanted, j, e.params.experiment)
        click.echo(f"{j}: " + "; ".join(x for x in (
            f"created {len(res.created)} task(s): {runspec.brief(res.created)}" if res.created else "",
            f"triggered again {len(res.again)} (earlier executions kept): {runspec.brief(res.again)}" if res.again else "",
            f"left {len(res.busy)} under way: " + ", ".join(res.busy[:10]) + (" ..." if len(res.busy) > 10 else "")
            if res.busy else "") if x))
    if not daemon_alive(e):
        click.echo(NO_DAEMON)


@main.command(short_help="Watch runs: jobs with watch: listed start once their files are complete.")
@click.argument("runs", nargs=-1, required=True)
@click.pass_context
def watch(ctx, runs):
    """Watch runs for data-complete / first-segment jobs with `watch: listed`: their tasks are
    created once the runs' files are in staging.stub_dir and unchanged for the job's settle time."""
    e = exp(ctx)
    wanted = parse_runs(runs)
    n = A.watch(e.store, wanted)
    listed = [d.name for d in e.params.jobs.watching() if d.watch == "listed"]
    click.echo(f"watching {n} more run(s)" + ("" if listed else
               "; note: no job has watch: listed (jobs with watch: all look at every run found anyway)"))


@main.command("report")
@click.argument("pairs", nargs=-1, required=True)
def report_cmd(pairs):
    """From inside a job: set counters shown by list, show, the TUI and the page (events=1200 rate=35)."""
    spool = os.environ.get(R.ENV)
    if not spool:
        raise ReportError(f"batchman report is meant to be called from inside a batchman job ({R.ENV} is not set)")
    R.report(spool, list(pairs))
