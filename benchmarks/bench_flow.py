#!/usr/bin/env python3
"""Issue 14's figures: batchman against the plainest correct script on the real one-node SLURM.

The workload: N independent jobs (default 200) sleeping seeded durations of 1-5 s. Two drivers,
interleaved (round 1: script then batchman, round 2: batchman then script, ...):

* the plainest script: ``sbatch`` x N, then every ``--every`` (40) seconds one ``squeue``; when
  none of its jobs is left there, one ``sacct`` confirms their end, and it exits;
* batchman: ``batchman-daemon`` (the installed one, ``python -m batchman.daemon``) on an
  experiment written with the defaults of ``batchman init`` (only the backend, the command and
  the data directories set; the data is on disk), from start to its own exit.

Reported per driver and round: wall time from start to exit; first sbatch after start (from
slurmctld's log, ms); slurmctld RPCs per job (``sdiag``, reset before each driver; another user
of the shared cluster adds to it, so the script's own figure is the yardstick); the per-job start
delay inside SLURM (slurmd's "Launching batch job" minus slurmctld's "Started JobId" or "sched:
Allocate JobId"; not measured for array elements, which those lines name otherwise); for
batchman, the time from a job's end (its own last line) to its task's final state.

    python benchmarks/bench_flow.py [--jobs 200] [--rounds 2] [--seed 14] [--every 40]
    python benchmarks/bench_flow.py --jobs 6 --rounds 1 --every 10      # a quick check
    python benchmarks/bench_flow.py --only plain --export-list --jobs 10 --every 10   # the old --export cost
"""

from __future__ import annotations

import argparse
import getpass
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_slurm import SLURM_DIR, parse_sdiag_rpcs, sh, slurm_env  # noqa: E402

from batchman import actions, params as P  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.experiment import open_experiment  # noqa: E402

LOGS = {"ctld": os.path.join(SLURM_DIR, "log", "slurmctld.log"),
        "slurmd": os.path.join(SLURM_DIR, "log", "slurmd.log")}
STAMP = r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\] "
COMMANDS = ("sbatch", "squeue", "sacct", "scancel", "scontrol")
# slurmctld RPCs per command, measured on 22.05 (benchmarks/bench_slurm.py): squeue asks for jobs
# and partitions; plain sacct goes to slurmdbd and sacct -c reads the completion log: none.
CTLD_RPCS = {"sbatch": 1, "squeue": 2, "scancel": 1, "scontrol": 1, "sacct": 0}
PATTERNS = {"submit": ("ctld", STAMP + r"_slurm_rpc_submit_batch_job: JobId=(\d+) "),
            # the backfill scheduler says "Started JobId=N", the main one "sched: Allocate JobId=N"
            "started": ("ctld", STAMP + r".*(?:Started|sched: Allocate) JobId=(\d+) "),
            "launch": ("slurmd", STAMP + r"Launching batch job (\d+) ")}

# The job of both drivers: sleep its duration; batchman's also stamps its end and writes stats.
PLAIN_JOB = '#!/bin/bash\nsleep "$1"\n'
ANALYSIS = r"""#!/bin/bash
sleep "$(sed -n "${1}p" "$BENCH_DURATIONS")"
echo "segments_analysed = 1" > "$BATCHMAN_STATS_FILE"
echo "$1 end $(date +%s.%N)" >> "$BENCH_LOG"
"""


def durations(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(1.0, 5.0), 1) for _ in range(n)]


class SlurmLogs:
    """What the daemons' logs say about job ids, read from the offsets at construction."""

    def __init__(self):
        self.offsets = {k: os.path.getsize(p) if os.path.exists(p) else 0 for k, p in LOGS.items()}

    def events(self) -> dict[str, dict[str, float]]:
        text = {}
        for k, p in LOGS.items():
            try:
                with open(p, "rb") as f:
                    f.seek(self.offsets[k])
                    text[k] = f.read().decode("utf-8", "replace")
            except OSError:
                text[k] = ""
        out: dict[str, dict[str, float]] = {}
        for what, (log, pat) in PATTERNS.items():
            out[what] = {m.group(2): datetime.fromisoformat(m.group(1)).timestamp()
                         for m in re.finditer(pat, text[log], re.M)}
        return out


