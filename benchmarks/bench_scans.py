#!/usr/bin/env python3
"""The daemon's own per-iteration work outside the store and the page (issue 18), by phase.

    nice -n 5 python benchmarks/bench_scans.py --size 100000 [--repeat 3] [--from DIR]

Builds bench_campaign's experiment of SIZE tasks (or hard-links the status file of ``--from``,
e.g. /work/bench1m, read only), then runs bench_campaign's steady iteration (its stand-in batch
system ends 1 % of the jobs at each query) in this process: one uncounted iteration, ``--repeat``
measured ones (iter: wall time minus the stand-ins; own: the daemon's "ms in batchman" plus the
page, as bench_campaign's columns), each followed by the loop's ``next_wakeup``; then one more
under cProfile, whose cumulative seconds are printed per phase: observing, deciding, the
engine's helpers, recording, the outputs step, and (for reference) the store and the page.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_campaign as BC  # noqa: E402 - also puts the repository on sys.path

from batchman import params as P  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.experiment import store_for  # noqa: E402

# (phase, (file suffix, function name)...): cumulative seconds of each in the profiled iteration
PHASES = [
    ("observe", ("daemon/observe.py", "observe")),
    ("  markers", ("daemon/observe.py", "_markers"), ("daemon/observe.py", "_markers_after")),
    ("  finished", ("daemon/observe.py", "_finished")),
    ("read_counters", ("daemon/observe.py", "read_counters")),
    ("command_watch", ("daemon/command_watch.py", "check")),
    ("plan_budget", ("core/plan.py", "plan_budget")),
    ("  Budget.of", ("core/decision.py", "of")),
    ("  decide_task", ("core/decide.py", "decide_task")),
    ("_asked", ("daemon/engine.py", "_asked")),
    ("record_decisions", ("daemon/record.py", "record_decisions")),
    ("record_arrays", ("daemon/record.py", "record_arrays")),
    ("record_counters", ("daemon/record.py", "record_counters")),
    ("apply_cleared", ("daemon/record.py", "apply_cleared")),
    ("record_results", ("daemon/record.py", "record_results")),
    ("_forget_ended", ("daemon/engine.py", "_forget_ended")),
    ("has_work", ("core/decide.py", "has_work")),
    ("stuck", ("core/jobs.py", "stuck")),
    ("blocked_by_command", ("core/decision.py", "blocked_by_command")),
    ("outputs step", ("notify/step.py", "step")),
    ("next_wakeup", ("daemon/engine.py", "next_wakeup")),
    ("Task.key", ("core/model.py", "key")),
    ("(store read)", ("store/store.py", "read")),
    ("(store transaction)", ("store/store.py", "transaction"), ("store/store.py", "__exit__")),
    ("(page)", ("store/store.py", "flush_html")),
]


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def pristine(n: int, source: str | None, work: str) -> str:
    if source:
        return source
    root = os.path.join(work, "pristine")
    os.makedirs(root)
    BC.build(root, n)
    return root


def phases(prof: cProfile.Profile) -> list[tuple[str, float, int]]:
    stats = pstats.Stats(prof).stats          # (file, line, name) -> (cc, nc, tt, ct, callers)
    out = []
    for name, *funcs in PHASES:
        ct, calls = 0.0, 0
        for (path, _line, fn), (_cc, nc, _tt, cum, _callers) in stats.items():
            if any(path.endswith(suffix) and fn == f for suffix, f in funcs):
                ct, calls = ct + cum, calls + nc
        out.append((name, ct, calls))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--from", dest="source", help="an experiment of SIZE tasks to copy (read only)")
    ap.add_argument("--top", type=int, default=0, help="also print the profile's N top functions by own time")
    a = ap.parse_args()
    from batchman.daemon.engine import Engine
    work = tempfile.mkdtemp(prefix=f"bench-scans-{a.size}-")
    try:
        t0 = time.perf_counter()
        root = BC.clone(pristine(a.size, a.source, work), os.path.join(work, "iterate"))
        say(f"{a.size} tasks ready in {time.perf_counter() - t0:.1f} s")
        params = P.load(root)
        store = store_for(params)
        queued = {t.job_name for t in store.read().tasks if t.state == S.QUEUED}
        batch, staging = BC.CampaignBatch(max(1, a.size // 100), queued), BC.CampaignStaging()
        eng = Engine(params, store, batch, staging, mode="bench")
        eng.run_once()
        eng.next_wakeup(60.0)
        walls, owns, changes = [], [], []
        for _ in range(a.repeat):
            batch.seconds = staging.seconds = 0.0
            t0 = time.perf_counter()
            rep = eng.run_once()
            eng.next_wakeup(60.0)
            walls.append(time.perf_counter() - t0 - batch.seconds - staging.seconds)
            owns.append(rep.seconds_own + eng.html_seconds)
            changes.append(len(rep.transitions))
        say(f"iter {statistics.median(walls):.2f} s (all {', '.join(f'{w:.2f}' for w in walls)}), "
            f"own {statistics.median(owns):.2f} s, changes {statistics.median(changes):.0f}")
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(lambda: (eng.run_once(), eng.next_wakeup(60.0)))
        total = time.perf_counter() - t0
        print(f"tasks {a.size}: iter {statistics.median(walls):.2f} s, own {statistics.median(owns):.2f} s; "
              f"profiled iteration {total:.2f} s, cumulative per phase:")
        for name, ct, calls in phases(prof):
            print(f"  {name:<22} {ct:7.3f} s  {calls:>9} call(s)")
        if a.top:
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(a.top)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
