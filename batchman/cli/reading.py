"""Reading commands: list, show, export-html. They change nothing."""

from __future__ import annotations

import json
import os
import sys
import time

import click
import msgspec
from tabulate import tabulate

from batchman.core.text import visible
from batchman import report as R
from batchman.core import segview as SV
from batchman.core import states as S
from batchman.core.model import Task, parse_key
from batchman.experiment import Experiment
from batchman.page import render as export
from batchman.cli import table
from batchman.cli.main import colour, exp, leave_now, main
from batchman.cli.options import (dataset_option, job_option, json_option, named_keys, named_runs, read_named, runs_argument, SafePath,
                                  select, state_option, where_of, where_option)


_encode = msgspec.json.Encoder().encode


def _echo_json(head: dict, tasks: list[Task], now: float, chunk: int = 1000) -> None:
    """``head`` with a "tasks" list of their rows, written as it is made (one task a line,
    msgspec's encoder: ~5 times json's) rather than as one string of the whole output."""
    out = sys.stdout
    out.write(json.dumps(head, indent=1)[:-2] + ',\n "tasks": [')
    for i in range(0, len(tasks), chunk):
        rows = b",\n  ".join(map(_encode, (export.row(t, now) for t in tasks[i:i + chunk])))
        out.write(("," if i else "") + "\n  " + rows.decode())
    out.write("\n ]\n}\n")


@main.command("list")
@runs_argument
@state_option
@job_option
@dataset_option
@where_option
@json_option
@click.option("--unknown", is_flag=True, help="List jobs found under our name pattern that no task accounts for.")
@click.option("--segments", "unfold", is_flag=True,
              help="One line per segment task of per: segment jobs (by default one line per run and job, "
                   "'37/120 segments completed'; naming RUN.JOB or a --state also shows them).")
@click.pass_context
def list_(ctx, runs, states, jobs, datasets, wheres, as_json, unknown, unfold):
    """List tasks: run, segments, state, time in state, job id, counters. The segment tasks of a
    per: segment job show as one line per run (--segments, --state, or naming 2120.reco, lists
    them one by one).
    The first line counts the tasks by state: every task, or those listed when runs, --state,
    --job, --dataset or --where are given. The counters of running jobs are read from the jobs
    themselves when the list holds at most 1,000 of them, else they are the daemon's (at most
    5 minutes old)."""
    e = exp(ctx)
    # A list of some tasks counts only those: only the tasks of the runs named, or else of the
    # states named, are decoded (read_named; at 1,000,000 tasks ~1 s instead of ~4 s).
    some = bool(runs or states or jobs or datasets or wheres)
    st = read_named(e, named_runs(runs, None), named_keys(runs), states) if some and not unknown else e.store.read()
    now = time.time()
    if unknown:
        _list_unknown(st, as_json)
        return
    tasks = SV.by_run(select(st.tasks, named_runs(runs, None), states, jobs, where_of(datasets, wheres),
                             named_keys(runs)), tuple(e.params.jobs.names()))
    _refresh_counters(e, tasks)
    if as_json:
        _echo_json({"experiment": st.experiment, "generation": st.generation, "params_problem": st.params_problem},
                   tasks, now)
        leave_now()
        return
    if st.paused:
        click.echo(colour("PAUSED (batchman resume): no new staging or submissions", "incomplete"))
    if st.params_problem:
        click.echo(colour(export.params_line(st, now), "failed"))
    counted = tasks if some else st.tasks
    c = export.counts(counted)
    # every task read: the TUI's and the page's words ("production finished", "held"); of some, no more
    dline = (export.daemon_line(st, now, e.params.stale_after) if some else
             export.daemon_look(st, now, e.params.stale_after, sum(c[s] for s in S.ACTIVE)))[0]
    if some and not tasks:
        click.echo(f"no task matches   [{dline}]")
        return
    click.echo(f"{len(counted)} task(s){' match' if some else ''}: "
               + ", ".join(colour(f"{c[s]} {s}", s) for s in S.ALL if c.get(s)) + f"   [{dline}]")
    if not tasks:
        click.echo("no tasks yet: `batchman add RUNS`")
        return
    named = named_keys(runs)
    # --state picks tasks, not runs: a run's segment tasks that match are listed one by one (a
    # folded row of them said '0/1 segments completed, 1 failed', and not which segment)
    shown = tasks if states else SV.fold(tasks, lambda key: unfold or key in named)
    rows = [export.table_row(t, now) if isinstance(t, Task) else export.group_row(t) for t in shown]
    for i in range(len(rows) - 1, 0, -1):        # grouped by run: the run number once per group
        if shown[i].run == shown[i - 1].run:
            rows[i][0] = ""
    _echo_lines(table.lines(rows, export.TABLE_HEADERS, export.TABLE_NUMBERS))
    leave_now()


