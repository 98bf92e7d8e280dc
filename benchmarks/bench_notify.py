"""Figures for issue 19: what the per-iteration alerts and metrics cost the daemon.

Builds a status of N tasks (default 100,000: mixed states, a third with an earlier attempt,
failures of several classes in the last hour) and times, over R repetitions each:

1. ``core.alerts.evaluate`` (pure: stall, failure rate per class, outages, finished, exhausted),
   the first time (every failed task asks the retry policy) and in steady state (told already);
2. ``notify.step.evaluate`` (steady state under the alert file's lock, the file read and written);
3. the metrics families and ``prometheus_client.write_to_textfile`` of the .prom file;
4. ``Outputs.step``, the daemon's one call per iteration, in steady state (no task changed).

    python benchmarks/bench_notify.py                 # 100,000 tasks, 5 repetitions
    python benchmarks/bench_notify.py -n 10000 -r 10
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from types import SimpleNamespace

from batchman.core import alerts as AL
from batchman.core import decide as D
from batchman.core import states as S
from batchman.core.model import Attempt, Daemon, Status, Task
from batchman.notify import metrics as M
from batchman.notify import step as NS
from batchman.notify.outbox import Outbox
from batchman.params import validate


def status(n: int, now: float) -> Status:
    rng = random.Random(1)
    states = [S.COMPLETED] * 5 + [S.RUNNING, S.QUEUED, S.STAGING, S.FAILED, S.NEW]
    classes = ["out-of-memory", "timeout", "exit-nonzero"]
    tasks = []
    for r in range(n):
        st = rng.choice(states)
        fin = now - rng.uniform(0, 7200) if st in (S.COMPLETED, S.FAILED) else None
        past = (Attempt(n=1, state=S.FAILED, failure_class=rng.choice(classes), finished_at=now - rng.uniform(0, 7200)),) \
            if r % 3 == 0 else ()
        tasks.append(Task(run=r, state=st, since=now - rng.uniform(0, 600), attempt=1 + len(past), finished_at=fin,
                          failure_class=rng.choice(classes) if st == S.FAILED else "", past=past, added_at=now - 9000))
    return Status(tasks=tasks, daemons=[Daemon("h:1", "h", 1, now - 9000, now)])


def timed(fn, reps: int) -> tuple[float, float]:
    xs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs), max(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100_000, help="tasks (default 100,000)")
    ap.add_argument("-r", type=int, default=5, help="repetitions (default 5)")
    a = ap.parse_args()
    now = time.time()
    st = status(a.n, now)
    with tempfile.TemporaryDirectory() as d:
        params = validate({"notify": {"targets": ["json://127.0.0.1:9/x"]}, "metrics": {"textfile": f"{d}/m.prom"}}, d)
        pol = D.Policy.from_params(params)
        cond = NS.conditions(params)
        ob = Outbox(f"{d}/status.json.alerts.json", [], 5, 60)
        no_commands = SimpleNamespace(command_records=lambda: [])      # the backends' command log, empty
        eng = SimpleNamespace(batch=no_commands, staging=no_commands, next_query=0.0, query_failures=0)
        rep = SimpleNamespace(transitions=[], seconds_total=0.5, lock_max=0.01)
        tot = M.Totals()
        left = lambda t: D.has_work([t], pol)     # noqa: E731
        told, _ = AL.evaluate(AL.AlertState(), st, cond, now, left)
        ended = AL.ended_attempts(st.tasks)
        rows = [
            ("core.alerts.evaluate, first time", lambda: AL.evaluate(AL.AlertState(), st, cond, now, left)),
            ("core.alerts.evaluate, steady state", lambda: AL.evaluate(told, st, cond, now + 60, left)),
            ("ended_attempts (shared by both below)", lambda: AL.ended_attempts(st.tasks)),
            ("notify.step.evaluate (file, lock)", lambda: NS.evaluate(ob, st, cond, left, now, ended)),
            ("metrics families + write_to_textfile",
             lambda: M.write(f"{d}/m.prom", M.families(st, "bench", tot, eng, rep, now, (), ended))),
        ]
        params = validate({"notify": {"targets": ["json://127.0.0.1:9/x"]}, "metrics": {"textfile": f"{d}/m.prom"},
                           "daemon": {"status_file": f"{d}/status.json"}}, d)
        out = NS.Outputs(params)
        out.outbox.kick = lambda: None         # no sending: the figure is the daemon's own cost
        rep.work_left = True
        out.step(eng, st, rep, now)
        rows.append(("Outputs.step, steady state (all of it)", lambda: out.step(eng, st, rep, now + 60)))
        print(f"{a.n:,} tasks, {a.r} repetitions (median / max seconds)")
        for name, fn in rows:
            med, mx = timed(fn, a.r)
            print(f"  {name:40s} {med:7.3f} / {mx:7.3f}")


if __name__ == "__main__":
    main()
