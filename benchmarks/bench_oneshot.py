#!/usr/bin/env python3
"""Where the time of a `batchman-daemon oneshot` goes, step by step (issue 18's last figure).

    python benchmarks/bench_oneshot.py [--tasks 1000000] [--perfile] [--repeat 3] [--json FILE]
                                       [--against CHECKOUT] [--pristine DIR] [--keep] [--tmp DIR]
                                       [--quiet-for SECONDS] [--live-only]

The campaign is bench_campaign.py's (one job a run), or with --perfile bench_perfile.py's (a
`reco` task per raw file and a `merge` per run); --pristine DIR takes one already built (a
directory that --keep left, `pristine` in it). As bench_campaign's oneshot figure, before each
run another process (with the code measured) pauses the production and ends 1 % of the local
batch system's jobs (and
with --quiet-for S, the page's saved tally is made S seconds older: the oneshot of a cron job
nobody else wrote between, whose tally's periodic recount is due); then,
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
much is the kernel giving fresh memory. With --live-only the campaign's settled tasks are
taken out first (its page's tally and change log too): the same oneshot as if settled tasks
cost nothing, the floor of a task model that would not make them into Tasks. It measures the code of the checkout it is in, and with
--against CHECKOUT (another clone or worktree, e.g. `git worktree add /tmp/old HEAD~3`) that
one's too, run by run in turns (ABBA...) on copies of the same campaign, as a second table and
a line comparing the two: the way to tell a change from the machine's mood, which moves a
oneshot at 1,000,000 tasks by ±10 % from one hour to the next. The other checkout's code is
imported first (checked: its batchman is the one the steps run), whatever its own benchmarks.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

CODE = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv else None
if CODE:                # (a run of --against: that checkout's batchman, before bench_campaign puts ours first)
    sys.path.insert(0, CODE)
    import batchman  # noqa: F401, E402
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
    ("every task counted afresh", 1, "batchman.page.tally", "Tally._build"),
    ("every task compared in full", 1, "batchman.page.tally", "Tally.unlike"),
    ("the tally saved again", 1, "batchman.page.saved", "dump"),
)
NEWER = {"Tally.unlike"}      # (steps an older checkout of --against may not have: zeros there)
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
        steps[label] = [0.0, 0.0, 0.0, 0]
        if path in NEWER and not hasattr(owner, name):
            continue
        f = getattr(owner, name)        # (AttributeError: the code moved; say where in STEPS)
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
    import batchman
    from batchman.daemon import main as M
    if CODE and not os.path.abspath(batchman.__file__).startswith(os.path.abspath(CODE) + os.sep):
        raise SystemExit(f"the steps would run {batchman.__file__}, not the code of {CODE}")
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
            "changes": len(rep.transitions), "rss_gb": r.ru_maxrss / 2**20}


def run_child(what: str, root: str, a, code: str | None = None) -> dict:
    wall, out, _ = BC.run([sys.executable, ME, "--child", what, root, "--tasks", str(a.tasks), "--files",
                           str(a.files), "--order", a.order] + (["--perfile"] if a.perfile else []) + (["--code", code] if code else []))
    r = json.loads(out.splitlines()[-1])
    if "process" in r:
        r["process"][0] = wall
    return r


def age_tally(root: str, seconds: float) -> None:
    """Move the saved tally's last count afresh ``seconds`` back (its identity line, read alone as
    plain JSON: the layout of the code measured, which may be another checkout's)."""
    from batchman import params as P
    path = os.path.join(root, P.load(root)["daemon.status_file"]) + ".tally"
    with open(path, "rb") as f:
        data = f.read()
    cut = data.index(b"\n")
    head = json.loads(data[:cut])
    head["built"] -= seconds
    with open(path, "wb") as f:
        f.write(json.dumps(head).encode() + data[cut:])


def build(root: str, a) -> None:
    if a.perfile:
        import bench_perfile as PF
        PF.build(root, a.tasks, a.files, a.order)
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


def campaign(work: str, a) -> str:
    """The pristine campaign: --pristine's, or one built in ``work`` (also bench_oneshot_served.py's)."""
    if a.pristine:
        return a.pristine
    pristine = os.path.join(work, "pristine")
    os.makedirs(pristine)
    BC.say(f"building {a.tasks:,} tasks in {pristine} ...")
    run_child("build", pristine, a)
    return pristine


def live_only(root: str) -> None:
    """--live-only: the campaign's settled tasks (completed, failed, aborted...) taken out, its
    page's saved tally with them: what a oneshot costs when settled tasks cost nothing at all,
    the floor of a task model that would not make them into Tasks (issue 18's last figure)."""
    from batchman import params as P
    from batchman.core import states as S
    from batchman.store import snapshot
    from batchman.store.store import Store
    path = os.path.join(root, P.load(root)["daemon.status_file"])
    st = Store(path).read()     # (the file and its change log)
    kept = [t for t in st.tasks if t.state in S.ACTIVE]
    BC.say(f"left out {len(st.tasks) - len(kept):,} settled tasks; {len(kept):,} live ones kept")
    st.tasks = kept
    os.unlink(path)             # (a hard link of the pristine file: replaced, not rewritten in place)
    snapshot.write(path, st)
    for side in (".tally", ".log"):
        if os.path.exists(path + side):
            os.unlink(path + side)


