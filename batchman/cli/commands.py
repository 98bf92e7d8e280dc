"""The `batchman` command: a click group. Domain errors become a one-line message here,
in one place; nothing below prints or prompts except through this module.

Exit codes: 0 done, 1 refused or failed (the message names what and why), 2 bad usage.
"""

from __future__ import annotations

import json
import os
import sys
import time

import click
from tabulate import tabulate

from batchman import actions as A
from batchman.page import render as export
from batchman import report as R
from batchman.core import jobs as J
from batchman.core import runlist
from batchman import params as P
from batchman.core import runspec
from batchman.core import states as S
from batchman.backends.base import BackendError
from batchman.experiment import Experiment, open_experiment
from batchman.core.model import Task
from batchman.report import ReportError
from batchman.core.runspec import RunSpecError
from batchman.store.store import StoreError

DEFAULT_JOB = A.DEFAULT_JOB


class BatchmanGroup(click.Group):
    """Turns our errors into a message and exit code 1; ``--debug`` shows the traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (StoreError, P.ParamError, RunSpecError, ReportError, BackendError) as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(str(e)) from None
        except OSError as e:      # a file or directory we could not use: say which, no traceback
            if ctx.obj and ctx.obj.get("debug"):
                raise
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            raise click.ClickException(f"{e.strerror or e}{where}") from None


def colour(text: str, state: str | None = None, **kw) -> str:
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return text
    fg = {S.COMPLETED: "green", S.FAILED: "red", S.ERROR: "red", S.INCOMPLETE: "yellow",
          S.RUNNING: "blue", S.QUEUED: "cyan", S.ABORTED: "magenta"}.get(state or "", None)
    return click.style(text, fg=fg, **kw) if fg or kw else text


def exp(ctx: click.Context) -> Experiment:
    if "exp" not in ctx.obj:
        ctx.obj["exp"] = open_experiment(ctx.obj.get("dir"))
    return ctx.obj["exp"]


@click.group(cls=BatchmanGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False), help="Experiment directory (default: here or the nearest parent with batchman.yaml).")
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of short messages.")
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


def _select(status_tasks: list[Task], specs: tuple[str, ...], states: tuple[str, ...], jobs: tuple[str, ...] = (),
            file: str | None = None, where: dict | None = None) -> list[Task]:
    runs = set(runspec.parse_many(list(specs))) if specs else None
    if file:
        text = sys.stdin.read() if file == "-" else _read_file(file)
        runs = (runs or set()) | {r for r, _ in runlist.parse(text, source=file)}
    out = []
    for t in status_tasks:
        if where and not J.matches(t.meta, where):
            continue
        if runs is not None and t.run not in runs:
            continue
        if states and t.state not in states:
            continue
        if jobs and t.job not in jobs:
            continue
        out.append(t)
    return out


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise RunSpecError(f"cannot read the run list {path}: {e.strerror}") from None


state_option = click.option("--state", "states", multiple=True, type=click.Choice(S.ALL),
                            help="Only tasks in this state (repeatable).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output with stable keys.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
file_option = click.option("--file", "file", type=str, help="Read run numbers/ranges from this file (- for stdin), one per line, # comments.")
job_option = click.option("--job", "jobs", multiple=True, help="Only this job definition (repeatable).")
dataset_option = click.option("--dataset", "datasets", multiple=True,
                              help="Only runs of this dataset (a run list column; repeatable).")
where_option = click.option("--where", "wheres", multiple=True,
                            help="Only runs whose run list column KEY is VALUE (KEY=VALUE; repeatable).")


def _where(datasets, wheres) -> dict:
    try:
        return J.parse_where(datasets, wheres)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--where") from None


def _run_list(runs, file) -> tuple[list[int], dict[int, dict]]:
    """Runs named on the command line and in --file (a plain list, or a table with a header
    'run dataset quality ...'), and the file's columns per run."""
    wanted = runspec.parse_many(list(runs)) if runs else []
    meta: dict[int, dict] = {}
    if file:
        text = sys.stdin.read() if file == "-" else _read_file(file)
        rows = runlist.parse(text, source="stdin" if file == "-" else file)
        seen = set(wanted)
        wanted += [r for r, _ in rows if r not in seen]
        meta = {r: m for r, m in rows if m}
    return wanted, meta