def _echo_lines(lines, chunk: int = 2000) -> None:
    """``lines`` written as they are made, ``chunk`` at a time (a million at 1,000,000 tasks)."""
    out = sys.stdout
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= chunk:
            out.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        out.write("\n".join(batch) + "\n")


def _list_unknown(st, as_json: bool) -> None:
    rows = [{"name": u.name, "job_id": u.job_id, "state": u.state, "seen": u.seen} for u in st.unknown]
    if as_json:
        click.echo(json.dumps({"unknown": rows}, indent=1))
    elif not rows:
        click.echo("no unknown jobs (the daemon looks every 10 iterations; `batchman-daemon oneshot` looks now)")
    else:
        click.echo(tabulate([[r["name"], r["job_id"], r["state"], export.clock(r["seen"])] for r in rows],
                            headers=["job name", "job id", "state", "seen"]))


# Above this many jobs in the batch system listed, their counters are the daemon's copy (it reads
# every spool at least every 5 minutes): a file opened for each of 300,000 running jobs costs ~2 s
# here and minutes on a network filesystem.
REFRESH_MOST = 1000


def _refresh_counters(e: Experiment, tasks: list[Task]) -> None:
    """Counters of running jobs straight from their spool (fresher than the daemon's copy), when
    the list holds at most REFRESH_MOST of them."""
    in_batch = [t for t in tasks if t.state in S.IN_BATCH and t.job_name]
    if len(in_batch) > REFRESH_MOST:
        return
    for t in in_batch:
        c = R.read(e.paths.spool(t.job_name))
        if c:
            t.counters = {**t.counters, **c}


@main.command()
@click.argument("run")
@click.option("--job", default=None, help="Job definition (needed when the run has several).")
@click.option("--segment", "seg", default=None, type=click.IntRange(0), help="Segment number (a per: segment job's task).")
@click.option("--lines", default=15, show_default=True, type=click.IntRange(0, 100_000), help="Lines of the log to show.")
@json_option
@click.pass_context
def show(ctx, run, job, seg, lines, as_json):
    """One task in full: history with reasons, segments, job, log tail. RUN is a run number or a
    task key (2120.reco, or 2120.reco.17 for segment 17 of a per: segment job)."""
    e = exp(ctx)
    key = parse_key(run)
    st = read_named(e, {key[0] if key else int(run)}) if key or run.isdigit() else None
    t = _one_task(st.tasks if st else [], run, job, seg)        # (a RUN that is neither: refused at once)
    _refresh_counters(e, [t])
    hist = e.store.history({t.key, t.run_key}, upto=st.generation)   # a segment's: its run's split too
    logs = {ext: e.paths.log(t.run, t.job, t.attempt, ext, t.seg) for ext in ("out", "err")} if t.attempt else {}
    segs = _segments(e, t)
    if as_json:
        click.echo(json.dumps(_show_json(t, hist, segs, logs), indent=1))
        return
    _show_head(t, time.time())
    click.echo(f"\nsegments ({len(segs)}):")
    for s in segs:
        click.echo(f"  {'staged ' if s['on_disk'] else 'on tape'}  {s['path']}" + (f"  -> {s['cache']}" if s['cache'] and s['cache'] != s['path'] else ""))
    if not segs and (note := export.no_files_note(t, e.params.jobs)):
        click.echo(f"  {note}")
    click.echo("\nhistory:")
    for h in hist:
        click.echo(f"  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(h['t']))}  {h['from'] or '':>10} -> {h['to']:<10} {visible(h['why'])}")
    if t.past or t.used or t.resources:
        click.echo("\nattempts:")
        for line in export.attempt_lines(t):
            click.echo("  " + line)
    for ext, path in logs.items():
        tail = _tail(path, lines)
        click.echo(f"\n{ext} log {path}" + ("" if tail is not None else " (not there yet)"))
        for line in tail or []:
            click.echo("  " + visible(line))


