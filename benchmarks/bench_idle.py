#!/usr/bin/env python3
"""Issue 14: the daemon's CPU while nothing happens.

An experiment with N local jobs that run for a long time (``sleep``), the daemon started with
the defaults of ``batchman init`` (``daemon.delay`` 60, ``daemon.watch_interval`` 2) and
``--forever``; once every job runs, the daemon's own CPU seconds (user + system, from
/proc/PID/stat) are measured over a window in which no job ends. Reported: CPU seconds per
minute of wall time and the share of one core.

    python benchmarks/bench_idle.py [--jobs 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from batchman import actions, params as P  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.experiment import open_experiment  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-idle-")
    try:
        os.makedirs(os.path.join(root, "raw"))
        for r in range(1, a.jobs + 1):
            open(os.path.join(root, "raw", f"run_{r}.dat.0"), "w").close()
        with open(os.path.join(root, "analyze"), "w") as f:
            f.write("#!/bin/bash\nsleep 100000\n")
        os.chmod(os.path.join(root, "analyze"), 0o755)
        values = P.defaults()
        values.update({"staging.cache_dir": "raw", "batch.local_slots": a.jobs, "batch.max_jobs": a.jobs})
        with open(os.path.join(root, P.CONFIG_NAME), "w") as f:
            f.write(P.render_yaml(values))
        e = open_experiment(root)
        actions.add_runs(e.store, list(range(1, a.jobs + 1)))
        d = subprocess.Popen([sys.executable, "-m", "batchman.daemon", "-C", root, "--forever"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            end = time.time() + 120
            while sum(t.state in S.IN_BATCH for t in e.store.read().tasks) < a.jobs:
                if time.time() > end:
                    raise SystemExit("the jobs were not all submitted within 120 s")
                time.sleep(0.5)
            time.sleep(2.0)
            c0, t0 = cpu_seconds(d.pid), time.time()
            time.sleep(a.seconds)
            c1, t1 = cpu_seconds(d.pid), time.time()
        finally:
            d.terminate()
            d.wait(timeout=60)
            subprocess.run(["pkill", "-f", f"{root}/analyze"], check=False)
        per_min = (c1 - c0) / (t1 - t0) * 60
        print(f"{a.jobs} jobs running, nothing ends, batchman init defaults (delay {values['daemon.delay']:g} s, "
              f"watch every {values['daemon.watch_interval']:g} s): daemon CPU {c1 - c0:.2f} s over {t1 - t0:.0f} s "
              f"= {per_min:.2f} CPU-s per minute ({(c1 - c0) / (t1 - t0):.2%} of one core)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
