#!/usr/bin/env python3
"""Issue 8's figures: what batchman's polling costs slurmctld, against the plainest correct script.

Two runs of the same workload (N short jobs) on the real one-node cluster:

* plain: ``sbatch`` every job, then one ``squeue -t all`` per round (every ``--interval`` s)
  until all have ended -- the least any correct poller can do;
* batchman: the Engine in-process with the real backend, ``batch.min_query_interval`` =
  ``--interval``, ``daemon.delay`` 1 s (marker files read every second, the batch system asked
  only about jobs without one), unknown-job scans as ``batchman-daemon loop`` does them.

For each: slurmctld RPCs from ``sdiag`` (reset with ``sdiag -r`` before), per job; batch commands
per round; makespan (first sbatch -> the poller knows all ended). With ``--outage S`` slurmctld
is stopped for S s in the middle of the batchman run (contrib/slurm/stop.sh / start.sh) and every
round during which the batch system failed is checked for state changes caused by it (any task
leaving a state other than through its own exit marker). Target: batchman within 10 % of the
plain script's RPCs per job, and no such round.

    python benchmarks/bench_retry_polling.py [--tasks 200] [--sleep 0] [--interval 5] [--outage 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_slurm import command_name, make, parse_sdiag_rpcs, sh, slurm_env, SLURM_DIR  # noqa: E402

from batchman import actions, params as P  # noqa: E402
from batchman.core import states as S
from batchman.backends.factory import make_batch, make_staging  # noqa: E402
from batchman.daemon.engine import Engine  # noqa: E402
from batchman.experiment import open_experiment  # noqa: E402

REPO = os.path.dirname(HERE)
JOB = "#!/bin/bash\nsleep \"${BENCH_SLEEP:-0}\"\n"


def rpc_total() -> tuple[int, dict[str, int]]:
    r = parse_sdiag_rpcs(sh("sdiag"))
    return sum(r.values()), r


def plain(n: int, sleep: float, interval: float, root: str) -> dict:
    """Submit all, then one squeue per round until every job has ended."""
    script = os.path.join(root, "plain.sh")
    with open(script, "w") as f:
        f.write(JOB)
    os.chmod(script, 0o755)
    tag = f"plain{os.getpid()}"
    sh("sdiag", "-r")
    t0 = time.time()
    ids = set()
    for i in range(n):
        out = sh("sbatch", "--parsable", f"--job-name={tag}.{i}", f"--output={root}/plain.out",
                 "--time=10", f"--chdir={root}", script)
        ids.add(out.strip().split(";")[0])
    cmds = Counter(sbatch=n)
    rounds = 0
    while True:
        time.sleep(interval)
        cp = subprocess.run(["squeue", "--noheader", "--states=all", f"--user={os.environ.get('USER', 'root')}",
                             "--format=%i|%T"], capture_output=True, text=True, timeout=60)
        cmds["squeue"] += 1
        rounds += 1
        if cp.returncode:
            continue
        alive = {l.split("|")[0] for l in cp.stdout.split() if l.split("|")[1] in
                 ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED")}
        if not (ids & alive):
            break
    done = time.time()
    tot, per = rpc_total()
    return {"rpcs": tot, "per_type": per, "makespan": done - t0, "rounds": rounds, "commands": cmds,
            "per_round": [1] * rounds}


def stop_ctld() -> None:
    subprocess.run(["bash", os.path.join(REPO, "contrib/slurm/stop.sh"), "slurmctld"], capture_output=True,
                   timeout=60, check=True)


def start_ctld() -> None:
    acct = open(os.path.join(SLURM_DIR, "accounting")).read().strip() \
        if os.path.exists(os.path.join(SLURM_DIR, "accounting")) else "jobcomp"
    subprocess.run(["bash", os.path.join(REPO, "contrib/slurm/start.sh")]
                   + (["--with-slurmdbd"] if acct == "slurmdbd" else []), capture_output=True, timeout=120, check=True)


def with_batchman(n: int, sleep: float, interval: float, root: str, outage: float) -> dict:
    make(root, n, 1.0, "jobcomp")
    with open(os.path.join(root, "analyze"), "w") as f:
        f.write("#!/bin/bash\nsleep \"${BENCH_SLEEP:-0}\"\necho 'segments_analysed = 1' > \"$BATCHMAN_STATS_FILE\"\n")
    values = P.load(root).values
    values.update({"batch.min_query_interval": interval, "batch.max_submit_per_iteration": 0,
                   "batch.backoff_cap": 30.0, "batch.command_timeout": 5.0})
    with open(os.path.join(root, P.CONFIG_NAME), "w") as f:
        f.write(P.render_yaml(values))
    e = open_experiment(root)
    actions.add_runs(e.store, list(range(1, n + 1)))
    batch = make_batch(e.params)
    eng = Engine(e.params, e.store, batch, make_staging(e.params), mode="bench")
    runner = batch.runner
    sh("sdiag", "-r")
    t0 = time.time()
    per_round: list[int] = []
    per_cmd = Counter()
    bad_rounds = []           # rounds with a batch-system failure during which a task changed wrongly
    failed_rounds = 0
    down_at = up_at = None
    before_outage = None
    while True:
        if outage and down_at is None and sum(t.state == S.COMPLETED for t in e.store.read().tasks) >= n // 3:
            before_outage = rpc_total()
            stop_ctld()
            down_at = time.time()
        if down_at is not None and up_at is None and time.time() - down_at >= outage:
            start_ctld()
            up_at = time.time()
        before = {t.key: (t.state, t.job_id) for t in e.store.read().tasks}
        n0 = len(runner.records)
        rep = eng.run_once()
        if eng.iterations % 10 == 1:
            eng.update_unknown()
        cmds = runner.records[n0:]
        per_cmd.update(command_name(r.argv) for r in cmds)
        if rep.batch in ("ok", "down"):
            per_round.append(sum(1 for r in cmds if r.argv[0] in ("squeue", "sacct", "scontrol")))
        if rep.batch == "down" or (rep.batch == "waiting" and eng.query_failures):
            failed_rounds += 1
            after = {t.key: t for t in e.store.read().tasks}
            adir = eng.paths.attempt_dir
            for k, (st, _) in before.items():
                t = after.get(k)
                if t is None or t.state == st:
                    continue
                by_marker = t.state in S.TERMINAL and os.path.exists(os.path.join(adir(t.job_name), "exit"))
                if not by_marker:
                    bad_rounds.append((eng.iterations, k, st, t.state, t.reason))
        if not rep.work_left:
            break
        if time.time() - t0 > 3600:
            break
        time.sleep(1.0)
    done = time.time()
    tot, per = rpc_total()
    if before_outage is not None:
        # slurmctld's restart zeroed sdiag: add what it had counted before it was stopped
        tot += before_outage[0]
        per = Counter(per) + Counter(before_outage[1])
    st = e.store.read()
    return {"rpcs": tot, "per_type": per, "makespan": done - t0, "rounds": len(per_round),
            "commands": per_cmd, "per_round": per_round or [0], "bad_rounds": bad_rounds,
            "failed_rounds": failed_rounds, "states": Counter(t.state for t in st.tasks),
            "outage": (up_at - down_at) if down_at and up_at else 0.0,
            "calls_hour": st.last_iteration.calls_hour if st.last_iteration else 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds each job sleeps")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between queries (both pollers)")
    ap.add_argument("--outage", type=float, default=0.0, help="stop slurmctld this long in the batchman run")
    a = ap.parse_args()
    slurm_env()
    os.environ["BENCH_SLEEP"] = str(a.sleep)
    os.environ["BENCH_LOG"] = "/dev/null"
    sh("sinfo", "--noheader")
    with tempfile.TemporaryDirectory(prefix="bench-rp-") as d:
        os.chmod(d, 0o755)
        os.makedirs(f"{d}/p")
        os.makedirs(f"{d}/b")
        p = plain(a.tasks, a.sleep, a.interval, f"{d}/p")
        b = with_batchman(a.tasks, a.sleep, a.interval, f"{d}/b", a.outage)
    n = a.tasks
    print(f"{n} jobs sleeping {a.sleep:g} s, one query round every {a.interval:g} s at most"
          + (f"; slurmctld stopped {b['outage']:.0f} s during the batchman run" if b["outage"] else ""))
    print(f"{'':<34}{'plain script':>14}{'batchman':>12}")
    print(f"{'slurmctld RPCs (sdiag), total':<34}{p['rpcs']:>14}{b['rpcs']:>12}")
    print(f"{'  per job':<34}{p['rpcs'] / n:>14.2f}{b['rpcs'] / n:>12.2f}")
    for k in sorted(set(p["per_type"]) | set(b["per_type"]), key=lambda k: -(p["per_type"].get(k, 0))):
        print(f"{'    ' + k:<34}{p['per_type'].get(k, 0):>14}{b['per_type'].get(k, 0):>12}")
    print(f"{'query rounds':<34}{p['rounds']:>14}{b['rounds']:>12}")
    print(f"{'query commands per round, max':<34}{max(p['per_round']):>14}{max(b['per_round']):>12}")
    print(f"{'commands':<34}{', '.join(f'{k} {v}' for k, v in sorted(p['commands'].items())):>14}"
          f"{'  ' + ', '.join(f'{k} {v}' for k, v in sorted(b['commands'].items()))}")
    print(f"{'makespan (s)':<34}{p['makespan']:>14.1f}{b['makespan']:>12.1f}")
    ratio = b["rpcs"] / max(1, p["rpcs"])
    print(f"batchman / plain RPCs: {ratio:.3f} (target <= 1.10); batchman final states {dict(b['states'])}")
    print(f"rounds with the batch system failing: {b['failed_rounds']}; of them with a state change it "
          f"caused: {len(b['bad_rounds'])} (target 0)")
    for x in b["bad_rounds"][:10]:
        print("   ", x)
    return 0 if ratio <= 1.10 and not b["bad_rounds"] and b["states"].get(S.COMPLETED) == n else 1


if __name__ == "__main__":
    sys.exit(main())