def shape_arguments(ap: argparse.ArgumentParser) -> None:
    """The campaign's size and shape (also bench_oneshot_served.py's)."""
    ap.add_argument("--tasks", type=int, default=1_000_000, help="tasks in the campaign (default 1,000,000)")
    ap.add_argument("--perfile", action="store_true", help="bench_perfile's shape: a task per raw file, a merge per run")
    ap.add_argument("--files", type=int, default=199, help="with --perfile: segment tasks of reco per run")
    ap.add_argument("--order", choices=("made", "run"), default="made", help="with --perfile: bench_perfile's --order")


def copy_arguments(ap: argparse.ArgumentParser) -> None:
    """Where the campaign comes from and the figures go (also bench_oneshot_served.py's and
    bench_commands.py's)."""
    ap.add_argument("--pristine", metavar="DIR", help="a campaign already built (bench_oneshot's --keep leaves "
                                                      "one: its pristine directory)")
    ap.add_argument("--json", metavar="FILE", help="write every run's figures to FILE too")
    ap.add_argument("--tmp", default=None, help="where the temporary directory goes (default: the system's)")


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    shape_arguments(ap)
    ap.add_argument("--repeat", type=int, default=3, help="oneshot runs, each on a fresh copy (default 3)")
    copy_arguments(ap)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (and its pristine campaign)")
    ap.add_argument("--against", metavar="CHECKOUT", help="another checkout of batchman: its oneshot too, in turns")
    ap.add_argument("--quiet-for", type=float, default=0.0, metavar="SECONDS",
                    help="the page's tally last counted afresh SECONDS before the oneshot (900: a oneshot "
                         "from cron a quarter of an hour after the last, nobody writing between)")
    ap.add_argument("--live-only", action="store_true",
                    help="leave the campaign's settled tasks out first: the floor a task model that does "
                         "not make them into Tasks could reach")
    ap.add_argument("--child", nargs=2, metavar=("WHAT", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--code", help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> int:
    a = arguments()
    if a.child:
        what, root = a.child
        if what == "build":
            build(root, a)
        elif what == "live-only":
            live_only(root)
        elif what == "write":
            BC.other_write(root, pause=True, finish=max(1, a.tasks // 100))
        print(json.dumps(phases(root) if what == "phases" else {}), flush=True)
        if what == "phases":
            os._exit(0)         # (as the oneshot itself ends: not a million tasks freed one by one)
        return 0
    against = os.path.abspath(a.against) if a.against else None
    if against and not os.path.isfile(os.path.join(against, "batchman", "daemon", "main.py")):
        raise SystemExit(f"--against {a.against}: no batchman checkout there (batchman/daemon/main.py is missing)")
    BC.bytecode()
    if against:
        compileall.compile_dir(os.path.join(against, "batchman"), quiet=1)
    work = tempfile.mkdtemp(prefix="bench-oneshot-", dir=a.tmp)
    try:
        pristine = campaign(work, a)
        if a.live_only:
            pristine = BC.clone(pristine, os.path.join(work, "live"))
            run_child("live-only", pristine, a)
        runs: dict = {None: [], against: []} if against else {None: []}
        for k in range(a.repeat):
            for code in (list(runs) if k % 2 == 0 else list(runs)[::-1]):
                root = BC.clone(pristine, os.path.join(work, f"oneshot-{k}"))
                run_child("write", root, a, code)     # (with the code measured: its page tally's layout)
                if a.quiet_for:
                    age_tally(root, a.quiet_for)
                BC.say(f"oneshot {k + 1} of {a.repeat}{f' ({code})' if code else ''} (another process wrote)")
                runs[code].append(run_child("phases", root, a, code))
                shutil.rmtree(root, ignore_errors=True)
        speed = BC.machine()
        print(BC.machine_line(speed))
        shape = ("per file" if a.perfile else "a job a run") + (f"; tally counted {a.quiet_for:g} s before" if a.quiet_for else "") \
            + ("; its settled tasks left out" if a.live_only else "")
        for code, got in runs.items():
            print(f"batchman-daemon oneshot at {a.tasks:,} tasks ({shape}), median of {a.repeat}, "
                  f"code of {code or os.path.dirname(os.path.dirname(ME))}:")
            print("\n".join(table(got)))
        if against:
            walls = {c: sorted(round(r["process"][0], 2) for r in got) for c, got in runs.items()}
            print(f"the process, start to end: {walls[None]} s here against {walls[against]} s in {against}")
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump({"tasks": a.tasks, "perfile": a.perfile, "quiet_for": a.quiet_for, "speed": speed, "when": time.strftime("%Y-%m-%d %H:%M"),
                           "runs": runs[None], "against": against, "against_runs": runs.get(against)}, f, indent=1)
    finally:
        if a.keep:
            BC.say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
