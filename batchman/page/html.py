"""The status page assembled: header with progress, problems, plots, breakdowns, rows.

Everything a job, a batch system or a person put in (job names, counters, reasons,
run-list columns, host names, outputs) goes through ``html.escape`` here; numbers and
our own words are the only text that does not.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from itertools import groupby

from batchman.core import segview as SV
from batchman.core import states as S
from batchman.core.model import Status, Task
from batchman.page import assets, svg, summary as SM, timeline
from batchman.page.tally import Tally, problem_key
from batchman.page.render import attempt_lines, batch_line, counters_text, detail, duration, params_line, staged_count

ROW_CAP = 2000          # problem and active rows listed one by one; the rest as run ranges
BULK_ROWS = 200         # a bulk state with at most this many tasks also lists their rows (on demand)
RETRIED_CAP = 200

e = html.escape


def _clock(t: float, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.localtime(t))


def header(status: Status, p: SM.Progress, now: float, stale_after: float, refresh: int, title: str,
           hb: tuple) -> list[str]:
    """The page's head; ``hb``: the daemon line (SM.heartbeat)."""
    text, level, beat = hb
    aged = ""
    if beat is not None:
        aged = f", heartbeat <span data-t='{beat:.0f}'>{duration(now - beat)}</span> ago"
        aged += ": is it running?" if level == "bad" else ""
    out = [f"<header><h1>batchman: {e(title)}</h1>",
           f"<p id='hb' class='{level}'>{e(text)}{aged}</p>",
           "<p id='stale' class='stale' hidden></p>",
           f"<p class='mute'>page written {_clock(now)} (generation {status.generation}),"
           f" refreshed every {refresh} s; a daemon counts as gone after {duration(stale_after)} without a beat</p>"]
    out += progress_block(p, now, status.paused)
    for line, cls in ((params_line(status, now), "bad"), (SM.pause_line(status), "bad"),
                      (batch_line(status, now), "bad"), (_staging_line(status), "bad")):
        if line:
            out.append(f"<p class='{cls}'>{e(line)}</p>")
    out.append(f"<p class='mute'>{e(_health(status, now))}</p></header>")
    return out


def progress_block(p: SM.Progress, now: float, paused: bool = False) -> list[str]:
    """Done of total, the bar, the counts and the facts; no end is estimated while the
    production is paused (nothing new starts until `batchman resume`)."""
    pct = 100.0 * p.done / p.total if p.total else 0.0
    bar = "".join(f"<span class='{svg.STYLE[g]}' style='width:{w:.2f}%' title='{g} {n}'></span>"
                  for g, n, w in SM.bar_segments(p.counts, p.total))
    counts = "".join(f"<li class='s-{s}'>{s} <b>{p.counts[s]}</b></li>" for s in S.ALL if p.counts.get(s))
    facts = [f"{p.last_hour} ended in the last hour"]
    if p.rate_per_hour:
        facts.append(f"{p.rate_per_hour:.0f}/h lately")
    if p.eta_s is not None and paused:
        facts.append("no end estimated while paused")
    elif p.eta_s is not None:
        facts.append(f"end in ~{duration(p.eta_s)} ({_clock(now + p.eta_s, '%m-%d %H:%M')})")
    elif not p.pending and p.total:
        facts.append("nothing pending")
    if p.held:
        facts.append(f"{p.held} held (no end estimated for them: `batchman release` lets them go on)")
    if p.failure_rate is not None:
        facts.append(f"failure rate {100 * p.failure_rate:.1f}% lately")
    return [f"<p class='big' id='progress'>{p.done} of {p.total} done ({pct:.1f}%)</p>",
            f"<div class='progress' id='bar' role='img' aria-label='tasks by state'>{bar}</div>",
            f"<ul class='counts' id='counts'>{counts}</ul>",
            "<p class='facts'>" + "".join(f"<span>{f}</span>" for f in facts) + "</p>"]


def _staging_line(status: Status) -> str:
    t = status.staging_unreachable_since
    return f"staging system unreachable since {_clock(t, '%m-%d %H:%M')}" if t else ""


