#!/usr/bin/env python3
"""Issue 3's figures: the daemon driving N tasks (default 200) on the real one-node SLURM cluster.

The Engine runs in-process with the real backend (``make_batch(params)``) exactly as
``batchman-daemon loop`` drives it (an ``update_unknown`` squeue every 10th iteration
included), so every SLURM command it runs is in the backend's ``runner.records``. Reported:

* SLURM commands per iteration, max and mean: queries (squeue, sacct, scontrol) apart from
  actions (sbatch, scancel). Target: at most 3 queries per iteration whatever N.
* slurmctld RPCs for the whole workload from ``sdiag`` (reset with ``sdiag -r`` first), per
  type, in total and per job; and slurmdbd's (``sacctmgr show stats``, reset first) when
  the cluster has it -- plain sacct goes there, not to slurmctld.
* wall time from the first sbatch to the last job's end (its own stamp) and to the daemon
  having recorded every task completed.

Needs the cluster of contrib/slurm/start.sh (source /tmp/batchman-slurm/env.sh or set
BATCHMAN_SLURM_DIR); sdiag -r needs root. Other users of the cluster skew the sdiag counts.

    python benchmarks/bench_slurm.py [--tasks 200] [--sleep 1] [--delay 1] [--accounting auto]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from batchman import actions, params as P  # noqa: E402
from batchman.core import states as S
from batchman.backends.factory import make_batch, make_staging  # noqa: E402
from batchman.daemon.engine import Engine  # noqa: E402
from batchman.experiment import open_experiment  # noqa: E402

SLURM_DIR = os.environ.get("BATCHMAN_SLURM_DIR", "/tmp/batchman-slurm")
QUERY = {"squeue", "sacct", "scontrol"}

ANALYSIS = r"""#!/bin/bash
echo "$BATCHMAN_TASK start $(date +%s.%N)" >> "$BENCH_LOG"
sleep "${BENCH_SLEEP:-1}"
echo "segments_analysed = 1" > "$BATCHMAN_STATS_FILE"
echo "$BATCHMAN_TASK end $(date +%s.%N)" >> "$BENCH_LOG"
"""


def slurm_env() -> None:
    """SLURM_CONF etc. from the cluster's env.sh into our environment (the runner inherits it)."""
    path = os.path.join(SLURM_DIR, "env.sh")
    with open(path) as f:
        for line in f:
            m = re.fullmatch(r"\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.rstrip("\n"))
            if m:
                os.environ[m.group(1)] = m.group(2).strip().strip("'\"")


def command_name(argv: list[str]) -> str:
    """The program a record ran: ``env -- K=V ... sbatch ...`` (how the environment travels,
    issue 14) counts as ``sbatch``."""
    if argv and argv[0] == "env":
        rest = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        return next((a for a in rest if "=" not in a), "env")
    return argv[0] if argv else ""


def sh(*argv: str) -> str:
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if cp.returncode:
        raise SystemExit(f"{' '.join(argv)} failed: {cp.stderr.strip()}")
    return cp.stdout


def parse_sdiag_rpcs(text: str) -> dict[str, int]:
    """The 'Remote Procedure Call statistics by message type' block of sdiag -> {type: count}."""
    out: dict[str, int] = {}
    block = text.split("by message type", 1)[-1].split("by user", 1)[0]
    for m in re.finditer(r"^\s*([A-Z_]+)\s+\(\s*\d+\)\s+count:(\d+)", block, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


def parse_dbd_stats(text: str) -> dict[str, int]:
    """``sacctmgr show stats`` RPC lines ('DBD_GET_JOBS_COND ( 1444) count:12 ...')."""
    out: dict[str, int] = {}
    block = text.split("Remote Procedure Call statistics by message type", 1)[-1].split("by user", 1)[0]
    for m in re.finditer(r"^\s*([A-Z_]+)\s+\(\s*\d+\)\s+count:(\d+)", block, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


def make(root: str, n: int, delay: float, accounting: str) -> None:
    os.makedirs(os.path.join(root, "raw"), exist_ok=True)
    for r in range(1, n + 1):
        with open(os.path.join(root, "raw", f"run_{r}.dat.0"), "w") as f:
            f.write("x\n")
    with open(os.path.join(root, "analyze"), "w") as f:
        f.write(ANALYSIS)
    os.chmod(os.path.join(root, "analyze"), 0o755)
    values = P.defaults()
    values.update({"batch.backend": "slurm", "batch.slurm_accounting": accounting,
                   "batch.max_jobs": max(n, 1), "batch.time_limit": 600, "batch.command_timeout": 30.0,
                   "staging.stub_dir": "raw", "staging.cache_dir": "raw", "daemon.delay": delay,
                   "daemon.submit_grace": 120.0})
    with open(os.path.join(root, P.CONFIG_NAME), "w") as f:
        f.write(P.render_yaml(values))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=1.0, help="seconds each job sleeps")
    ap.add_argument("--delay", type=float, default=1.0, help="daemon.delay: seconds between iterations")
    ap.add_argument("--accounting", default="auto", choices=("auto", "slurmdbd", "jobcomp"))
    ap.add_argument("--keep", action="store_true", help="keep the experiment directory")
    a = ap.parse_args()
    slurm_env()
    sh("sinfo", "--noheader")
    cluster_acct = open(os.path.join(SLURM_DIR, "accounting")).read().strip() \
        if os.path.exists(os.path.join(SLURM_DIR, "accounting")) else "jobcomp"

    root = tempfile.mkdtemp(prefix="bench-slurm-")
    os.chmod(root, 0o755)
    make(root, a.tasks, a.delay, a.accounting)
    os.environ["BENCH_LOG"] = os.path.join(root, "jobs.log")
    os.environ["BENCH_SLEEP"] = str(a.sleep)
    e = open_experiment(root)
    actions.add_runs(e.store, list(range(1, a.tasks + 1)))
    batch = make_batch(e.params)
    eng = Engine(e.params, e.store, batch, make_staging(e.params), mode="bench")
    runner = batch.runner

    sh("sdiag", "-r")
    dbd = cluster_acct == "slurmdbd"
    if dbd:
        sh("sacctmgr", "-i", "clear", "stats")
    per_iter: list[Counter] = []
    first_submit = last_done = None
    t_loop = time.time()
    while True:
        n0 = len(runner.records)
        t_it = time.time()
        rep = eng.run_once()
        if eng.iterations % 10 == 1:           # as daemon.loop does: look for unknown jobs
            eng.update_unknown()
        c = Counter(command_name(r.argv) for r in runner.records[n0:])
        per_iter.append(c)
        if c.get("sbatch") and first_submit is None:
            first_submit = t_it
        if not rep.work_left:
            last_done = time.time()
            break
        if time.time() - t_loop > 3600:
            print("giving up after an hour", file=sys.stderr)
            break
        time.sleep(a.delay)
    rpcs = parse_sdiag_rpcs(sh("sdiag"))
    dbd_rpcs = parse_dbd_stats(sh("sacctmgr", "show", "stats")) if dbd else {}

    st = e.store.read()
    states = Counter(t.state for t in st.tasks)
    ends = [float(l.split()[2]) for l in open(os.environ["BENCH_LOG"]) if l.split()[1] == "end"]
    starts = [l.split()[0] for l in open(os.environ["BENCH_LOG"]) if l.split()[1] == "start"]
    n = a.tasks
    queries = [sum(v for k, v in c.items() if k in QUERY) for c in per_iter]
    acts = [sum(v for k, v in c.items() if k not in QUERY) for c in per_iter]
    totals = Counter()
    for c in per_iter:
        totals.update(c)

    print(f"batchman daemon on SLURM: {n} tasks, jobs sleep {a.sleep:g} s, daemon.delay {a.delay:g} s, "
          f"accounting {batch.accounting} (cluster: {cluster_acct})")
    print(f"final states: {dict(states)}; analysis starts: {len(starts)} for {len(set(starts))} tasks")
    print()
    print(f"{'per iteration':<34}{'max':>8}{'mean':>8}")
    print(f"{'  query commands (squeue/sacct)':<34}{max(queries):>8}{sum(queries) / len(queries):>8.2f}")
    print(f"{'  action commands (sbatch/scancel)':<34}{max(acts):>8}{sum(acts) / len(acts):>8.2f}")
    print(f"{'  all SLURM commands':<34}{max(q + x for q, x in zip(queries, acts)):>8}"
          f"{sum(queries + acts) / len(queries):>8.2f}")
    print(f"iterations: {len(per_iter)}; commands in all: "
          + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    print()
    # What our own commands explain (measured on 22.05: each squeue = REQUEST_JOB_INFO +
    # REQUEST_PARTITION_INFO, each sbatch = REQUEST_SUBMIT_BATCH_JOB); the rest of those
    # types came from other clients of the shared cluster.
    ours = {"REQUEST_JOB_INFO": totals["squeue"], "REQUEST_PARTITION_INFO": totals["squeue"],
            "REQUEST_SUBMIT_BATCH_JOB": totals["sbatch"]}
    print(f"{'slurmctld RPC (sdiag)':<36}{'count':>8}{'per job':>9}{'by our cmds':>13}")
    for k, v in sorted(rpcs.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<34}{v:>8}{v / n:>9.2f}{ours.get(k, ''):>13}")
    tot = sum(rpcs.values())
    print(f"  {'total':<34}{tot:>8}{tot / n:>9.2f}")
    other = sum(max(0, rpcs.get(k, 0) - v) for k, v in ours.items())
    if other:
        print(f"  (of these, {other} query/submit RPCs are more than our commands explain: "
              f"another client used the cluster meanwhile)")
    if dbd_rpcs:
        print(f"{'slurmdbd RPC (sacctmgr show stats)':<36}{'count':>8}{'per job':>9}")
        for k, v in sorted(dbd_rpcs.items(), key=lambda kv: -kv[1]):
            print(f"  {k:<34}{v:>8}{v / n:>9.2f}")
    print()
    if first_submit is not None and ends:
        print(f"makespan: first sbatch -> last job end {max(ends) - first_submit:.1f} s; "
              f"-> daemon saw all done {last_done - first_submit:.1f} s "
              f"({(last_done - first_submit) / n:.2f} s per job on this node)")
    if not a.keep:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"experiment kept in {root}")
    return 0 if states.get(S.COMPLETED) == n else 1


if __name__ == "__main__":
    sys.exit(main())
