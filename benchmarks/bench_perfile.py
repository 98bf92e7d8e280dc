#!/usr/bin/env python3
"""Daemon iterations in a campaign of one job per raw file and a merge per run (issue 18: JLab's
larger halls; examples/per-file's jobs): bench_campaign's iteration, cold and oneshot figures for that shape.

    python benchmarks/bench_perfile.py [--tasks 1000000] [--files 199] [--repeat 3] [--tmp DIR] [--order made|run]

The campaign: runs of --files segment tasks of `reco` (`per: segment`) in bench_daemon's mix
(60 % completed, 20 % running, 10 % queued, 5 % staging, 5 % unstaged), and one NEW `merge`
task per run (`after: reco, all-segments`), written through the store in the order batchman
makes (every merge task first, then each run's segment tasks; --order run: a run's segment
tasks and its merge together, the order of this benchmark's earlier figures). A daemon with
bench_campaign's stand-ins (1 % of the tasks' jobs end at each query; staging says pending)
runs two iterations that are not counted, then --repeat; printed: the median of batchman's
whole time (wall time minus the stand-ins'), the daemon's own part, the longest lock hold,
and the peak memory of that process. Then the same for iterations each right after another
process wrote (a new daemon on its own copy: two rounds not counted, then --repeat; the other
process is bench_campaign's, changing one task's priority in a transaction). The build and
each figure run in a process of their own: a command started by a process holding a million
tasks counts that process's memory as its own peak (Python starts it with vfork). Last, a real
`batchman-daemon oneshot` (local backends) after another process paused the production and
ended 1 % of the jobs, as bench_campaign's oneshot figure, --repeat times. Where
bench_campaign's single job makes no trigger pass, this shape makes them every round
(benchmarks/bench_triggers.py times them alone).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_campaign as BC  # noqa: E402 - also puts the repository on sys.path

from batchman import params as P  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.core.model import Task, job_name  # noqa: E402
from batchman.daemon.engine import Engine  # noqa: E402

JOBS = {"reco": {"per": "segment", "command": "true", "args": "{run} {segment}"},     # (no outputs: the
        "merge": {"trigger": "after: reco, all-segments", "command": "true", "args": "{run}"}}   # stand-in makes none)


def build(root: str, n: int, files: int, order: str = "made") -> None:
    """``order``: "made", the list as batchman makes it (`batchman add` puts each run's reco and
    merge tasks; the daemon's split puts a run's segment tasks in place of its reco task at the
    end: every merge first, then the runs' segment tasks run after run), or "run" (a run's
    segment tasks, then its merge: the order of this benchmark's figures before 2026-12-04)."""
    values = P.defaults()
    values.update(BC.CONFIG)
    with open(os.path.join(root, P.CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(P.render_yaml(values, JOBS))
    status = BC.BD.build(n - n // (files + 1), time.time())
    tasks, runs = [], 0
    for i, t in enumerate(status.tasks):
        t.run, t.job, t.seg = 100000 + i // files, "reco", i % files
        del t.segments[1:]
        BC.pending(t)
        if t.job_name:
            t.job_name = job_name(status.store_id, t, 1)
        tasks.append(t)
        if t.seg == files - 1 or i == len(status.tasks) - 1:
            tasks.append(Task(run=t.run, job="merge", since=t.since, added_at=t.added_at, reason="after reco"))
            runs += 1
    if order == "made":
        tasks = [t for t in tasks if t.seg is None] + [t for t in tasks if t.seg is not None]
    store = BC.open_experiment(root).store
    with store.transaction("bench") as st:
        st.tasks, st.store_id, st.experiment = tasks, status.store_id, status.experiment


def iterations(root: str, repeat: int, cold: bool = False) -> dict:
    """Steady rounds, or (``cold``) rounds each right after another process wrote (bench_campaign's
    other writer: one task's priority changed in a transaction of its own)."""
    params = P.load(root)
    store = BC.store_for(params)
    tasks = store.read().tasks
    queued = {t.job_name for t in tasks if t.state == S.QUEUED}
    batch, staging = BC.CampaignBatch(max(1, len(tasks) // 100), queued), BC.CampaignStaging()
    eng = Engine(params, store, batch, staging, mode="bench")
    eng.run_once()
    eng.run_once()
    walls, own, lock = [], [], []
    for _ in range(repeat):
        if cold:
            BC.write_elsewhere(root)
        batch.seconds = staging.seconds = store.max_lock_seconds = 0.0
        t0 = time.perf_counter()
        rep = eng.run_once()
        walls.append(time.perf_counter() - t0 - batch.seconds - staging.seconds)
        own.append(rep.seconds_own + eng.html_seconds)
        lock.append(store.max_lock_seconds)
    return {"s": statistics.median(walls), "own_s": statistics.median(own), "lock_s": max(lock),
            "all": walls, "rss_gb": BC.peak_gb()}


def child(a, what: str, root: str) -> dict:
    """Run one figure (or the build) in a new Python process; its JSON result."""
    _, out, _ = BC.run([sys.executable, os.path.abspath(__file__), "--child", what, root, "--tasks", str(a.tasks),
                        "--files", str(a.files), "--repeat", str(a.repeat), "--order", a.order])
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=199, help="segment tasks of reco per run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tmp", default=None, help="where the experiment goes (default: the system's temp dir)")
    ap.add_argument("--order", choices=("made", "run"), default="made",
                    help="made: every merge task first, then the segment tasks, as `batchman add` and the "
                         "daemon's split leave them (default); run: each run's segment tasks, then its merge")
    ap.add_argument("--child", nargs=2, metavar=("WHAT", "DIR"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:             # (each figure in a process of its own: its peak memory is its own)
        what, root = a.child
        if what == "build":
            build(root, a.tasks, a.files, a.order)
        print(json.dumps({} if what == "build" else iterations(root, a.repeat, cold=what == "cold")))
        return
    work = tempfile.mkdtemp(prefix="bench-perfile-", dir=a.tmp)
    try:
        pristine = os.path.join(work, "pristine")
        os.makedirs(pristine)
        BC.say(f"building {a.tasks:,} tasks in {work} ...")
        child(a, "build", pristine)
        BC.say("daemon iterations")
        r = child(a, "iterate", BC.clone(pristine, os.path.join(work, "iterate")))
        BC.say("daemon iterations right after another process wrote")
        c = child(a, "cold", BC.clone(pristine, os.path.join(work, "cold")))
        BC.say("batchman-daemon oneshot after another process wrote")
        one = BC.oneshot(BC.clone(pristine, os.path.join(work, "oneshot")), a.tasks, a.repeat)
        print(BC.machine_line(BC.machine()))
        print(f"{a.tasks:,} tasks, runs of {a.files} files and a merge: iteration {r['s']:.2f} s "
              f"(own {r['own_s']:.2f} s), lock held at most {r['lock_s'] * 1e3:.0f} ms, "
              f"peak memory {r['rss_gb']:.2f} GB; each: {', '.join(f'{x:.2f}' for x in r['all'])} s")
        print(f"  right after another process wrote: iteration {c['s']:.2f} s (own {c['own_s']:.2f} s), lock held "
              f"at most {c['lock_s'] * 1e3:.0f} ms; each: {', '.join(f'{x:.2f}' for x in c['all'])} s")
        print(f"  batchman-daemon oneshot after another process wrote: {one['s']:.2f} s (own {one['own_s']:.2f} s), "
              f"peak memory {one['rss_gb']:.2f} GB; each: {', '.join(f'{x:.2f}' for x in one['all'])} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
