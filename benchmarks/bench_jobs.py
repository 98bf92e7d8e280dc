#!/usr/bin/env python3
"""Issue 7's figure: the decide step for 10,000 runs x 3 jobs (reco on-add, hist after reco
without staging, quick data-complete), and a whole daemon iteration's time in our own code.

decide step = jobs.gates (which dependents may go, with which inputs) + jobs.to_create (the
triggers' tasks, nothing twice) + decide.plan (every task, limits shared by all jobs and
per-job max_running) + jobs.stuck (has_work). The batch and staging systems are instant fakes
(bench_daemon's), so the iteration figure is batchman itself: read, observe, decide, write.

    python benchmarks/bench_jobs.py [--runs 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_daemon import FakeBatch, FakeStaging  # noqa: E402

from batchman.core import decide as D  # noqa: E402
from batchman.core import plan as PL  # noqa: E402
from batchman.core import jobs as J  # noqa: E402
from batchman import params as P  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.backends.base import StagingView  # noqa: E402
from batchman.daemon.engine import Engine  # noqa: E402
from batchman.experiment import store_for  # noqa: E402
from batchman.core.model import Segment, Status, Task, job_name  # noqa: E402

JOBS = {
    "reco": {"command": "true", "args": "{run} {files}", "params": {"version": 2},
             "outputs": ["out/v{version}/tree{run:05d}.root"], "max_running": 3000},
    "hist": {"command": "true", "args": "{run} {files}", "trigger": "after: reco", "needs_staging": False},
    "quick": {"command": "true", "trigger": "data-complete", "watch": "listed"},
}
# reco's state; hist follows it (waits, or went on), quick is a mix
MIX = [(S.COMPLETED, 50), (S.RUNNING, 20), (S.QUEUED, 10), (S.STAGING, 5), (S.UNSTAGED, 5), (S.FAILED, 5), (S.NEW, 5)]


def build(runs: int, now: float) -> Status:
    st = Status(store_id="bench1", experiment="bench", created=now)
    cycle = [s for s, k in MIX for _ in range(k)]
    for i in range(runs):
        run = 100000 + i
        state = cycle[i % 100]
        segs = [Segment(f"/mss/exp/raw/run_{run}.dat.{s}", state not in (S.UNSTAGED, S.NEW)) for s in range(3)]
        reco = Task(run=run, job="reco", state=state, since=now - 100, reason="bench", segments=segs if state != S.NEW else [],
                    added_at=now - 1000, meta={"dataset": "SiR2" if i % 2 else "Al50b"})
        if state in (S.RUNNING, S.QUEUED, S.COMPLETED, S.FAILED):
            reco.attempt, reco.job_id = 1, str(5000000 + i)
            reco.job_name = job_name("bench1", reco, 1)
        if state == S.COMPLETED:
            reco.outputs = [f"/out/v2/tree{run:05d}.root"]
        hist_state = S.COMPLETED if (state == S.COMPLETED and i % 3) else S.NEW
        hist = Task(run=run, job="hist", state=hist_state, since=now - 50, reason="bench", added_at=now - 1000)
        quick = Task(run=run, job="quick", state=S.COMPLETED if i % 4 else S.RUNNING, since=now - 50, added_at=now - 1000,
                     attempt=1, job_id=str(7000000 + i))
        quick.job_name = job_name("bench1", quick, 1)
        st.tasks += [reco, hist, quick]
    return st


def decide_step(tasks, jobs, pol, now):
    obs = D.Observations(now=now, me="bench:1", live_daemons=frozenset({"bench:1"}),
                         staging=StagingView(present={s.path for t in tasks for s in t.segments if s.staged}), jobs={})
    t0 = time.perf_counter()
    obs.gates = J.gates(tasks, jobs)
    created = J.to_create(tasks, jobs, [(r, "quick", "data-complete") for r in range(900000, 900050)])
    decisions = PL.plan(tasks, obs, pol)
    stuck = J.stuck(tasks, jobs)
    return time.perf_counter() - t0, len(decisions), len(created), len(stuck)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10000)
    a = ap.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as root:
        values = P.defaults()
        values.update({"staging.limit": 10 ** 9, "batch.max_jobs": 10 ** 9, "staging.stub_dir": root + "/raw"})
        with open(os.path.join(root, P.CONFIG_NAME), "w") as f:
            f.write(P.render_yaml(values, JOBS))
        params = P.load(root)
        status = build(a.runs, now)
        pol = D.Policy.from_params(params)
        times = []
        for _ in range(5):
            dt, nd, nc, ns = decide_step(build(a.runs, now).tasks, params.jobs, pol, now)
            times.append(dt)
        print(f"{a.runs} runs x 3 jobs = {len(status.tasks)} tasks")
        print(f"decide step (gates + triggers + plan + stuck): best {min(times) * 1000:.0f} ms, "
              f"median {sorted(times)[2] * 1000:.0f} ms; {nd} decisions, {nc} tasks created, {ns} dependents stuck")
        store = store_for(params)
        with store.transaction("bench") as st:
            st.tasks = status.tasks
            st.store_id, st.experiment = status.store_id, status.experiment
        eng = Engine(params, store, FakeBatch(), FakeStaging(), mode="bench")
        rep = eng.run_once()
        busy = rep.seconds_own
        warm = []
        for _ in range(3):
            rep = eng.run_once()
            warm.append(rep.seconds_own)
        print(f"daemon iteration, own code (read, observe, decide, write JSON+HTML+journal): first {busy:.3f} s, "
              f"steady {min(warm):.3f} s; lock held at most {store.max_lock_seconds * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