def counting_shims(bindir: str) -> None:
    """Put a counting wrapper of each SLURM command first on PATH: it appends its name to
    $BENCH_CMDS and runs the real one (so a driver's own commands are counted even when other
    users of the shared cluster move sdiag's totals)."""
    os.makedirs(bindir, exist_ok=True)
    for c in COMMANDS:
        real = shutil.which(c)
        if real is None:
            raise SystemExit(f"{c} not found on PATH; source {SLURM_DIR}/env.sh")
        path = os.path.join(bindir, c)
        with open(path, "w") as f:
            f.write(f'#!/bin/bash\necho {c} >> "$BENCH_CMDS"\nexec {real} "$@"\n')
        os.chmod(path, 0o755)
    os.environ["PATH"] = bindir + os.pathsep + os.environ["PATH"]


def own_commands(path: str) -> dict[str, int]:
    out = dict.fromkeys(COMMANDS, 0)
    if os.path.exists(path):
        for line in open(path):
            out[line.strip()] = out.get(line.strip(), 0) + 1
    return out


def measure(ids: list[str], t0: float, t_end: float, logs: SlurmLogs, n: int) -> dict:
    cmds = own_commands(os.environ["BENCH_CMDS"])
    ev = logs.events()
    # an array element's id is <array id>_<index>; slurmctld logs the array's submission by its id
    subs = [ev["submit"][i.split("_")[0]] for i in ids if i.split("_")[0] in ev["submit"]]
    delays = [ev["launch"][i] - ev["started"][i] for i in ids if i in ev["launch"] and i in ev["started"]]
    rpcs = parse_sdiag_rpcs(sh("sdiag"))
    return {"wall": t_end - t0, "first_sbatch": (min(subs) - t0) if subs else float("nan"),
            "rpcs_per_job": sum(rpcs.values()) / n, "start_delay": delays, "commands": cmds,
            "own_rpcs_per_job": sum(CTLD_RPCS.get(k, 1) * v for k, v in cmds.items()) / n}


def plain(root: str, durs: list[float], tag: str, every: float, accounting: str,
          export_list: bool = False) -> dict:
    script = os.path.join(root, "plain.sh")
    with open(script, "w") as f:
        f.write(PLAIN_JOB)
    os.chmod(script, 0o755)
    user = getpass.getuser()
    logs = SlurmLogs()
    sh("sdiag", "-r")
    t0 = time.time()
    # --export-list: as batchman submitted before issue 14 (16 variables on the command line)
    export = [",".join(["--export=ALL"] + [f"BENCH_V{k}=value{k}" for k in range(16)])] if export_list else []
    ids = [sh("sbatch", "--parsable", f"--job-name={tag}.{i}", f"--output={root}/plain.out", *export,
              script, str(d)).strip().split(";")[0] for i, d in enumerate(durs)]
    while True:
        time.sleep(every)
        names = sh("squeue", "--noheader", "-u", user, "-o", "%j").split()
        if not any(n.startswith(tag + ".") for n in names):
            argv = ["sacct", "--noheader", "--parsable2", "-X", "-o", "JobID,State", "-j", ",".join(ids)]
            sh(*(argv[:1] + ["-c"] + argv[1:] if accounting == "jobcomp" else argv))
            break
    return measure(ids, t0, time.time(), logs, len(durs))


SETTINGS: dict = {}                 # --arrays on|off: batch.arrays over the init default


def make_experiment(root: str, durs: list[float]) -> None:
    os.makedirs(os.path.join(root, "raw"))
    for r in range(1, len(durs) + 1):
        with open(os.path.join(root, "raw", f"run_{r}.dat.0"), "w") as f:
            f.write("x\n")
    with open(os.path.join(root, "durations.txt"), "w") as f:
        f.write("".join(f"{d}\n" for d in durs))
    with open(os.path.join(root, "analyze"), "w") as f:
        f.write(ANALYSIS)
    os.chmod(os.path.join(root, "analyze"), 0o755)
    values = P.defaults()           # what `batchman init` writes, plus the site and the data
    values.update({"batch.backend": "slurm", "staging.stub_dir": "raw", "staging.cache_dir": "raw", **SETTINGS})
    with open(os.path.join(root, P.CONFIG_NAME), "w") as f:
        f.write(P.render_yaml(values))
    actions.add_runs(open_experiment(root).store, list(range(1, len(durs) + 1)))