def _by_run(tasks: list[Task], order: list[str]) -> list[Task]:
    """Tasks grouped by run, the jobs of a run in the order batchman.yaml defines them."""
    pos = {j: i for i, j in enumerate(order)}
    return sorted(tasks, key=lambda t: (t.run, pos.get(t.job, len(pos)), t.job))


# ---- init / check ---------------------------------------------------------------
@main.command()
@click.option("--print", "to_stdout", is_flag=True, help="Print the file instead of writing it.")
@click.option("--force", is_flag=True, help="Overwrite an existing batchman.yaml.")
@click.pass_context
def init(ctx, to_stdout, force):
    """Write a commented batchman.yaml with every parameter and its default."""
    text = P.render_yaml()
    if to_stdout:
        click.echo(text)
        return
    root = os.path.abspath(ctx.obj.get("dir") or os.getcwd())
    path = os.path.join(root, P.CONFIG_NAME)
    if os.path.exists(path) and not force:
        raise click.ClickException(f"{path} exists already; edit it, or use --force to start from the defaults")
    os.makedirs(root, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    click.echo(f"wrote {path}\nnext: edit it (stub_dir, cache_dir, command, backend...), then `batchman check`")


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
    staging = make_staging(p)
    problems += staging.check() if hasattr(staging, "check") else []   # tape-rest, xrootd: the server answers
    eng = Engine(p, e.store, make_batch(p), staging)
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


# ---- add ------------------------------------------------------------------------
@main.command()
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
    wanted, meta = _run_list(runs, file)
    where = _where(datasets, wheres)
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
    click.echo(f"added {len(added)} task(s)" + (f": {runspec.compress(added)}" if added else ""))
    if skipped:
        click.echo(f"skipped {len(skipped)} already in the list: " + ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    if added and not _daemon_alive(e):
        click.echo("no live daemon is recorded: start one with `batchman-daemon &`")


def _jobs_for(e: Experiment, jobs) -> list[str]:
    """The jobs `add` creates tasks for: those named (default: every on-add job) and their after: dependents."""
    defs = e.params.jobs
    if not defs.explicit:
        return list(jobs) or [DEFAULT_JOB]
    unknown = [j for j in jobs if j not in defs.defs]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not defined in batchman.yaml (jobs: {', '.join(defs.names())})",
                                 param_hint="--job")
    chosen = list(jobs) or defs.on_add()
    if not chosen:
        raise click.UsageError(f"no job is triggered on-add; name one with --job ({', '.join(defs.names())})")
    return defs.expand(chosen)


@main.command("run")
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
    wanted, meta = _run_list(runs, file)
    e = exp(ctx)
    defs = e.params.jobs
    unknown = [j for j in jobs if defs.explicit and j not in defs.defs]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not defined in batchman.yaml (jobs: {', '.join(defs.names())})",
                                 param_hint="--job")
    where = _where(datasets, wheres)
    if where:
        known = {t.run: t.meta for t in e.store.read().tasks if t.meta}
        wanted = [r for r in wanted if J.matches(meta.get(r) or known.get(r, {}), where)]
    if not wanted:
        raise RunSpecError("no run to trigger")
    for j in jobs:
        res = A.trigger_runs(e.store, wanted, j, e.params.experiment)
        click.echo(f"{j}: " + "; ".join(x for x in (
            f"created {len(res.created)} task(s): {runspec.compress(res.created)}" if res.created else "",
            f"triggered again {len(res.again)} (earlier executions kept): {runspec.compress(res.again)}" if res.again else "",
            f"left {len(res.busy)} under way: " + ", ".join(res.busy[:10]) + (" ..." if len(res.busy) > 10 else "")
            if res.busy else "") if x))
    if not _daemon_alive(e):
        click.echo("no live daemon is recorded: start one with `batchman-daemon &`")


