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

Targets (issue 17): at 100,000 tasks under 1.5 MB, under 0.5 s render, first paint under 1 s.
"""

from __future__ import annotations

import argparse
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
    a = ap.parse_args()
    sizes = a.n or [1000, 10000, 100000]
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