def _one_task(tasks: list[Task], run: str, job: str | None, seg: int | None) -> Task:
    key = parse_key(run)
    if key is not None:
        run, job, seg = key[0], key[1], key[2] if key[2] is not None else seg
    elif not run.isdigit():
        raise click.BadParameter(f"{run!r} is neither a run number nor a task key (2120.reco.17)", param_hint="RUN")
    run = int(run)
    cands = [t for t in tasks if t.run == run and (job is None or t.job == job) and (seg is None or t.seg == seg)]
    named = f"run {run}" + (f" job {job}" if job else "") + (f" segment {seg}" if seg is not None else "")
    if not cands:
        raise click.ClickException(f"{named} is not in the list; `batchman list` shows what is")
    if len({t.job for t in cands}) > 1:
        raise click.ClickException(f"run {run} has several jobs ({', '.join(sorted({t.job for t in cands}))}); choose one "
                                   f"with --job (`batchman list {run}` shows them all)")
    if len(cands) > 1:
        raise click.ClickException(f"{named} has {len(cands)} segment tasks ({', '.join(str(t.seg) for t in cands[:10])}"
                                   f"{', ...' if len(cands) > 10 else ''}); choose one with --segment N "
                                   f"(or name it {cands[0].run_key}.N; `batchman list {cands[0].run_key}` shows them all)")
    return cands[0]


def _segments(e: Experiment, t: Task) -> list[dict]:
    from batchman.backends.factory import make_staging
    try:
        stg = make_staging(e.params)
    except Exception:   # noqa: BLE001 - only for showing cache paths
        stg = None
    segs = []
    for s in t.segments:
        cp = stg.cache_path(s.path) if stg else ""
        segs.append({"path": s.path, "staged": s.staged, "cache": cp, "on_disk": bool(cp) and os.path.exists(cp)})
    return segs


def _show_json(t: Task, hist, segs, logs) -> dict:
    return {**export.row(t, time.time()), "history": hist, "segments": segs,
            "job_name": t.job_name, "logs": logs, "past_attempts": [
                {"n": a.n, "job_id": a.job_id, "state": a.state, "exit_code": a.exit_code,
                 "failure": a.failure, "reason": a.reason, "failure_class": a.failure_class,
                 "node": a.node, "resources": a.resources, "retry": a.retry} for a in t.past],
            "resources": t.resources, "used": t.used}


def _show_head(t: Task, now: float) -> None:
    click.echo(f"run {t.run}  job {t.job}{'' if t.seg is None else f'  segment {t.seg}'}  state {colour(export.state_label(t), t.state)} for {export.duration(now - t.since)}"
               f"  ({visible(t.reason)})")
    if t.error:
        click.echo(colour("error: ", "failed") + visible(t.error))
    if t.warning:
        click.echo("warning: " + visible(t.warning))
    click.echo(f"attempt {t.attempt}" + (f", batch job {t.job_id} ({t.job_name})" if t.job_name else "")
               + (f", element {t.array_index} of job array {t.array_name}" if t.array_name else "")
               + (f", exit code {t.exit_code}" if t.exit_code is not None else "")
               + (f", {t.analysed} segment(s) analysed" if t.analysed is not None else ""))
    if t.counters:
        click.echo("counters: " + export.counters_text(t))
    if t.meta:
        click.echo("run list: " + " ".join(f"{visible(k)}={visible(v)}" for k, v in t.meta.items()))
    for label, files in (("inputs", t.inputs), ("outputs", t.outputs)):
        if files:
            click.echo(f"{label} ({len(files)}):")
            for f in files:
                click.echo(f"  {f}")


def _tail(path: str, n: int) -> list[str] | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            return f.read().decode(errors="replace").splitlines()[-n:]
    except OSError:
        return None


@main.command("export-html")
@click.option("-o", "--output", type=SafePath(dir_okay=False), help="Where to write (default: daemon.html_file).")
@click.pass_context
def export_html(ctx, output):
    """Write the status page now (the daemon also writes it with every change)."""
    e = exp(ctx)
    st = e.store.read()
    out = output or e.params.path("daemon.html_file")
    if not out:
        raise click.ClickException("daemon.html_file is empty in batchman.yaml; give --output PATH")
    from batchman.util.files import atomic_write
    atomic_write(out, e.store.render_html(st))
    click.echo(out)
