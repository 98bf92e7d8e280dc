#!/usr/bin/env python3
"""Where the time of a `batchman-daemon oneshot` goes, step by step (issue 18's last figure).

    python benchmarks/bench_oneshot.py [--tasks 1000000] [--perfile] [--repeat 3] [--json FILE]
                                       [--pristine DIR] [--keep] [--tmp DIR]

The campaign is bench_campaign.py's (one job a run), or with --perfile bench_perfile.py's (a
`reco` task per raw file and a `merge` per run); --pristine DIR takes one already built (a
directory that --keep left, `pristine` in it). As bench_campaign's oneshot figure, before each
run another process pauses the production and ends 1 % of the local batch system's jobs; then,
in a new process of its own on a fresh copy, the steps `batchman-daemon oneshot` runs
(daemon/main.py: one round, the unknown jobs, compaction when due, unregistering, the page),
with the steps below timed where they are. For each: wall time, user and system CPU time, and
the minor page faults (a fault is the kernel handing over one fresh 4 KB page: most of the
system time of a process that makes a million tasks), the median of --repeat runs. Steps are
inclusive (indented ones are part of the step above); "elsewhere" is the process's time in no
step; "the process" adds starting Python and the imports. Last: the cost of a fault (the
process's system time / its faults), and the
machine's speed line (bench_campaign: a Python loop, 1 GB of fresh memory).

What it answers: which part of a oneshot grows with every task (reading, indexing, the
page's saved tally), which with the live tasks (the keepers, observing, deciding), and how
much is the kernel giving fresh memory. It measures the code of the checkout it is in.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_campaign as BC  # noqa: E402 - also puts the repository on sys.path

ME = os.path.abspath(__file__)

# (label, depth, module, attribute path): the functions timed where they are called from.
STEPS = (
    ("read the status file", 0, "batchman.store.store", "Store.read"),
    ("decode the snapshot", 1, "batchman.store.follow", "load"),
    ("replay the change log", 1, "batchman.store.follow", "follow_log"),
    ("index the tasks by key", 2, "batchman.core.model", "Status.index"),
    ("survey the live tasks", 0, "batchman.daemon.survey", "survey"),
    ("keepers made afresh", 1, "batchman.daemon.kept", "Kept.__init__"),
    ("observe", 0, "batchman.daemon.observe", "Observer.observe"),
    ("the batch system's answer", 1, "batchman.backends.batch.local", "LocalBatch.query"),
    ("the staging system's answer", 1, "batchman.backends.staging.local", "LocalStaging.query"),
    ("decide and record", 0, "batchman.daemon.intents", "record"),
    ("decide", 1, "batchman.core.plan", "plan_budget"),
    ("record the results", 0, "batchman.daemon.engine", "Engine._record_results"),
    ("unknown jobs", 0, "batchman.daemon.engine", "Engine.update_unknown"),
    ("compaction", 0, "batchman.daemon.engine", "Engine.compact_store"),
    ("unregister", 0, "batchman.daemon.engine", "Engine.unregister"),
    ("the page", 0, "batchman.page.live", "LivePage.__call__"),
    ("the saved tally loaded", 1, "batchman.page.saved", "load"),
)
FIELDS = ("wall", "user", "sys", "faults")


def usage() -> tuple[float, float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt


def timed(steps: dict) -> None:
    """Wrap each step's function so that its calls add to steps[label] (nested calls of the
    same step are counted once)."""
    import importlib
    for label, _, module, path in STEPS:
        owner = importlib.import_module(module)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        f = getattr(owner, name)        # (AttributeError: the code moved; say where in STEPS)
        steps[label] = [0.0, 0.0, 0.0, 0]
        inside = [0]

        @functools.wraps(f)
        def g(*a, _f=f, _into=steps[label], _inside=inside, **k):
            if _inside[0]:
                return _f(*a, **k)
            _inside[0] += 1
            before = usage()
            try:
                return _f(*a, **k)
            finally:
                _inside[0] -= 1
                for i, (x, y) in enumerate(zip(usage(), before)):
                    _into[i] += x - y
        setattr(owner, name, g)


def phases(root: str) -> dict:
    """The oneshot's steps (daemon/main.py: _run and main, for mode oneshot), timed."""
    start = usage()
    import gc
    import click
    from batchman.daemon import main as M
    from batchman.experiment import open_experiment
    steps: dict = {}
    timed(steps)
    e = open_experiment(root)
    eng = M._engine(e, "oneshot", False, (), ())
    e.store.defer_html = True
    gc.disable()
    rep = eng.run_once()
    eng.update_unknown()
    eng.compact_store()
    eng.unregister()
    e.store.flush_html()
    end = usage()
    click.echo(f"  {len(rep.transitions)} changes", err=True)
    whole = [x - y for x, y in zip(end, start)]
    top = [sum(steps[label][i] for label, depth, _, _ in STEPS if depth == 0) for i in range(4)]
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"steps": steps, "whole": whole, "elsewhere": [w - t for w, t in zip(whole, top)],
            "process": [0.0, r.ru_utime, r.ru_stime, r.ru_minflt],      # (its wall: the parent's measure)
            "changes": len(rep.transitions), "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def run_child(what: str, root: str, a) -> dict:
    wall, out, _ = BC.run([sys.executable, ME, "--child", what, root, "--tasks", str(a.tasks), "--files",
                           str(a.files)] + (["--perfile"] if a.perfile else []))
    r = json.loads(out.splitlines()[-1])
    if "process" in r:
        r["process"][0] = wall
    return r


