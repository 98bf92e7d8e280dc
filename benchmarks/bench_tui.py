"""TUI figures with 100,000 tasks in the status file (a benchmark, not a test).

    python benchmarks/bench_tui.py [--tasks 100000]
    python benchmarks/bench_tui.py --dir /work/bench1m     # an existing experiment (left untouched)

Prints: time from start to the first full screen, time per key press (move, page, jump,
filter, state filter, sort, kill one, add one) including the redraw, and the longest
lock hold of the TUI's actions. Targets: < 1 s, < 100 ms, < 50 ms. With --list also the
wall time and peak memory of the real `batchman list --state failed --json` (and of the
other forms of list), and with every figure the peak memory (ru_maxrss) of its process.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from batchman import params as P
from batchman.core import states as S
from batchman.experiment import open_experiment
from batchman.core.model import Segment, Task
from batchman.tui.app import App

SIZE = (120, 40)
STATES = [S.NEW, S.STAGING, S.QUEUED, S.RUNNING, S.COMPLETED, S.COMPLETED, S.COMPLETED, S.FAILED, S.ABORTED]


def build(root: str, n: int, html: bool) -> None:
    values = P.defaults()
    if not html:
        values["daemon.html_file"] = ""
    with open(os.path.join(root, P.CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(P.render_yaml(values))
    e = open_experiment(root)
    rnd = random.Random(1)
    now = time.time()
    with e.store.transaction("bench") as st:
        st.experiment = "bench"
        for i in range(n):
            state = STATES[i % len(STATES)]
            t = Task(run=100000 + i, state=state, since=now - rnd.random() * 86400, reason="bench",
                     segments=[Segment(f"raw/run_{100000 + i}.dat.{s}", True) for s in range(i % 3 + 1)],
                     attempt=1 if state not in (S.NEW, S.STAGING) else 0)
            if state in (S.QUEUED, S.RUNNING):
                t.job_id = str(5000000 + i)
                t.counters = {"events": i * 10}
            if state == S.FAILED:
                t.error = "exit code 1"
            st.tasks.append(t)


_FRESH = """
import sys, time
t0 = time.perf_counter()
from batchman.experiment import open_experiment
from batchman.tui.app import App
t1 = time.perf_counter()
app = App(open_experiment(sys.argv[1]), spawn=lambda r: "")
app.render(({w}, {h}))
t2 = time.perf_counter()
print(t2 - t1, t2 - t0, flush=True)
"""


def first_screen_fresh(root: str) -> tuple[float, float, float, float]:
    """Seconds to the first full screen in a new Python process, as when a person starts
    ``batchman``: (from opening the experiment to the screen, from starting the process to the
    screen, the whole process from start to exit, its peak memory in GB)."""
    import batchman
    here = os.path.dirname(os.path.dirname(os.path.abspath(batchman.__file__)))
    # (run from beside this process's own package: "python -c" looks in its directory first)
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", _FRESH.format(w=SIZE[0], h=SIZE[1]), root],
                         stdout=subprocess.PIPE, text=True, cwd=here)
    out = p.stdout.readline().split()
    shown = time.perf_counter() - t0
    p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit("the first-screen process failed")
    return float(out[0]), shown, time.perf_counter() - t0, usage.ru_maxrss / 1e6


def list_figures(root: str) -> dict[str, tuple[float, float]]:
    """Wall seconds and peak GB of the real `batchman list` in its usual forms, output to /dev/null."""
    exe = os.path.join(os.path.dirname(sys.executable), "batchman")
    out = {}
    for args in (["--state", "failed", "--json"], ["--state", "failed"], ["--json"], []):
        t0 = time.perf_counter()
        p = subprocess.Popen([exe, "-C", root, "list", *args], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"batchman list {' '.join(args)} failed")
        out[" ".join(["list", *args])] = (time.perf_counter() - t0, usage.ru_maxrss / 1e6)
    return out


def clone(src: str, dest: str) -> str:
    """An experiment directory with ``src``'s configuration and its status file hard-linked
    (every writer replaces the file, none writes into it), so ``src`` stays as it is."""
    from batchman import params as P
    os.makedirs(dest)
    shutil.copy(os.path.join(src, P.CONFIG_NAME), dest)
    name = P.load(src)["daemon.status_file"]
    os.link(os.path.join(src, name), os.path.join(dest, name))
    return dest


def timed(app: App, keys: str, repeat: int = 1) -> float:
    """Median seconds of typing ``keys`` and drawing the screen."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        app.type(keys, SIZE)
        app.render(SIZE)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--no-html", action="store_true", help="without the HTML page (its rendering is part of every write)")
    ap.add_argument("--dir", help="measure this existing experiment (hard-linked into a temporary one) instead of building")
    ap.add_argument("--list", action="store_true", help="also time the real `batchman list` commands")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="batchman-bench-tui-")
    try:
        return measure(a, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(a, root: str) -> int:
    if a.dir:
        root = clone(a.dir, os.path.join(root, "exp"))
        print(f"experiment {a.dir} (hard-linked into {root})")
    else:
        t0 = time.perf_counter()
        build(root, a.tasks, html=not a.no_html)
        print(f"{a.tasks} tasks written in {time.perf_counter() - t0:.2f} s ({root})")
    if a.list:
        for name, (wall, gb) in list_figures(root).items():
            print(f"{name + ':':36} {wall * 1000:8.1f} ms   peak {gb:.2f} GB")
    fresh, shown, started, gb = first_screen_fresh(root)
    print(f"first full screen:           {fresh * 1000:8.1f} ms   (a new process, as `batchman` starts: "
          f"{shown * 1000:.0f} ms from its start, target < 2000 ms; {started * 1000:.0f} ms for the whole "
          f"process, start to exit; peak {gb:.2f} GB)")
    t0 = time.perf_counter()
    e = open_experiment(root)
    app = App(e, spawn=lambda r: "")
    app.render(SIZE)
    first = time.perf_counter() - t0
    print(f"first full screen, same process: {first * 1000:4.1f} ms   (after writing the tasks here: "
          f"includes collecting what the writing left)")

    figures = {
        "move down": timed(app, "<down>", 50),
        "move up": timed(app, "<up>", 50),
        "page down": timed(app, "<page down>", 20),
        "end": timed(app, "<end>", 5),
        "home": timed(app, "<home>", 5),
    }
    app.type("/", SIZE)
    app.type("5000", SIZE)
    figures["filter by text (enter)"] = timed(app, "<enter>")
    figures["clear filter"] = timed(app, "c")
    app.type("s", SIZE)
    app.type("running", SIZE)
    figures["filter by state (enter)"] = timed(app, "<enter>")
    app.type("c", SIZE)
    figures["sort (o)"] = timed(app, "o")
    app.type("oo", SIZE)
    app.type("g", SIZE)
    app.type("150003", SIZE)
    figures["jump to run (enter)"] = timed(app, "<enter>")
    figures["mark (space)"] = timed(app, " ", 10)
    app.type("u", SIZE)
    running = next(t.run for t in app.index.status.tasks if t.state == S.RUNNING)
    app.type(f"g{running}<enter>", SIZE)
    e.store.max_lock_seconds = 0.0
    figures["kill one (x)"] = timed(app, "x")
    kill_lock = e.store.max_lock_seconds
    t0 = time.perf_counter()
    app.tick()
    app.render(SIZE)
    figures["refresh after a change"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    app.tick()
    app.render(SIZE)
    figures["refresh, file unchanged"] = time.perf_counter() - t0
    for name, s in figures.items():
        print(f"{name + ':':28} {s * 1000:8.1f} ms" + ("   (target < 100 ms)" if s >= 0.1 else ""))
    print(f"longest lock hold (kill one): {kill_lock * 1000:7.1f} ms   (target < 50 ms)")
    print(f"rows built for all of the above: {app.tasklist.walker.built}")
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