def _health(status: Status, now: float) -> str:
    calls = int(sum(c[1] for c in status.batch_calls if c[0] > now - 3600))
    out = ("batch system unreachable" if status.batch_unreachable_since else "batch system reachable")
    out += f"; load: {calls} call(s) in the last hour"
    li = status.last_iteration
    if li is not None and li.at:
        out += f"; last round {_clock(li.at, '%H:%M:%S')} took {li.seconds:.1f} s"
    if status.batch_last_error:
        out += f"; last error {_clock(status.batch_last_error_at or 0, '%m-%d %H:%M')}: {status.batch_last_error[:300]}"
    return out


def problems(groups: list[SM.ProblemGroup], anchors: dict[tuple, str]) -> list[str]:
    if not groups:
        return []
    out = ["<section class='problems'><h2>Problems</h2><ul>"]
    for g in groups[:50]:
        what = f"{len(g.runs)} run(s) {g.state} [{g.cause}]: {g.reason}"
        retry = f"; {g.retry}" if g.retry else ""
        a = anchors.get((g.state, g.cause, g.reason))
        link = f" <a href='#{a}'>rows</a>" if a else ""
        out.append(f"<li class='s-{g.state}'><b>{e(what)}</b>{e(retry)}: {_run_list(g.ranges)}{link}</li>")
    if len(groups) > 50:
        out.append(f"<li>… {len(groups) - 50} smaller group(s) in the rows below</li>")
    return out + ["</ul></section>"]


def _run_list(ranges: str, head: int = 12) -> str:
    """The first ``head`` ranges, the rest on demand: '2040-2049, 2051, … (all 37 ranges)'."""
    pieces = ranges.split(",")
    if len(pieces) <= head:
        return f"<span class='ranges'>{e(', '.join(pieces))}</span>"
    return (f"<span class='ranges'>{e(', '.join(pieces[:head]))}, …</span><details><summary>all {len(pieces)}"
            f" ranges</summary><p class='ranges'>{e(', '.join(pieces))}</p></details>")


def plots(tally: Tally, deltas: dict, now: float, counts: Counter) -> list[str]:
    current: Counter = Counter()
    for s, n in counts.items():
        current[SM.GROUP_OF.get(s, "waiting")] += n
    out = []
    first = timeline.first_bucket(deltas)
    if first is not None:
        start, width = first
        since = max(now - 86400, start - width)
        day = svg.state_areas(timeline.series(deltas, current, since, now), "tasks per state, last 24 hours")
        whole = ""
        if start < now - 86400:
            whole = svg.state_areas(timeline.series(deltas, current, start, now), "tasks per state, whole production")
        span = "last 24 h" if since <= now - 86400 else f"since {_clock(since, '%m-%d %H:%M')}"
        out += [f"<figure><figcaption>Tasks per state, {span}</figcaption>{day}</figure>"]
        if whole:
            out.append(f"<figure><figcaption>Tasks per state, whole production</figcaption>{whole}</figure>")
    if tally.times:
        limit, slowest = tally.slow_tail()
        hist = svg.histogram_of(*tally.run_time_bins(), limit, title="job run times")
        slow = ", ".join(f"{r} ({duration(d)})" for d, r in slowest)
        slow = f"; slowest runs: {slow}" if slow else ""
        out.append(f"<figure><figcaption>Run times of {len(tally.times)} completed job(s){slow}"
                   f"</figcaption>{hist}</figure>")
    return ["<section class='plots'>", *out, "</section>"] if out else []


def breakdowns(tally: Tally, tasks: list[Task], job_order: tuple[str, ...] = ()) -> list[str]:
    out = []
    jobs = tally.breakdown("job")
    if len(jobs) > 1:
        first = {j: jobs.pop(j) for j in job_order if j in jobs}      # (batchman.yaml's order; others after, by name)
        out += _breakdown_table("Per job", first | jobs)
    if any("dataset" in t.meta for t in tasks[:1000]):
        out += _breakdown_table("Per dataset", tally.breakdown("dataset"))
    return out


def _breakdown_table(title: str, rows: dict[str, Counter]) -> list[str]:
    groups = [g for g, _ in SM.GROUPS]
    head = "".join(f"<th>{g}</th>" for g in groups)
    out = [f"<h2>{title}</h2><div class='wide'><table class='num'><thead><tr><th></th>{head}<th>total</th></tr></thead><tbody>"]
    for name, c in rows.items():
        per = Counter()
        for s, n in c.items():
            per[SM.GROUP_OF.get(s, "waiting")] += n
        cells = "".join(f"<td>{per[g]}</td>" for g in groups)
        out.append(f"<tr><td>{e(name or '(none)')}</td>{cells}<td>{sum(c.values())}</td></tr>")
    return out + ["</tbody></table></div>"]


