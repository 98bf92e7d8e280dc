#!/usr/bin/env python3
"""How long the TUI's screen is held when the status file is rewritten whole (issue 18).

    python benchmarks/bench_tui_rewrite.py DIR [--repeat 3]

DIR is an experiment (e.g. a clone of the 1,000,000-task one bench_campaign.py builds; it is
written to). The TUI is opened on it and reads it to the end; then, --repeat times, another process
rewrites the status file whole, as a writer out of log mode, ``batchman recover`` or a schema
upgrade does (one task's priority changed, the file replaced instead of a line appended to the
change log), and the TUI ticks and takes its reading steps until the new status is shown. Printed:
the longest single tick or step (how long a key waits at worst), and the time until the new status
is on the screen. Before issue 18's stepped reading of such files the tick itself decoded the file.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

REWRITE = """
import sys
from batchman.experiment import open_experiment
from batchman.store import store
store.LOG_FROM = 1 << 62            # this writer rewrites the file whole
e = open_experiment(sys.argv[1])
with e.store.transaction("bench rewrite") as st:
    st.tasks[0].priority += 1
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import bench_tui as BT
    from batchman.experiment import open_experiment
    from batchman.tui import loading
    from batchman.tui.app import App
    app = App(open_experiment(a.root), spawn=lambda *x: "")
    app.render(BT.SIZE)
    while loading.step(app):
        pass
    held, shown = [], []
    for _ in range(a.repeat):
        before = app.index.status
        subprocess.run([sys.executable, "-c", REWRITE, a.root], check=True)
        t0, longest = time.perf_counter(), 0.0
        while app.index.status is before or app.reading is not None:
            t = time.perf_counter()
            if app.reading is None:
                app.tick()
            else:
                loading.step(app)
            app.render(BT.SIZE)
            longest = max(longest, time.perf_counter() - t)
        held.append(longest)
        shown.append(time.perf_counter() - t0)
        print(f"longest tick or step {longest * 1e3:.0f} ms; new status shown after {shown[-1]:.2f} s",
              file=sys.stderr)
    print(f"median of {a.repeat}: longest tick or step {statistics.median(held) * 1e3:.0f} ms, "
          f"shown after {statistics.median(shown):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