@main.command()
@click.argument("runs", nargs=-1, required=True)
@click.pass_context
def watch(ctx, runs):
    """Watch runs for data-complete / first-segment jobs with `watch: listed`: their tasks are
    created once the runs' files are in staging.stub_dir and unchanged for the job's settle time."""
    e = exp(ctx)
    wanted = runspec.parse_many(list(runs))
    n = A.watch(e.store, wanted)
    listed = [d.name for d in e.params.jobs.watching() if d.watch == "listed"]
    click.echo(f"watching {n} more run(s)" + ("" if listed else
               "; note: no job has watch: listed (jobs with watch: all look at every run found anyway)"))


def _daemon_alive(e: Experiment) -> bool:
    st = e.store.read()
    _, ok = export.daemon_line(st, time.time(), e.params.stale_after)
    return ok


# ---- list / show ----------------------------------------------------------------
@main.command("list")
@click.argument("runs", nargs=-1)
@state_option
@job_option
@dataset_option
@where_option
@json_option
@click.option("--unknown", is_flag=True, help="List jobs found under our name pattern that no task accounts for.")
@click.pass_context
def list_(ctx, runs, states, jobs, datasets, wheres, as_json, unknown):
    """List tasks: run, segments, state, time in state, job id, counters."""
    e = exp(ctx)
    st = e.store.read()
    now = time.time()
    if unknown:
        rows = [{"name": u.name, "job_id": u.job_id, "state": u.state, "seen": u.seen} for u in st.unknown]
        if as_json:
            click.echo(json.dumps({"unknown": rows}, indent=1))
        elif not rows:
            click.echo("no unknown jobs (the daemon looks every 10 iterations; `batchman-daemon oneshot` looks now)")
        else:
            click.echo(tabulate([[r["name"], r["job_id"], r["state"], export.clock(r["seen"])] for r in rows],
                                headers=["job name", "job id", "state", "seen"]))
        return
    tasks = _by_run(_select(st.tasks, runs, states, jobs, where=_where(datasets, wheres)), e.params.jobs.names())
    _refresh_counters(e, tasks)
    if as_json:
        click.echo(json.dumps({"experiment": st.experiment, "generation": st.generation,
                               "tasks": [export.row(t, now) for t in tasks]}, indent=1))
        return
    dline, ok = export.daemon_line(st, now, e.params.stale_after)
    c = export.counts(st.tasks)
    if st.paused:
        click.echo(colour("PAUSED (batchman resume): no new staging or submissions", "incomplete"))
    click.echo(f"{len(st.tasks)} task(s): " + ", ".join(colour(f"{c[s]} {s}", s) for s in S.ALL if c.get(s))
               + f"   [{dline}]")
    if not tasks:
        click.echo("no task matches" if st.tasks else "no tasks yet: `batchman add RUNS`")
        return
    rows = [export.table_row(t, now) for t in tasks]
    for i in range(len(rows) - 1, 0, -1):        # grouped by run: the run number once per group
        if tasks[i].run == tasks[i - 1].run:
            rows[i][0] = ""
    click.echo(tabulate(rows, headers=export.TABLE_HEADERS, tablefmt="simple"))


def _refresh_counters(e: Experiment, tasks: list[Task]) -> None:
    """Counters of running jobs straight from their spool (fresher than the daemon's copy)."""
    for t in tasks:
        if t.state in S.IN_BATCH and t.job_name:
            c = R.read(e.paths.spool(t.job_name))
            if c:
                t.counters = {**t.counters, **c}