ROW_HEAD = ("<thead><tr><th>run</th><th>job</th><th>state</th><th>for</th><th>detail</th>"
            "<th>job id</th><th>try</th><th>counters</th><th>outputs</th></tr></thead>")


def task_row(t: Task, now: float, anchor: str = "") -> str:
    flags = "".join(f" [{x}]" for x in SV.task_flags(t))
    ident = f" id='{anchor}'" if anchor else ""
    segs = f"{staged_count(t)}/{len(t.segments)} staged; " if t.segments and t.state in S.BEFORE_BATCH else ""
    return (f"<tr class='s-{t.state}'{ident}><td>{t.run}</td><td>{e(SV.job_label(t))}</td><td>{t.state}{e(flags)}</td>"
            f"<td>{duration(now - t.since) if t.since else ''}</td><td class='d'>{e(segs + detail(t))}</td>"
            f"<td class='j'>{e(t.job_id)}</td><td class='a'>{t.attempt or ''}</td><td>{e(counters_text(t))}</td>"
            f"<td>{'<br>'.join(e(o) for o in t.outputs)}</td></tr>")


def rows_section(tally: Tally, tasks: list[Task], now: float, shown: tuple | None = None,
                 job_order: tuple[str, ...] = ()) -> tuple[list[str], dict[tuple, str]]:
    """The rows, a run's tasks in ``job_order`` (batchman.yaml's, as `batchman list`), then by
    segment: each problem group and active state as the tally lists them (by run and job name)."""
    listed, over = shown or tally.listed(tasks, ROW_CAP)
    anchors: dict[tuple, str] = {}
    body = []
    heads = groupby(listed, key=lambda t: problem_key(t) if t.state in S.PROBLEM else t.state)
    for t in (t for _, head in heads for t in SV.by_run(list(head), job_order)):
        a = ""
        if t.state in S.PROBLEM:
            k = problem_key(t)
            if k not in anchors:
                a = anchors[k] = f"g{len(anchors) + 1}"
        body.append(task_row(t, now, a))
    out = ["<section class='tasks'><h2>Tasks</h2>",
           "<p><input id='filter' type='search' placeholder='filter rows: run, state, reason…' hidden"
           " aria-label='filter rows'> <span id='shown' class='mute'></span></p>"]
    if body:
        out += [f"<table class='rows'>{ROW_HEAD}<tbody>", "\n".join(body), "</tbody></table>"]
    for s in S.ALL:
        if s in over:
            n, ranges = over[s]
            out.append(f"<details><summary>{n} more {s} run(s) not listed</summary>"
                       f"<p class='ranges'>{e(ranges)}</p></details>")
    out += bulk(tally, tasks, now, job_order) + segment_runs(tally, job_order=job_order)
    return out + ["</section>"], anchors


def segment_runs(tally: Tally, cap: int = 500, job_order: tuple[str, ...] = ()) -> list[str]:
    """One line per run of a per: segment job (issue 18), '37/120 segments completed, 2 failed';
    the runs with a segment that needs a person first."""
    groups = tally.segmented
    if not groups:
        return []
    shown = {k: SV.shown_state(c) for k, c in groups.items()}
    rank = {j: i for i, j in enumerate(job_order)}
    order = sorted(groups, key=lambda k: (shown[k] not in S.PROBLEM, k[0], rank.get(k[1], len(rank)), k[1]))
    rows = "".join(f"<tr class='s-{shown[k]}'><td>{k[0]}</td><td>{e(k[1])}[*]</td><td>{shown[k]}</td>"
                   f"<td class='d'>{e(SV.summary(groups[k]))}</td></tr>" for k in order[:cap])
    more = f"<p class='mute'>{len(order) - cap} more run(s) not listed</p>" if len(order) > cap else ""
    return [f"<details open><summary>{len(groups)} run(s) with one task per segment</summary>"
            f"<table class='rows'><thead><tr><th>run</th><th>job</th><th>state</th><th>segments</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{more}</details>"]


