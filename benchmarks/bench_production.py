#!/usr/bin/env python3
"""Issues 10 and 14's figures, with the throttles at their defaults:

* the time for 10,000 new runs to be all submitted, on a simulated clock (the daemon sleeping
  between iterations as its loop does: until a token is back, the next batch query or
  `daemon.delay`; jobs that run `--job-minutes` each, staging that takes `--stage-seconds` per
  run), and the largest number of batch commands in any one (simulated) second;
* `batchman recover` wall time for 10,000 tasks (journal + attempt directories with
  exit markers), measured for real.

    python benchmarks/bench_production.py [--runs 10000] [--job-minutes 30] [--case throttles]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from batchman import actions, params as P  # noqa: E402
from batchman.core import states as S
from batchman.backends.base import ABSENT, FINISHED, QUEUED, RUNNING, BatchBase, JobInfo, StagingBase, StagingView  # noqa: E402
from batchman.core.pacing import query_interval  # noqa: E402
from batchman.daemon.engine import Engine  # noqa: E402
from batchman.daemon.loop import seconds_to_sleep  # noqa: E402
from batchman.experiment import store_for  # noqa: E402


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self):
        return self.t


class SimBatch(BatchBase):
    """Jobs run `duration` simulated seconds on `slots` slots; counts commands like a real backend."""
    name = "sim"

    def __init__(self, clock, duration, slots):
        self.clock, self.duration, self.slots = clock, duration, slots
        self.jobs = {}      # name -> [id, submit time, start time]
        self.commands = 0
        self.n = 0

    def submit(self, spec):
        self.commands += 1
        self.n += 1
        self.jobs[spec.name] = [str(self.n), self.clock(), None]
        return str(self.n)

    def _advance(self):
        running = sum(1 for j in self.jobs.values() if j[2] is not None and self.clock() - j[2] < self.duration)
        for j in sorted(self.jobs.values(), key=lambda j: j[1]):
            if j[2] is None and running < self.slots:
                j[2] = self.clock()
                running += 1

    def query(self, jobs):
        self.commands += 1
        self._advance()
        out = {}
        for n in jobs:
            j = self.jobs.get(n)
            if j is None:
                out[n] = JobInfo(n, "", ABSENT)
            elif j[2] is None:
                out[n] = JobInfo(n, j[0], QUEUED)
            elif self.clock() - j[2] < self.duration:
                out[n] = JobInfo(n, j[0], RUNNING)
            else:
                out[n] = JobInfo(n, j[0], FINISHED, exit_code=0)
        return out

    def cancel(self, ids):
        self.commands += 1

    def list_ours(self, prefix):
        self.commands += 1
        return []

    def details(self, jid):
        return ""


class SimStaging(StagingBase):
    name = "sim"

    def __init__(self, clock, seconds):
        self.clock, self.seconds, self.req = clock, seconds, {}

    def request(self, files):
        for f in files:
            self.req.setdefault(f, self.clock())

    def query(self, files):
        v = StagingView()
        for f in files:
            t = self.req.get(f)
            if t is not None:
                (v.present if self.clock() - t >= self.seconds else v.pending).add(f)
        return v

    def release(self, files):
        for f in files:
            self.req.pop(f, None)

    cancel = release

    def cache_path(self, f):
        return f


def submit_time(runs: int, job_minutes: float, stage_seconds: float, slots: int, overrides: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "raw"))
        for r in range(runs):
            for s in range(2):
                open(os.path.join(d, "raw", f"run_{r}.dat.{s}"), "w").close()
        values = P.defaults()
        values["batch.command"] = "/bin/true"
        values.update(overrides)
        with open(os.path.join(d, P.CONFIG_NAME), "w") as f:
            f.write(P.render_yaml(values))
        params = P.load(d)
        store = store_for(params)
        store.html_path = ""          # the page is not what is measured here
        actions.add_runs(store, list(range(runs)))
        clock = Clock()
        batch = SimBatch(clock, job_minutes * 60, slots)
        eng = Engine(params, store, batch, SimStaging(clock, stage_seconds), clock=clock)
        delay = params["daemon.delay"]
        eng.pacing.every = query_interval(params["batch.min_query_interval"], delay)    # as the loop does
        per_second: dict[int, int] = {}
        iters, t0 = 0, clock()
        while True:
            c0 = batch.commands
            rep = eng.run_once()
            iters += 1
            sec = int(clock() - t0)
            per_second[sec] = per_second.get(sec, 0) + batch.commands - c0
            st = store.read()
            if all(t.attempt >= 1 for t in st.tasks):
                break
            # the loop's own sleep (no job ends early here: jobs last job_minutes, all alike)
            clock.t += max(seconds_to_sleep(eng, delay, rep), 0.05)
        return {"iterations": iters, "hours": (clock() - t0) / 3600, "most_per_second": max(per_second.values()),
                "delay": delay, "throttle": params["batch.max_submit_per_iteration"], "max_jobs": params["batch.max_jobs"],
                "burst": params["batch.submit_burst"], "rate": params["batch.submit_rate"]}


def recover_time(n: int) -> float:
    from batchman.daemon.recover import recover
    from batchman.store.store import Store
    with tempfile.TemporaryDirectory() as d:
        values = P.defaults()
        with open(os.path.join(d, P.CONFIG_NAME), "w") as f:
            f.write(P.render_yaml(values))
        params = P.load(d)
        store = store_for(params)
        actions.add_runs(store, list(range(n)))
        att = os.path.join(params.path("daemon.temp_dir"), "attempts")
        for r in range(n):
            a = os.path.join(att, f"bm.{store.read().store_id}.{r}.analysis.1")
            os.makedirs(a)
            with open(os.path.join(a, "exit"), "w") as f:
                f.write("0\n")
        os.unlink(store.path)
        from batchman.backends.batch.local import LocalBatch
        t0 = time.perf_counter()
        rec = recover(params, Store(store.path), LocalBatch(att))
        dt = time.perf_counter() - t0
        assert len(rec.status.tasks) == n
        return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--job-minutes", type=float, default=30.0)
    ap.add_argument("--stage-seconds", type=float, default=120.0)
    ap.add_argument("--slots", type=int, default=500, help="batch slots the site gives us")
    ap.add_argument("--case", choices=("all", "defaults", "throttles"), default="all",
                    help="defaults: every parameter at its default (the staging limit and the job cap "
                         "decide); throttles: only the pacing of submissions and staging requests")
    a = ap.parse_args()
    cases = [("every parameter at its default (staging limit 100 segments, 200 jobs at once)", {}),
             ("only the throttles (staging limit and job cap out of the way)",
              {"staging.limit": 10 ** 9, "batch.max_jobs": 10 ** 9})]
    cases = [c for c, name in zip(cases, ("defaults", "throttles")) if a.case in ("all", name)]
    for title, overrides in cases:
        t0 = time.time()
        r = submit_time(a.runs, a.job_minutes, a.stage_seconds, a.slots, overrides)
        print(f"{a.runs} new runs of 2 segments, {title}; delay {r['delay']:g} s, submissions paced by a "
              f"token bucket (burst {r['burst']}, {r['rate']:g}/s) and at most {r['throttle']} per iteration; "
              f"jobs of {a.job_minutes:g} min on {a.slots} slots, staging {a.stage_seconds:g} s:")
        print(f"  all submitted after {r['iterations']} iterations = {r['hours'] * 60:.1f} min of simulated time "
              f"(computed in {time.time() - t0:.0f} s)")
        print(f"  most batch commands in any one second: {r['most_per_second']}")
    print(f"recover of {a.runs} tasks: {recover_time(a.runs):.2f} s wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
