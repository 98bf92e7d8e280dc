#!/usr/bin/env python3
"""Issue 4's figures: staging commands per daemon iteration and the iteration time, for 10,000
tasks of 3 segments each, with the jcache test double (tests/doubles/jcache) as the tape library.

The Engine runs in-process (as in bench_daemon.py) with the real JcacheStaging backend built by
``make_staging`` from batchman.yaml; the batch system is an instant fake whose jobs finish with
exit 0 as soon as they are asked about. Two productions:

  slow tape (JCACHE_DOUBLE_DELAY=3600): discover -> request everything -> steady staging -> kill all
  fast tape (delay 0):                  discover -> request -> staged -> submit -> complete + release

Per iteration: commands by jcache sub-command (get, pendingRequest, status, unpin, cancel), the
seconds spent in them (the double is a Python program that rewrites its JSON state on every call:
its times say nothing about the real jcache), the seconds in batchman's engine (read, decide,
write: ``seconds_own``), and the rest of the iteration outside commands (backend parsing of the
pendingRequest output, stat of every cache copy, job scripts).

    python benchmarks/bench_staging.py [--tasks 10000] [--segments 3] [--chunk 500]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from batchman import actions  # noqa: E402
from batchman import params as P  # noqa: E402
from batchman.backends.base import FINISHED, BatchBase, JobInfo, Runner  # noqa: E402
from batchman.backends.factory import make_staging  # noqa: E402
from batchman.daemon.engine import Engine  # noqa: E402
from batchman.experiment import open_experiment  # noqa: E402

DOUBLES = os.path.join(ROOT, "tests", "doubles")
SUBCOMMANDS = ("get", "pendingRequest", "status", "unpin", "cancel")


class InstantBatch(BatchBase):
    """Jobs finish (exit 0) the moment they are asked about; submit and cancel cost nothing."""
    name = "instant"

    def __init__(self):
        self.n = 0
        self.runner = Runner()

    def submit(self, spec):
        self.n += 1
        return str(self.n)

    def query(self, jobs):
        return {n: JobInfo(n, j or "1", FINISHED, native_state="COMPLETED", exit_code=0) for n, j in jobs.items()}

    def cancel(self, ids):
        pass

    def list_ours(self, prefix):
        return []

    def details(self, jid):
        return ""


def setup(root: str, tasks: int, segments: int, chunk: int, delay: float):
    raw, cache, state = (os.path.join(root, d) for d in ("raw", "cache", "jstate"))
    os.makedirs(raw)
    os.makedirs(cache)
    for r in range(tasks):
        for s in range(segments):
            with open(os.path.join(raw, f"run_{100000 + r}.dat.{s}"), "w") as f:
                f.write("x\n")
    analyze = os.path.join(root, "analyze")
    with open(analyze, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(analyze, 0o755)
    values = P.defaults()
    values.update({"staging.backend": "jcache", "staging.stub_dir": "raw", "staging.cache_dir": "cache",
                   "staging.user": "bench", "staging.chunk_size": chunk, "staging.limit": tasks * segments,
                   "staging.awol_grace": 3600.0, "batch.max_jobs": tasks, "daemon.html_file": ""})
    for k in ("batch.max_submit_per_iteration", "batch.max_kill_per_iteration", "staging.max_requests_per_iteration",
              "staging.max_stage_per_iteration"):
        if k in P.BY_KEY:
            values[k] = 0                                   # no per-iteration cap: the worst case
    with open(os.path.join(root, P.CONFIG_NAME), "w") as f:
        f.write(P.render_yaml(values))
    env = {"PATH": DOUBLES + os.pathsep + os.environ["PATH"], "JCACHE_DOUBLE_DIR": state,
           "JCACHE_DOUBLE_MSS": raw, "JCACHE_DOUBLE_CACHE": cache, "JCACHE_DOUBLE_USER": "bench",
           "JCACHE_DOUBLE_DELAY": str(delay)}
    e = open_experiment(root)
    actions.add_runs(e.store, [100000 + r for r in range(tasks)])
    runner = Runner(timeout=600, env=env)
    # The Runner passes env to the double; the PATH lookup of "jcache" is the daemon's own.
    os.environ["PATH"] = env["PATH"]
    staging = make_staging(e.params, runner=runner)
    eng = Engine(e.params, e.store, InstantBatch(), staging, mode="bench")
    return e, eng, runner


def iterate(eng: Engine, runner: Runner, label: str) -> dict:
    n0 = len(runner.records)
    rep = eng.run_once()
    recs = runner.records[n0:]
    by = collections.Counter(r.argv[1] if len(r.argv) > 1 else r.argv[0] for r in recs)
    cmd_s = sum(r.seconds for r in recs)
    files = sum(max(0, len(r.argv) - 2) for r in recs if r.argv[1:2] in (["get"], ["unpin"]))
    return {"label": label, "changes": len(rep.transitions), "cmds": by, "n": len(recs), "files": files,
            "cmd_s": cmd_s, "own_s": rep.seconds_own, "rest_s": max(0.0, rep.seconds_total - rep.seconds_own - cmd_s),
            "errors": rep.errors}


def production(tasks: int, segments: int, chunk: int, slow: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as root:
        e, eng, runner = setup(root, tasks, segments, chunk, 3600.0 if slow else 0.0)
        rows.append(iterate(eng, runner, "discover segments"))
        rows.append(iterate(eng, runner, "request all"))
        if slow:
            rows.append(iterate(eng, runner, "steady: all staging"))
            rows.append(iterate(eng, runner, "steady: all staging"))
            actions.queue_request(e.store, {t.key for t in e.store.read().tasks}, "kill")
            rows.append(iterate(eng, runner, "kill all (cancel+unpin)"))
        else:
            rows.append(iterate(eng, runner, "all staged"))
            rows.append(iterate(eng, runner, "submit all"))
            rows.append(iterate(eng, runner, "complete + release"))
        states = collections.Counter(t.state for t in e.store.read().tasks)
        rows.append({"label": "final states: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--segments", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=500, help="staging.chunk_size: files per get/unpin")
    a = ap.parse_args()
    head = (f"{'iteration':<26} {'chg':>6} " + " ".join(f"{c:>6}" for c in ("get", "pendRq", "status", "unpin", "cancel"))
            + f" {'cmds':>5} {'files':>6} {'cmd s':>7} {'own s':>7} {'rest s':>7}")
    print(f"{a.tasks} tasks x {a.segments} segments, jcache double, staging.chunk_size={a.chunk}")
    for slow in (True, False):
        print(f"\n{'slow tape (requests stay pending)' if slow else 'fast tape (files arrive at once)'}")
        print(head)
        for r in production(a.tasks, a.segments, a.chunk, slow):
            if "cmds" not in r:
                print(f"  {r['label']}")
                continue
            c = r["cmds"]
            print(f"{r['label']:<26} {r['changes']:>6} " + " ".join(f"{c.get(k, 0):>6}" for k in SUBCOMMANDS)
                  + f" {r['n']:>5} {r['files']:>6} {r['cmd_s']:>7.2f} {r['own_s']:>7.2f} {r['rest_s']:>7.2f}")
            for err in r["errors"][:3]:
                print(f"    problem: {err}")
    print("\nchg = state changes; cmds = jcache commands run; files = files named in get/unpin;\n"
          "cmd s = seconds in jcache commands (the double: says nothing about the real one);\n"
          "own s = batchman's engine (read, decide, write the status file); rest s = the rest of the\n"
          "iteration outside commands (parsing pendingRequest, stat of cache copies, job scripts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
