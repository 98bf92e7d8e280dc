"""Figures for issue 15.6: the seeded random interleavings of two daemons and a writer.

Runs the simulation of tests/race_sim.py (real Engine and Store code, a simulated batch
system) for N seeds and prints the wall time, the time per seed, how many daemon iterations,
crashes, submissions and requests they took, and whether every seed held (one job per attempt,
every run ends, no request lost, the file always parses).

    python benchmarks/bench_race.py             # seeds 0..299, as in CI
    python benchmarks/bench_race.py -n 1000 --first 300
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import race_sim  # noqa: E402
from batchman.backends.batch import local  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=300, help="number of seeds (default 300)")
    ap.add_argument("--first", type=int, default=0, help="first seed (default 0)")
    a = ap.parse_args()
    local.pid_alive = race_sim.pid_alive
    os.fsync = lambda fd: None          # as in the test: no power cut is simulated
    failed = []
    totals = {"iterations": 0, "kills": 0, "submissions": 0, "requests": 0}
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None     # as the test: in memory where possible
    with tempfile.TemporaryDirectory(prefix="batchman-race-", dir=shm) as d:
        e = race_sim.experiment(d)
        t0 = time.perf_counter()
        for seed in range(a.first, a.first + a.n):
            sim = race_sim.Sim(e, seed)
            try:
                sim.run()
                sim.check()
            except AssertionError as x:
                failed.append((seed, str(x).splitlines()[0]))
            totals["iterations"] += sum(1 for s in sim.log if s.endswith("-> idle"))
            totals["kills"] += sum(1 for s in sim.log if s.startswith("kill daemon"))
            totals["submissions"] += len(sim.cluster.jobs)
            totals["requests"] += len(sim.requests)
        wall = time.perf_counter() - t0
    print(f"{a.n} seeds ({a.first}..{a.first + a.n - 1}) in {wall:.1f} s, {1000 * wall / a.n:.0f} ms per seed")
    print("  " + ", ".join(f"{v} {k}" for k, v in totals.items()) + " (iterations: those the chaos phase saw end)")
    for seed, why in failed:
        print(f"  seed {seed} FAILED: {why}  (replay: BATCHMAN_SEED={seed} python -m pytest tests/test_race_random.py)")
    print("all held" if not failed else f"{len(failed)} seed(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