@main.command()
@click.argument("run", type=int)
@click.option("--job", default=None, help="Job definition (needed when the run has several).")
@click.option("--lines", default=15, show_default=True, help="Lines of the log to show.")
@json_option
@click.pass_context
def show(ctx, run, job, lines, as_json):
    """One task in full: history with reasons, segments, job, log tail."""
    e = exp(ctx)
    st = e.store.read()
    cands = [t for t in st.tasks if t.run == run and (job is None or t.job == job)]
    if not cands:
        raise click.ClickException(f"run {run} is not in the list" + (f" with job {job}" if job else "") + "; `batchman list` shows what is")
    if len(cands) > 1:
        raise click.ClickException(f"run {run} has several jobs ({', '.join(t.job for t in cands)}); choose one with --job")
    t = cands[0]
    _refresh_counters(e, [t])
    hist = e.store.history({t.key}, upto=st.generation)
    logs = {}
    if t.attempt:
        for ext in ("out", "err"):
            logs[ext] = e.paths.log(t.run, t.job, t.attempt, ext)
    segs = []
    from batchman.backends.factory import make_staging
    try:
        stg = make_staging(e.params)
    except Exception:   # noqa: BLE001 - only for showing cache paths
        stg = None
    for s in t.segments:
        cp = stg.cache_path(s.path) if stg else ""
        segs.append({"path": s.path, "staged": s.staged, "cache": cp, "on_disk": bool(cp) and os.path.exists(cp)})
    if as_json:
        click.echo(json.dumps({**export.row(t, time.time()), "history": hist, "segments": segs,
                               "job_name": t.job_name, "logs": logs, "past_attempts": [
                                   {"n": a.n, "job_id": a.job_id, "state": a.state, "exit_code": a.exit_code,
                                    "failure": a.failure, "reason": a.reason, "failure_class": a.failure_class,
                                    "node": a.node, "resources": a.resources, "retry": a.retry} for a in t.past],
                               "resources": t.resources, "used": t.used}, indent=1))
        return
    now = time.time()
    click.echo(f"run {t.run}  job {t.job}  state {colour(export.state_label(t), t.state)} for {export.duration(now - t.since)}"
               f"  ({t.reason})")
    if t.error:
        click.echo(colour("error: ", "failed") + t.error)
    if t.warning:
        click.echo("warning: " + t.warning)
    click.echo(f"attempt {t.attempt}" + (f", batch job {t.job_id} ({t.job_name})" if t.job_name else "")
               + (f", exit code {t.exit_code}" if t.exit_code is not None else "")
               + (f", {t.analysed} segment(s) analysed" if t.analysed is not None else ""))
    if t.counters:
        click.echo("counters: " + export.counters_text(t))
    if t.meta:
        click.echo("run list: " + " ".join(f"{k}={v}" for k, v in t.meta.items()))
    for label, files in (("inputs", t.inputs), ("outputs", t.outputs)):
        if files:
            click.echo(f"{label} ({len(files)}):")
            for f in files:
                click.echo(f"  {f}")
    click.echo(f"\nsegments ({len(segs)}):")
    for s in segs:
        click.echo(f"  {'staged ' if s['on_disk'] else 'on tape'}  {s['path']}" + (f"  -> {s['cache']}" if s['cache'] and s['cache'] != s['path'] else ""))
    click.echo("\nhistory:")
    for h in hist:
        click.echo(f"  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(h['t']))}  {h['from'] or '':>10} -> {h['to']:<10} {h['why']}")
    if t.past or t.used or t.resources:
        click.echo("\nattempts:")
        for line in export.attempt_lines(t):
            click.echo("  " + line)
    for ext, path in logs.items():
        tail = _tail(path, lines)
        click.echo(f"\n{ext} log {path}" + ("" if tail is not None else " (not there yet)"))
        for line in tail or []:
            click.echo("  " + line)


def _tail(path: str, n: int) -> list[str] | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            return f.read().decode(errors="replace").splitlines()[-n:]
    except OSError:
        return None


