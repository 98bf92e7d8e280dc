"""Figures for issue 17: the status page at 1,000 / 10,000 / 100,000 tasks.

For each size, a synthetic production a few days old (two jobs per run over datasets; most
completed, a share waiting, some hundreds queued and running, a few percent failed for a
handful of causes, some with counters and outputs) with a journal of every transition:

* bytes of the page;
* render time (batchman's own time: ``render_html`` from a decoded status, best of 3, wall
  clock and CPU time of this process -- the CPU figure is the one that holds on a busy
  machine), once with the journal summary already cached and once reading the whole
  journal afresh (the first page after an upgrade, or after the summary was deleted);
* Chromium's load-to-paint (``first-contentful-paint`` of the file in headless Chromium,
  through Playwright pointed at the system browser), when Chromium is installed.

    python benchmarks/bench_page.py                    # 1,000 10,000 100,000
    python benchmarks/bench_page.py -n 5000 --no-browser

Issue 18, ``--churn``: the page as the daemon renders it, iteration after iteration, while
1 % of the tasks move one step along the pipeline between renders (new -> unstaged ->
staging -> queued -> running -> completed or failed, and the daemon's heartbeat beats):
in each state the first by run, as a daemon moves them, or anywhere with ``--scatter``.
For each size: the first page (nothing known yet) and the mean of ``--iterations``
renders after it, wall clock and CPU time (the figure that holds on a busy machine), with
the process's peak memory. Without ``batchman.page.live`` (before
issue 18) every render is the whole page, ``render_html``:

    nice -n 5 python benchmarks/bench_page.py --churn -n 10000 -n 100000 -n 1000000

Targets (issue 17): at 100,000 tasks under 1.5 MB, under 0.5 s render, first paint under 1 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from batchman.core import states as S  # noqa: E402
from batchman.core.model import Attempt, Daemon, Segment, Status, Task  # noqa: E402
from batchman.page.render import render_html  # noqa: E402

CAUSES = [("out-of-memory", "exit 137: killed by the kernel (memory)", "out-of-memory: retry 1 of 2 with 8000 MB"),
          ("timeout", "ran over its time limit", ""), ("exit-nonzero", "exit code 3: failing on purpose", ""),
          ("node-fail", "node n012 went down", "node-fail: retry 1 of 3 elsewhere")]


def synthetic(n: int, now: float, journal: str | None = None, seed: int = 1) -> Status:
    """``n`` tasks (n/2 runs x 2 jobs) over three days, and their journal lines if ``journal``."""
    rnd = random.Random(seed)
    start = now - 3 * 86400
    tasks, lines = [], []
    for i in range(n):
        run, job = 1000 + i // 2, ("reco", "hist")[i % 2]
        u = rnd.random()
        st = (S.COMPLETED if u < .6 else S.NEW if u < .88 else S.QUEUED if u < .9 else S.RUNNING if u < .91
              else S.STAGING if u < .93 else S.FAILED if u < .96 else S.SKIPPED if u < .97 else S.UNSTAGED)
        t = Task(run=run, job=job, state=st, since=now, added_at=start,
                 segments=[Segment(f"/tape/run_{run}.{k}", st != S.NEW) for k in range(3)],
                 meta={"dataset": f"D{run % 7}", "quality": "good"})
        ended = start + (now - start) * (i / n) ** .8
        if st in (S.COMPLETED, S.FAILED):
            ran = rnd.lognormvariate(7.5, .4)
            t.started_at, t.finished_at, t.since = ended - ran, ended, ended
            t.attempt, t.job_id, t.exit_code = 1, str(100000 + i), 0
            t.counters = {"events": rnd.randint(1000, 90000), "rate": round(rnd.random() * 50, 1)}
            t.outputs = [f"/data/out/{job}{run:06d}.root"]
        if st == S.FAILED:
            cls, why, retry = CAUSES[i % len(CAUSES)]
            t.failure_class, t.error, t.exit_code = cls, why, 3
            t.past = [Attempt(n=1, job_id=str(i), state=S.FAILED, reason=why, failure_class=cls, retry=retry)] if retry else []
        if st in (S.QUEUED, S.RUNNING):
            t.job_id, t.attempt, t.native_state, t.started_at = str(200000 + i), 1, "PENDING" if st == S.QUEUED else "RUNNING", now - 600
        tasks.append(t)
        if journal is not None and st != S.NEW:
            path = [S.NEW, S.UNSTAGED, S.STAGING, S.STAGED, S.SUBMITTING, S.SUBMITTED, S.QUEUED, S.RUNNING]
            chain = path[:path.index(st) + 1] if st in path else path + [st]
            t0 = min(ended, now) - 3600
            for k in range(1, len(chain)):
                lines.append(json.dumps({"g": 1, "t": round(t0 + k * 400, 3), "task": t.key, "from": chain[k - 1],
                                         "to": chain[k], "why": "", "by": "bench", "s": "bench1"}) + "\n")
    if journal is not None:
        with open(journal, "w") as f:
            f.writelines(lines)
    return Status(generation=1, store_id="bench1", experiment="bench", created=start, tasks=tasks,
                  daemons=[Daemon(id="h:1", host="h", pid=1, started=start, heartbeat=now - 5)])


STEP = {S.NEW: S.UNSTAGED, S.UNSTAGED: S.STAGING, S.STAGING: S.QUEUED, S.QUEUED: S.RUNNING, S.RUNNING: S.COMPLETED}


def churn(st: Status, now: float, rnd: random.Random, share: float = 0.01, scatter: bool = False) -> None:
    """Move ``share`` of all tasks one step along (active ones: an ended task rarely changes;
    a job fails now and then): in each state the first by run, as a daemon moves them (its
    staging limit and submissions go by priority and run), or anywhere if ``scatter``."""
    tasks = st.tasks
    active = [i for i, t in enumerate(tasks) if t.state in STEP]
    k = min(len(active), int(len(tasks) * share))
    if scatter:
        picked = rnd.sample(active, k)
    else:                                    # the first of each state, in proportion to its size
        by_state: dict[str, list[int]] = {}
        for i in active:
            by_state.setdefault(tasks[i].state, []).append(i)
        picked = [i for m in by_state.values() for i in m[:max(1, k * len(m) // len(active))]]
    for i in picked:
        t = tasks[i]
        nxt = STEP[t.state]
        if nxt == S.COMPLETED and rnd.random() < .05:
            nxt = S.FAILED
            t.error, t.failure_class = CAUSES[i % len(CAUSES)][1], CAUSES[i % len(CAUSES)][0]
        if nxt in (S.QUEUED, S.RUNNING):
            t.job_id, t.attempt, t.native_state, t.started_at = str(300000 + i), 1, nxt.upper(), now
        if nxt in (S.COMPLETED, S.FAILED):
            t.finished_at = now
            t.counters = {"events": rnd.randint(1000, 90000)}
        t.state, t.since = nxt, now
    st.generation += 1
    st.daemons[0].heartbeat = now


def churn_figures(sizes: list[int], iterations: int, scatter: bool) -> None:
    import resource
    try:
        from batchman.page.live import LivePage
    except ImportError:                      # before issue 18: the whole page every time
        LivePage = None
    print(f"{'tasks':>8} {'first page s':>13} {'cpu s':>6} {'per render s':>13} {'cpu s':>6} {'skipped':>8}"
          f" {'bytes':>10} {'peak RSS MB':>12}")
    for n in sizes:
        now = time.time()
        st = synthetic(n, now)
        gc.collect()
        gc.freeze()                          # as the store leaves a status it read (_decode_untracked)
        rnd = random.Random(2)
        clock = [now]
        live = LivePage(stale_after=300, refresh=60, title="bench", clock=lambda: clock[0]) if LivePage else None

        def render():
            return live(st) if live else render_html(st, now=clock[0], stale_after=300, refresh=60, title="bench")
        t0, c0 = time.perf_counter(), time.process_time()
        out = render()
        first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        size = len("".join(out).encode())
        spent = cpu = 0.0
        for _ in range(iterations):
            clock[0] += 10
            churn(st, clock[0], rnd, scatter=scatter)
            t0, c0 = time.perf_counter(), time.process_time()
            render()
            spent += time.perf_counter() - t0
            cpu += time.process_time() - c0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>8} {first:>13.3f} {first_cpu:>6.3f} {spent / iterations:>13.3f} {cpu / iterations:>6.3f}"
              f" {live.skipped if live else 0:>8} {size:>10}"
              f" {rss:>12.0f}", flush=True)
        del st, live
        gc.unfreeze()


def best(fn, k: int = 3, clock=time.perf_counter) -> float:
    out = []
    for _ in range(k):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return min(out)


def first_paint(browser, path: str) -> float:
    page = browser.new_page(viewport={"width": 412, "height": 915})
    page.goto("file://" + path)
    fcp = page.evaluate("""new Promise(done => {
        new PerformanceObserver(list => list.getEntries().forEach(e => {
            if (e.name === 'first-contentful-paint') done(e.startTime); })).observe({type: 'paint', buffered: true});
        setTimeout(() => done(-1000), 5000); })""")
    page.close()
    return fcp / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, action="append", help="tasks (repeatable; default 1000 10000 100000)")
    ap.add_argument("--no-browser", action="store_true", help="skip Chromium's load-to-paint")
    ap.add_argument("--churn", action="store_true", help="issue 18: renders while 1 %% of the tasks change")
    ap.add_argument("--iterations", type=int, default=5, help="--churn: renders after the first (default 5)")
    ap.add_argument("--scatter", action="store_true", help="--churn: the changed tasks anywhere (the worst case)")
    a = ap.parse_args()
    sizes = a.n or [1000, 10000, 100000]
    if a.churn:
        return churn_figures(sizes, a.iterations, a.scatter)
    browser = pw = None
    chromium = shutil.which("chromium")
    if not a.no_browser and chromium:
        from playwright.sync_api import sync_playwright
        pw = sync_playwright().start()
        browser = pw.chromium.launch(executable_path=chromium)
    now = time.time()
    print(f"{'tasks':>8} {'bytes':>10} {'render s':>9} {'cpu s':>6} {'cold journal s':>15} {'journal lines':>14}"
          f" {'first paint s':>14}")
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            journal = os.path.join(d, f"s{n}.journal")
            st = synthetic(n, now, journal)
            nlines = sum(1 for _ in open(journal))
            cold = best(lambda: (os.path.exists(journal + ".page") and os.remove(journal + ".page"),
                                 render_html(st, now=now, journal=journal)), 1)
            warm = best(lambda: render_html(st, now=now, journal=journal))
            cpu = best(lambda: render_html(st, now=now, journal=journal), clock=time.process_time)
            text = render_html(st, now=now, journal=journal)
            path = os.path.join(d, f"page{n}.html")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            fcp = f"{first_paint(browser, path):.3f}" if browser else "n/a"
            print(f"{n:>8} {len(text.encode()):>10} {warm:>9.3f} {cpu:>6.3f} {cold:>15.3f} {nlines:>14} {fcp:>14}")
    if browser:
        browser.close()
        pw.stop()


if __name__ == "__main__":
    main()