def bulk(tally: Tally, tasks: list[Task], now: float, job_order: tuple[str, ...] = ()) -> list[str]:
    out = []
    for s in SM.BULK:
        n, runs = tally.counts[s], tally.runs[s]
        if not n:
            continue
        out.append(f"<details class='s-{s}'><summary>{n} {s} task(s), {len(runs)} run(s)</summary>"
                   f"<p class='ranges'>{e(runs.ranges())}</p>")
        if n <= BULK_ROWS:
            rows = SV.by_run(tally.in_state(tasks, s), job_order)
            out += [f"<table class='rows'>{ROW_HEAD}<tbody>", "".join(task_row(t, now) for t in rows),
                    "</tbody></table>"]
        out.append("</details>")
    return out


def extras(status: Status, tally: Tally) -> list[str]:
    out = []
    if status.unknown:
        out.append("<p class='bad'>Unknown jobs under our name (not in the status file; `batchman adopt` takes them in): "
                   + e(", ".join(f"{u.name} ({u.job_id}, {u.state})" for u in status.unknown)) + "</p>")
    retried = tally.first_retried(status.tasks, RETRIED_CAP)
    if retried:
        out.append("<details><summary>Attempts of runs tried more than once</summary><p>" + "<br>".join(
            f"{t.run} {e(t.job)}: " + e(x) for t in retried for x in attempt_lines(t)) + "</p></details>")
    li = status.last_iteration
    if li is not None and li.errors:
        out.append("<p><b>Last round's problems:</b><br>" + "<br>".join(e(x) for x in li.errors[:50]) + "</p>")
    return out


def page(status: Status, now: float, stale_after: float, refresh: int, title: str,
         deltas: dict | None = None, job_order: tuple[str, ...] = ()) -> str:
    """The whole page of a status seen once. ``deltas`` are the journal's bucketed changes
    (batchman.page.timeline)."""
    return "".join(parts(status, Tally(status.tasks), now, stale_after, refresh, title, deltas, job_order=job_order))


def one_by_one(tally: Tally, tasks: list[Task]) -> tuple[tuple, list[Task]]:
    """The tasks the page shows one row each: (listed, runs left out), and every task shown
    in full (listed, bulk rows, retried ones) -- what a page changes with besides the tally."""
    listed = tally.listed(tasks, ROW_CAP)
    few = [t for s in SM.BULK if 0 < tally.counts[s] <= BULK_ROWS for t in tally.in_state(tasks, s)]
    return listed, listed[0] + few + tally.first_retried(tasks, RETRIED_CAP)


def parts(status: Status, tally: Tally, now: float, stale_after: float, refresh: int, title: str,
          deltas: dict | None = None, listed: tuple | None = None, hb: tuple | None = None,
          job_order: tuple[str, ...] = ()) -> list[str]:
    """The page in pieces, to be written one after the other, from a ``tally`` already in step
    with ``status.tasks``: only the tasks it shows one by one are looked at. ``listed``:
    ``one_by_one(...)[0]`` if already known; ``hb``: the daemon line (SM.heartbeat), if made;
    ``job_order``: batchman.yaml's jobs, the order of a run's rows and of the jobs' table."""
    title = title or status.experiment
    p = tally.progress(now)
    rows, anchors = rows_section(tally, status.tasks, now, listed, job_order)
    # the stale check is armed only while a daemon is expected to rewrite the page (not for a
    # production finished, nor one whose pending tasks are all held: no daemon would run; a
    # oneshot's round with work left: the next oneshot, from cron, is)
    hb = hb or SM.heartbeat(status, now, stale_after, p)
    armed = stale_after if (status.daemons or hb[1] == "bad" or (p.pending > p.held and status.last_round)) else 0
    return [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<noscript><meta http-equiv='refresh' content='{refresh}'></noscript>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>batchman: {e(title)}</title><style>{assets.CSS}</style></head>",
        f"<body data-written='{now:.0f}' data-stale='{armed:.0f}' data-refresh='{refresh}'>",
        svg.DEFS,
        *header(status, p, now, stale_after, refresh, title, hb),
        *problems(tally.problem_groups(status.tasks), anchors),
        *plots(tally, deltas or {}, now, p.counts),
        *breakdowns(tally, status.tasks, job_order),
        *rows,
        *extras(status, tally),
        "<footer><p class='mute'>Written by batchman. Works without scripts; with them the heartbeat"
        " ages live and the rows can be filtered.</p></footer>",
        f"<script>{assets.SCRIPT}</script></body></html>",
    ]
