#!/usr/bin/env python3
"""What the trigger passes cost a daemon round in a campaign of one job per raw file and a merge
per run (issue 18; examples/per-file's jobs): --runs runs of --files segment tasks of `reco`
(60 % completed, 20 % running, 10 % queued, 5 % staging, 5 % unstaged) and one NEW `merge` task
each, waiting for them (`after: reco, all-segments`). 5,000 x 199 + 5,000 = 1,000,000 tasks by default.

    python benchmarks/bench_triggers.py [--runs 5000] [--files 199]

A round makes three passes over every task when the jobs are defined in batchman.yaml:
  gates      observe: what each NEW task waits for (every merge step's segments counted)
  to_create  the record step: the (run, job) pairs that have a task, and the after: dependents
             missing (ahead of the lock, or under it when another process wrote meanwhile)
  stuck      the end of the round: the gates again, on the tasks as the round left them, to
             say whether work is left
  work_left  what the end of the round does now: the stuck ones found only if a task that may
             be stuck comes before any work (here a running reco task comes first)
Each is timed three times on the same tasks (median), looked for afresh each time as any
process's first round does. "kept" lines: the same with what the daemon keeps across its rounds
(core/triggers.Scan: the (run, job) pairs, the places of each run's segment tasks, the gate of
each merge step until a task of its run changes), in a round where 1 % of the tasks changed
state in place and 20 tasks were appended: "runs in order" when they are the next 1 % of the
list (jobs end about in the order they were submitted, run after run: ~50 runs touched a
round), "spread" when they are taken at random (every run touched: each gate made again).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from batchman import params as P  # noqa: E402
from batchman.core import decide as D  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.core import triggers as J  # noqa: E402
from batchman.core.model import Segment, Task  # noqa: E402

MIX = ([S.COMPLETED, S.RUNNING, S.QUEUED, S.STAGING, S.UNSTAGED], [60, 20, 10, 5, 5])


def campaign(runs: int, files: int) -> list[Task]:
    rnd = random.Random(1)
    tasks = []
    for r in range(100000, 100000 + runs):
        for s in range(files):
            st = rnd.choices(*MIX)[0]
            tasks.append(Task(run=r, job="reco", seg=s, state=st, segments=[Segment(f"/t/run_{r}.dat.{s}")],
                              outputs=(f"out/reco{r}_{s}.txt",) if st == S.COMPLETED else ()))
        tasks.append(Task(run=r, job="merge", state=S.NEW))
    return tasks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--files", type=int, default=199, help="segment tasks of reco per run")
    a = ap.parse_args()
    here = tempfile.mkdtemp(prefix="bench-triggers-")
    try:
        root = os.path.join(here, "per-file")
        shutil.copytree(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "per-file"), root)
        jobs = P.load(root).jobs
    finally:
        shutil.rmtree(here, ignore_errors=True)
    tasks = campaign(a.runs, a.files)
    gc.collect()
    gc.freeze()          # (as the daemon's status: never walked by the collector)
    print(f"{len(tasks):,} tasks: {a.runs:,} runs of {a.files} reco segment tasks and a NEW merge")
    for name, fn in (("gates", lambda: J.gates(tasks, jobs)), ("to_create", lambda: J.to_create(tasks, jobs, [])),
                     ("stuck", lambda: J.stuck(tasks, jobs)),
                     ("work_left", lambda: D.has_work(tasks, D.Policy(), lambda: J.stuck(tasks, jobs)))):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        print(f"  {name:10s} {statistics.median(times) * 1e3:8.1f} ms")
    rnd, at = random.Random(2), 0

    def written(how: str) -> list[Task]:
        nonlocal at
        n = len(tasks) // 100
        if how == "spread":
            return rnd.sample(tasks, n)
        at = at + n if at + 2 * n <= len(tasks) else 0      # (the next 1 %, from the start again at the end)
        return tasks[at:at + n]

    for how in ("runs in order", "spread"):
        scan = J.Scan()
        J.gates(tasks, jobs, scan=scan), J.to_create(tasks, jobs, [], scan)
        for name, fn in (("gates", lambda: J.gates(tasks, jobs, scan=scan)),
                         ("to_create", lambda: J.to_create(tasks, jobs, [], scan))):
            times = []
            for _ in range(3):
                for t in written(how):
                    t.state = t.state      # (as a decision writes it: in place)
                tasks.extend(Task(run=10**6 + len(tasks), job="reco", seg=0) for _ in range(20))
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            print(f"  {name:10s} {statistics.median(times) * 1e3:8.1f} ms  kept, 1 % written: {how}")


if __name__ == "__main__":
    main()