def build(root: str, a) -> None:
    if a.perfile:
        import bench_perfile as PF
        PF.build(root, a.tasks, a.files)
    else:
        BC.build(root, a.tasks)


def table(runs: list[dict]) -> list[str]:
    med = lambda get: statistics.median(get(r) for r in runs)  # noqa: E731
    lines = [f"{'step':34s} {'wall s':>7s} {'user s':>7s} {'sys s':>7s} {'faults':>8s}"]

    def line(label: str, get) -> str:
        w, u, s, f = (med(lambda r, i=i: get(r)[i]) for i in range(4))
        return f"{label:34s} {w:7.2f} {u:7.2f} {s:7.2f} {f / 1e3:7.0f}k"
    for label, depth, _, _ in STEPS:
        lines.append(line("  " * depth + label, lambda r, k=label: r["steps"][k]))
    lines.append(line("in no step above", lambda r: r["elsewhere"]))
    lines.append(line("the oneshot's steps", lambda r: r["whole"]))
    lines.append(line("the process, start to end", lambda r: r["process"]))
    per = med(lambda r: r["process"][2] / max(1, r["process"][3])) * 1e6
    lines.append(f"system time per page fault: {per:.1f} us (median); peak memory "
                 f"{max(r['rss_gb'] for r in runs):.2f} GB; changes {runs[0]['changes']}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=1_000_000, help="tasks in the campaign (default 1,000,000)")
    ap.add_argument("--perfile", action="store_true", help="bench_perfile's shape: a task per raw file, a merge per run")
    ap.add_argument("--files", type=int, default=199, help="with --perfile: segment tasks of reco per run")
    ap.add_argument("--repeat", type=int, default=3, help="oneshot runs, each on a fresh copy (default 3)")
    ap.add_argument("--pristine", metavar="DIR", help="a campaign already built (its pristine directory)")
    ap.add_argument("--json", metavar="FILE", help="write every run's figures to FILE too")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (and its pristine campaign)")
    ap.add_argument("--tmp", default=None, help="where the temporary directory goes (default: the system's)")
    ap.add_argument("--child", nargs=2, metavar=("WHAT", "DIR"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        what, root = a.child
        if what == "build":
            build(root, a)
        print(json.dumps({} if what == "build" else phases(root)), flush=True)
        if what != "build":
            os._exit(0)         # (as the oneshot itself ends: not a million tasks freed one by one)
        return 0
    BC.bytecode()
    work = tempfile.mkdtemp(prefix="bench-oneshot-", dir=a.tmp)
    try:
        pristine = a.pristine
        if pristine is None:
            pristine = os.path.join(work, "pristine")
            os.makedirs(pristine)
            BC.say(f"building {a.tasks:,} tasks in {pristine} ...")
            run_child("build", pristine, a)
        runs = []
        for k in range(a.repeat):
            root = BC.clone(pristine, os.path.join(work, f"oneshot-{k}"))
            BC.write_elsewhere(root, "--pause", "--finish", str(max(1, a.tasks // 100)))
            BC.say(f"oneshot {k + 1} of {a.repeat} (another process wrote)")
            runs.append(run_child("phases", root, a))
            shutil.rmtree(root, ignore_errors=True)
        speed = BC.machine()
        print(BC.machine_line(speed))
        print(f"batchman-daemon oneshot at {a.tasks:,} tasks ({'per file' if a.perfile else 'a job a run'}), "
              f"median of {a.repeat}:")
        print("\n".join(table(runs)))
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump({"tasks": a.tasks, "perfile": a.perfile, "speed": speed, "when": time.strftime("%Y-%m-%d %H:%M"),
                           "runs": runs}, f, indent=1)
    finally:
        if a.keep:
            BC.say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