# ---- kill / restart / purge -----------------------------------------------------
def _queue_request(ctx, what: str, runs, states, jobs, file, all_, yes, allowed_states=None, describe="",
                   where: dict | None = None):
    e = exp(ctx)
    if not runs and not states and not file and not all_ and not where:
        raise click.UsageError(f"name the runs to {what} (e.g. 1000-1010), or --state STATE, --dataset, or --all")
    st = e.store.read()
    chosen = _select(st.tasks, (), (), (), None, where) if all_ else _select(st.tasks, runs, states, jobs, file, where)
    if allowed_states is not None:
        chosen = [t for t in chosen if t.state in allowed_states]
    if not chosen:
        raise click.ClickException(f"no task to {what} matches" + (f" ({describe})" if describe else ""))
    if (len(chosen) > 1 or all_) and not yes:
        live = sum(1 for t in chosen if t.state in S.IN_BATCH)
        staging = sum(1 for t in chosen if t.state in (S.STAGING, S.STAGED))
        scope = (f" (every active task: {live} with a batch job, {staging} staging or staged)" if all_
                 else f" ({runspec.compress([t.run for t in chosen])})")
        if not sys.stdin.isatty():
            raise click.ClickException(f"this would {what} {len(chosen)} tasks{scope}; add --yes to confirm")
        click.confirm(f"{what} {len(chosen)} tasks{scope}?", abort=True)
    n = A.queue_request(e.store, {t.key for t in chosen}, what)
    click.echo(f"{what} queued for {n} task(s); the daemon carries it out at its next iteration")
    if not _daemon_alive(e):
        click.echo("no live daemon is recorded: `batchman-daemon oneshot` does it now, `batchman-daemon &` keeps at it")


@main.command()
@click.argument("runs", nargs=-1)
@state_option
@job_option
@file_option
@click.option("--all", "all_", is_flag=True, help="Abort all: every task that is still active (asks first; --yes for scripts).")
@dataset_option
@where_option
@yes_option
@click.pass_context
def kill(ctx, runs, states, jobs, file, all_, datasets, wheres, yes):
    """Kill runs: cancel their job or staging; they end 'aborted' (remembering where).
    `kill --all` aborts everything under way: jobs cancelled, staging cancelled, files released."""
    _queue_request(ctx, "kill", runs, states, jobs, file, all_, yes,
                   allowed_states=S.ACTIVE, describe="only active tasks can be killed", where=_where(datasets, wheres))


@main.command()
@click.argument("runs", nargs=-1)
@state_option
@job_option
@file_option
@dataset_option
@where_option
@yes_option
@click.pass_context
def restart(ctx, runs, states, jobs, file, datasets, wheres, yes):
    """Restart runs from the beginning (a live job is killed first)."""
    _queue_request(ctx, "restart", runs, states, jobs, file, False, yes, where=_where(datasets, wheres))


@main.command()
@click.argument("runs", nargs=-1)
@state_option
@job_option
@file_option
@yes_option
@click.pass_context
def purge(ctx, runs, states, jobs, file, yes):
    """Remove runs from the list (releasing their files; live ones are killed first)."""
    _queue_request(ctx, "purge", runs, states, jobs, file, False, yes)


def _keys_for(ctx, runs, states, jobs, file, what: str) -> tuple[Experiment, set[str]]:
    e = exp(ctx)
    if not runs and not states and not file:
        raise click.UsageError(f"name the runs to {what} (e.g. 1000-1010), or --state STATE")
    chosen = _select(e.store.read().tasks, runs, states, jobs, file)
    if not chosen:
        raise click.ClickException(f"no task to {what} matches")
    return e, {t.key for t in chosen}


@main.command()
@click.argument("runs", nargs=-1)
@state_option
@job_option
@file_option
@click.pass_context
def hold(ctx, runs, states, jobs, file):
    """Hold runs: the daemon starts nothing new for them (a running job is left running)."""
    e, keys = _keys_for(ctx, runs, states, jobs, file, "hold")
    click.echo(f"held {A.hold(e.store, keys, True)} task(s); `batchman release` lets them go on")


