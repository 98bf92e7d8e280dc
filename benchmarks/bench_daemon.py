#!/usr/bin/env python3
"""Issue 2's figures: one daemon iteration's time in our own code, and the longest lock hold,
for 1,000 / 10,000 / 100,000 tasks.

The batch and staging systems are replaced by instant in-memory fakes, so what is timed
is batchman itself: reading the status file, observing (marker files included), deciding,
writing JSON + HTML + journal. Two cases per size:
  warm: the file is unchanged since this daemon wrote it (the usual case: no re-parse);
  cold: another process wrote it in between (a full parse inside the lock).

    python benchmarks/bench_daemon.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from batchman import params as P  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.backends.base import RUNNING, BatchBase, JobInfo, StagingBase, StagingView  # noqa: E402
from batchman.daemon.engine import Engine  # noqa: E402
from batchman.experiment import store_for  # noqa: E402
from batchman.core.model import Segment, Status, Task, job_name  # noqa: E402


class FakeBatch(BatchBase):
    name = "fake"

    def __init__(self):
        self.submitted = 0

    def query(self, jobs):
        return {n: JobInfo(n, j or "1", RUNNING, native_state="RUNNING") for n, j in jobs.items()}

    def submit(self, spec):
        self.submitted += 1
        return str(100000 + self.submitted)

    def cancel(self, ids):
        pass

    def list_ours(self, prefix):
        return []

    def details(self, jid):
        return ""


class FakeStaging(StagingBase):
    name = "fake"

    def query(self, files):
        return StagingView(pending=set(files))

    def request(self, files):
        pass

    release = cancel = request

    def cache_path(self, f):
        return f


def build(n: int, now: float) -> Status:
    st = Status(store_id="bench1", experiment="bench", created=now)
    mix = [(S.COMPLETED, 60), (S.RUNNING, 20), (S.QUEUED, 10), (S.STAGING, 5), (S.UNSTAGED, 5)]
    cycle = [s for s, k in mix for _ in range(k)]
    for i in range(n):
        state = cycle[i % 100]
        t = Task(run=100000 + i, state=state, since=now - 100, reason="bench",
                 segments=[Segment(f"/mss/exp/raw/run_{100000 + i}.dat.{s}", state != S.UNSTAGED) for s in range(3)],
                 added_at=now - 1000, counters={"events": i * 10, "rate": 1.5})
        if state in (S.RUNNING, S.QUEUED, S.COMPLETED):
            t.attempt = 1
            t.job_name = job_name("bench1", t, 1)
            t.job_id = str(5000000 + i)
            t.submitted_at = now - 500
        if state == S.COMPLETED:
            t.exit_code = 0
            t.finished_at = now - 50
        if state == S.STAGING:
            t.requested_at = now - 10
        st.tasks.append(t)
    return st


def bench(n: int, root: str) -> dict:
    values = P.defaults()
    values.update({"staging.limit": 10 ** 9, "batch.max_jobs": 10 ** 9})
    with open(os.path.join(root, P.CONFIG_NAME), "w") as f:
        f.write(P.render_yaml(values))
    params = P.load(root)
    store = store_for(params)
    now = time.time()
    status = build(n, now)
    with store.transaction("bench") as st:
        st.tasks = status.tasks
        st.store_id, st.experiment = status.store_id, status.experiment
    size = os.path.getsize(store.path)
    html = os.path.getsize(params.path("daemon.html_file"))
    eng = Engine(params, store, FakeBatch(), FakeStaging(), mode="bench")
    out = {"tasks": n, "json_MB": size / 1e6, "html_MB": html / 1e6}
    # busy: the first iteration over the new file requests staging for every unstaged task (5 %)
    store.max_lock_seconds = 0.0
    rep = eng.run_once()
    out.update(busy_s=(rep.seconds_own + eng.html_seconds), busy_lock_s=store.max_lock_seconds, busy_changes=len(rep.transitions))
    warm, warm_lock, cold, cold_lock = [], [], [], []
    for i in range(3):
        store.max_lock_seconds = 0.0
        rep = eng.run_once()
        warm.append((rep.seconds_own + eng.html_seconds))
        warm_lock.append(store.max_lock_seconds)
        # someone else writes the file: the next iteration must parse it inside the lock
        other = store_for(params)
        with other.transaction("bench-other") as st:
            st.tasks[0].priority += 1
        store.max_lock_seconds = 0.0
        rep = eng.run_once()
        cold.append((rep.seconds_own + eng.html_seconds))
        cold_lock.append(store.max_lock_seconds)
    out.update(warm_s=min(warm), warm_lock_s=max(warm_lock), cold_s=min(cold), cold_lock_s=max(cold_lock))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    a = ap.parse_args()
    print(f"{'tasks':>8} {'json MB':>8} {'html MB':>8} {'iter busy':>10} {'lock busy':>10} {'iter warm':>10} {'lock warm':>10} {'iter cold':>10} {'lock cold':>10}")
    for n in [int(x) for x in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as d:
            r = bench(n, d)
        print(f"{r['tasks']:>8} {r['json_MB']:>8.1f} {r['html_MB']:>8.1f} {r['busy_s']:>9.3f}s {r['busy_lock_s']:>9.3f}s {r['warm_s']:>9.3f}s {r['warm_lock_s']:>9.3f}s "
              f"{r['cold_s']:>9.3f}s {r['cold_lock_s']:>9.3f}s")
    print("iteration = time in batchman's own code (read, observe files, decide, write JSON+HTML+journal);\n"
          "lock = longest single hold of the status file's lock;\n"
          "busy = first iteration over the file (the unstaged 5 % begin staging, 25 per iteration by default);\n"
          "warm = steady state, file unchanged since our last write; cold = another process wrote it just before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