def batchman(root: str, durs: list[float], timeout: float) -> dict:
    make_experiment(root, durs)
    env = {**os.environ, "BENCH_LOG": os.path.join(root, "jobs.log"),
           "BENCH_DURATIONS": os.path.join(root, "durations.txt")}
    logs = SlurmLogs()
    sh("sdiag", "-r")
    t0 = time.time()
    cp = subprocess.run([sys.executable, "-m", "batchman.daemon", "-C", root], env=env, timeout=timeout,
                        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    t_end = time.time()
    if cp.returncode:
        raise SystemExit(f"batchman-daemon failed (exit {cp.returncode}): {cp.stderr.strip()[-500:]}")
    st = open_experiment(root).store.read()
    ids = [t.job_id for t in st.tasks if t.job_id]
    out = measure(ids, t0, t_end, logs, len(durs))
    ends = {}
    if os.path.exists(env["BENCH_LOG"]):
        for line in open(env["BENCH_LOG"]):
            run, _, stamp = line.split()
            ends[int(run)] = float(stamp)
    out["end_to_final"] = [t.since - ends[t.run] for t in st.tasks if t.run in ends and t.state == S.COMPLETED]
    out["completed"] = sum(t.state == S.COMPLETED for t in st.tasks)
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def show(name: str, r: int, m: dict) -> None:
    d = m["start_delay"]
    line = (f"{name:<10}{r:>6}{m['wall']:>10.1f}{m['first_sbatch']:>13.2f}{m['own_rpcs_per_job']:>10.2f}"
            f"{m['rpcs_per_job']:>10.2f}"
            f"{statistics.median(d) * 1000 if d else float('nan'):>13.0f}{max(d) * 1000 if d else float('nan'):>9.0f}")
    if "end_to_final" in m:
        e = m["end_to_final"]
        line += (f"{statistics.median(e) if e else float('nan'):>14.1f}{pct(e, 0.9):>8.1f}"
                 f"   completed {m['completed']}")
    print(line, flush=True)
    print(f"{'':<16}commands: " + ", ".join(f"{k} {v}" for k, v in m["commands"].items() if v), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200, help="jobs per driver and round (default 200)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of both drivers, interleaved (default 2)")
    ap.add_argument("--seed", type=int, default=14, help="seed of the job durations (1-5 s)")
    ap.add_argument("--every", type=float, default=40.0, help="the plain script's query interval (s)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="give up on a driver after this long (s)")
    ap.add_argument("--export-list", action="store_true",
                    help="the plain script passes 16 variables as --export=ALL,K=V,... (batchman's old way), "
                         "to measure what that list costs each job's start")
    ap.add_argument("--only", choices=("plain", "batchman"), help="run one driver only")
    ap.add_argument("--keep", action="store_true", help="keep the working directories")
    ap.add_argument("--arrays", choices=("on", "off"), help="batchman with batch.arrays on or off (default: as init writes it)")
    a = ap.parse_args()
    if a.arrays:
        SETTINGS["batch.arrays"] = a.arrays == "on"
    if a.jobs < 1 or a.rounds < 1:
        ap.error("--jobs and --rounds must be at least 1")
    slurm_env()
    sh("sinfo", "--noheader")
    acct_file = os.path.join(SLURM_DIR, "accounting")
    accounting = open(acct_file).read().strip() if os.path.exists(acct_file) else "jobcomp"
    work = tempfile.mkdtemp(prefix="bench-flow-")
    os.chmod(work, 0o755)
    counting_shims(os.path.join(work, "bin"))
    durs = durations(a.jobs, a.seed)
    print(f"{a.jobs} jobs sleeping {min(durs):g}-{max(durs):g} s ({sum(durs):.0f} CPU-s, seed {a.seed}); "
          f"plain script queries every {a.every:g} s; accounting {accounting}")
    print("RPCs/job: 'own' = the driver's own SLURM commands x their slurmctld RPCs; 'sdiag' = all of")
    print("slurmctld's RPCs meanwhile (other users of the shared cluster included). start ms: per-job")
    print("start delay inside SLURM; end->final: a job's last line to its task's final state.")
    print(f"{'driver':<10}{'round':>6}{'wall s':>10}{'1st sbatch s':>13}{'own RPC':>10}{'sdiag RPC':>10}"
          f"{'start ms med':>13}{'max':>9}{'end->final med':>15}{'p90':>8}")
    for r in range(1, a.rounds + 1):
        order = ("plain", "batchman") if r % 2 else ("batchman", "plain")
        for name in [d for d in order if a.only in (None, d)]:
            root = tempfile.mkdtemp(prefix=f"{name}-", dir=work)
            os.chmod(root, 0o755)
            os.environ["BENCH_CMDS"] = os.path.join(root, "commands.txt")
            try:
                if name == "plain":
                    m = plain(root, durs, f"flowplain{os.getpid()}r{r}", a.every, accounting, a.export_list)
                else:
                    m = batchman(root, durs, a.timeout)
                show(name, r, m)
            finally:
                if not a.keep:
                    shutil.rmtree(root, ignore_errors=True)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
