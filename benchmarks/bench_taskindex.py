#!/usr/bin/env python3
"""The first index of the tasks by key (core/taskindex.py), which every process that reads the
status file whole and writes makes, in campaigns of several shapes (issue 18): runs x segment
tasks of `reco` plus a `merge` per run, in the status file's order (a run's segment tasks
together), and with --seg, other multipliers for the segment's part of a task's number.

    python benchmarks/bench_taskindex.py [--seg 17592187044416 --seg ...] [--repeat 3]

What it answers: whether the segment tasks of a run fall into one chain of the index's table
(a multiplier whose low bits are 0, as 2**44 was: the table's slot is a number's low bits). For
each shape and multiplier: the fastest of --repeat builds, in seconds. The first column is the
multiplier in the code (taskindex.SEG).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from batchman.core import taskindex as TI  # noqa: E402
from batchman.core.model import Task  # noqa: E402

SHAPES = ((5000, 199), (50000, 19), (500, 1999), (1000000, 1), (1000000, 0))     # runs, files (0: a job a run)


def campaign(runs: int, files: int) -> list[Task]:
    tasks = []
    for r in range(100000, 100000 + runs):
        tasks += [Task(run=r, job="reco", seg=s) for s in range(files)]
        tasks.append(Task(run=r, job="merge" if files else "reco"))
    return tasks


def build(tasks: list[Task], seg: int, repeat: int) -> float:
    TI.SEG, best = seg, float("inf")
    for _ in range(repeat):
        TI._SEGS.clear()            # (its parts are of the multiplier it was made with)
        t0 = time.perf_counter()
        idx = TI.TaskIndex(tasks)
        best = min(best, time.perf_counter() - t0)
        if len(idx) != len(tasks) or idx.of(tasks[-2]) is not tasks[-2]:
            raise SystemExit(f"the index of {len(tasks)} tasks with SEG {seg} is wrong")
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seg", type=int, action="append", default=[], help="another multiplier (repeatable); "
                    f"2**44 = {1 << 44} was the one before")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    gc.disable()                    # (as a oneshot: the collector off while it makes a million tasks)
    segs = [TI.SEG, *a.seg]
    print(f"{'runs x files':>18} " + " ".join(f"{s:>16}" for s in segs))
    for runs, files in SHAPES:
        tasks = campaign(runs, files)
        print(f"{runs:>9} x {files:<6} " + " ".join(f"{build(tasks, s, a.repeat):>15.3f}s" for s in segs), flush=True)
        del tasks
    return 0


if __name__ == "__main__":
    sys.exit(main())