@main.command()
@click.argument("runs", nargs=-1)
@state_option
@job_option
@file_option
@click.pass_context
def release(ctx, runs, states, jobs, file):
    """Release held runs: the daemon takes them up again."""
    e, keys = _keys_for(ctx, runs, states, jobs, file, "release")
    click.echo(f"released {A.hold(e.store, keys, False)} task(s)")


@main.command()
@click.argument("runs", nargs=-1)
@click.option("--reason", required=True, help="Why (kept with the task and shown everywhere).")
@state_option
@job_option
@file_option
@yes_option
@click.pass_context
def skip(ctx, runs, reason, states, jobs, file, yes):
    """Mark runs done by hand, for example runs known to be bad: state "skipped", not "completed"."""
    e, keys = _keys_for(ctx, runs, states, jobs, file, "skip")
    if len(keys) > 1 and not yes:
        if not sys.stdin.isatty():
            raise click.ClickException(f"this would skip {len(keys)} tasks; add --yes to confirm")
        click.confirm(f"skip {len(keys)} tasks?", abort=True)
    n = A.skip(e.store, keys, reason)
    click.echo(f"skip queued for {n} task(s) (live jobs are killed first)")


@main.command()
@click.pass_context
def pause(ctx):
    """Drain: no daemon starts new staging or submissions; what runs is followed to the end."""
    e = exp(ctx)
    was = A.set_paused(e.store, True)
    click.echo("already paused" if was else "paused: no new starts until `batchman resume`")


@main.command()
@click.pass_context
def resume(ctx):
    """End a drain (batchman pause): daemons start new work again."""
    e = exp(ctx)
    was = A.set_paused(e.store, False)
    click.echo("resumed" if was else "was not paused")


@main.command()
@click.argument("runs", nargs=-1, required=True)
@click.argument("priority", type=int)
@click.pass_context
def priority(ctx, runs, priority):
    """Set the priority of runs (higher is staged and submitted first): batchman priority 1005 10."""
    e = exp(ctx)
    wanted = set(runspec.parse_many(list(runs)))
    n = A.set_priority(e.store, {t.key for t in e.store.read().tasks if t.run in wanted}, priority)
    if not n:
        raise click.ClickException("no task matches those runs")
    click.echo(f"priority {priority} set on {n} task(s)")


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
        sys.exit(1)


@main.command()
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
    for line in rec.lost:
        click.echo(f"not recovered: {line}")
    click.echo("next: `batchman-daemon &` follows every job again (none is submitted twice)")


# ---- export-html / report -------------------------------------------------------
@main.command("export-html")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write (default: daemon.html_file).")
@click.pass_context
def export_html(ctx, output):
    """Write the status page now (the daemon also writes it with every change)."""
    e = exp(ctx)
    st = e.store.read()
    out = output or e.params.path("daemon.html_file")
    if not out:
        raise click.ClickException("daemon.html_file is empty in batchman.yaml; give --output PATH")
    from batchman.store.store import _atomic_write
    _atomic_write(out, e.store.render_html(st).encode())
    click.echo(out)


@main.command("report")
@click.argument("pairs", nargs=-1, required=True)
def report_cmd(pairs):
    """From inside a job: set counters shown by list, show, the TUI and the page (events=1200 rate=35)."""
    spool = os.environ.get(R.ENV)
    if not spool:
        raise ReportError(f"batchman report is meant to be called from inside a batchman job ({R.ENV} is not set)")
    R.append(spool, R.parse_pairs(list(pairs)))


# ---- demo -----------------------------------------------------------------------
@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Where to create the demo experiment (default: a new temporary directory).")
@click.option("--runs", default=20, show_default=True, help="How many runs.")
@click.option("--speed", default=1.0, show_default=True, help="Higher is faster (2 = twice as fast).")
def demo(directory, runs, speed):
    """Create a throw-away experiment with local backends and run it to the end (about a minute)."""
    from batchman.demo import run_demo
    sys.exit(run_demo(directory, runs, speed, click.echo))


if __name__ == "__main__":  # pragma: no cover
    main()
