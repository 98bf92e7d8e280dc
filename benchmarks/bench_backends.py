"""Figures for issue 9, per batch backend (local, slurm, gridengine, lsf):

1. the commands one daemon iteration runs with N (default 1,000) tasks in flight: submit N jobs
   that stay queued (held where the backend can hold; sleeping local jobs otherwise), run one
   ``query`` for all of them -- by id, and by name as after a crash -- and count the commands per
   program (target: one queue query and at most one accounting query); then cancel them all and
   wait until none of them is left in the queue;
2. the contract suite's wall time per backend (``pytest tests/contract -k <backend>``).

    python benchmarks/bench_backends.py                 # all four, 1,000 jobs each
    python benchmarks/bench_backends.py -n 200 slurm lsf
    python benchmarks/bench_backends.py --no-contract

A backend whose cluster does not answer is reported as such and skipped. Every job submitted is
cancelled again (also on errors and Ctrl-C) and the script waits until the queue is clean.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contract"))
import conftest as contract  # noqa: E402  (the contract suite's per-backend set-up)

from batchman.backends.base import FINISHED, JobSpec, Runner  # noqa: E402

BACKENDS = ["local", "slurm", "gridengine", "lsf"]


def make_backend(kind: str, tmp: Path):
    """(backend, runner, hold extra_args or None, why-not)."""
    if kind == "local":
        from batchman.backends.batch.local import LocalBatch
        return LocalBatch(str(tmp / "local-root"), slots=2), None, None, ""
    if kind == "slurm":
        from batchman.backends.batch.slurm import SlurmBackend
        env, accounting, why = contract._slurm_conf._find_cluster()
        if why:
            return None, None, None, why
        r = Runner(timeout=120, env=env)
        return SlurmBackend(r, accounting=accounting), r, ["--hold"], ""
    if kind == "gridengine":
        from batchman.backends.batch.gridengine import GridEngineBackend
        why = contract._ge_conf.cluster_problem()
        if why:
            return None, None, None, why
        r = Runner(timeout=120)
        return GridEngineBackend(r), r, ["-h"], ""
    if kind == "lsf":
        from batchman.backends.batch.lsf import LsfBackend
        state = tmp / "lsf-state"
        state.mkdir()
        r = Runner(timeout=120, env=contract.lsf_env(state))
        return LsfBackend(r), r, ["-H"], ""
    raise ValueError(kind)


def count(runner, since: int) -> str:
    if runner is None:
        return "none (reads files)"
    # env -- K=V ... qsub/sbatch: the environment travels in the command's own (issue 14)
    c = collections.Counter(next((a for a in rec.argv[2:] if "=" not in a), "env") if rec.argv[0] == "env"
                            else rec.argv[0] for rec in runner.records[since:])
    return ", ".join(f"{k} x{v}" for k, v in sorted(c.items())) or "none"


def per_iteration(kind: str, n: int, tmp: Path) -> dict:
    backend, runner, hold, why = make_backend(kind, tmp)
    if backend is None:
        return {"error": why}
    prefix = f"bm.bench{uuid.uuid4().hex[:8]}."
    script = tmp / "job.sh"
    script.write_text("#!/bin/bash\n" + ("true\n" if hold else "sleep 120\n"))
    script.chmod(0o755)
    (tmp / "logs").mkdir(exist_ok=True)
    tmp.chmod(0o755)
    ids: dict[str, str] = {}
    row: dict = {}
    try:
        t0 = time.monotonic()
        for k in range(n):
            name = f"{prefix}{k:05d}"
            ids[name] = backend.submit(JobSpec(
                name=name, script=str(script), workdir=str(tmp), stdout=str(tmp / "logs" / f"{k}.out"),
                stderr=str(tmp / "logs" / f"{k}.err"), attempt_dir=str(tmp), extra_args=list(hold or [])))
        row["submit_s"] = time.monotonic() - t0
        for label, asked in (("by id", ids), ("by name", dict.fromkeys(ids, ""))):
            since = len(runner.records) if runner else 0
            t0 = time.monotonic()
            got = backend.query(asked)
            row[f"query {label}"] = (count(runner, since), time.monotonic() - t0)
            states = collections.Counter(i.state for i in got.values())
            assert len(got) == n and all(got[k].job_id == v for k, v in ids.items()), f"{kind}: lost jobs {states}"
            row[f"states {label}"] = dict(states)
    finally:
        t0 = time.monotonic()
        clean = cancel_all(backend, prefix, list(ids.values()))
        row["cancel_s"] = time.monotonic() - t0
        row["clean"] = clean
    return row


def cancel_all(backend, prefix: str, ids: list[str], timeout: float = 300) -> str:
    """Cancel every job we submitted and wait until none is left alive under our prefix."""
    for k in range(0, len(ids), 500):
        with contextlib.suppress(Exception):
            backend.cancel(ids[k:k + 500])
    end = time.monotonic() + timeout
    while True:
        try:
            left = [j for j in backend.list_ours(prefix) if j.state != FINISHED]
        except Exception as e:   # noqa: BLE001
            left, err = None, e
        if left == []:
            return "queue clean"
        if time.monotonic() > end:
            return f"NOT CLEAN: {len(left) if left is not None else err} left"
        if left:
            with contextlib.suppress(Exception):
                backend.cancel([j.job_id for j in left])
        time.sleep(1)


def contract_time(kind: str) -> tuple[float, str]:
    t0 = time.monotonic()
    cp = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "contract"), "-k", kind,
                         "-q", "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in cp.stdout.splitlines() if re.search(r"passed|failed|skipped|error", ln)]
    return time.monotonic() - t0, (lines[-1].strip("= ") if lines else f"exit {cp.returncode}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("backends", nargs="*", help=f"some of {', '.join(BACKENDS)} (default: all)")
    ap.add_argument("-n", type=int, default=1000, help="jobs in flight (default 1000)")
    ap.add_argument("--no-contract", action="store_true", help="skip the contract suite timings")
    a = ap.parse_args()
    a.backends = a.backends or BACKENDS
    if set(a.backends) - set(BACKENDS):
        ap.error(f"unknown backend(s): {', '.join(sorted(set(a.backends) - set(BACKENDS)))}")
    rows = {}
    for kind in a.backends:
        with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
            print(f"[{kind}] submitting {a.n} jobs ...", file=sys.stderr, flush=True)
            rows[kind] = per_iteration(kind, a.n, Path(tmp))
            print(f"[{kind}] {rows[kind]}", file=sys.stderr, flush=True)
        if not a.no_contract and "error" not in rows[kind]:
            rows[kind]["contract"] = contract_time(kind)
    print(f"\nCommands per daemon iteration with {a.n} jobs in flight (one query for all of them)\n")
    print(f"{'backend':<11} {'query by id':<34} {'query by name (ids lost)':<34} {'submit':>8} {'cancel+clean':>13}")
    for kind, r in rows.items():
        if "error" in r:
            print(f"{kind:<11} unavailable: {r['error']}")
            continue
        qi, qn = r["query by id"], r["query by name"]
        print(f"{kind:<11} {qi[0] + f' ({qi[1]:.2f} s)':<34} {qn[0] + f' ({qn[1]:.2f} s)':<34} "
              f"{r['submit_s']:>7.0f}s {r['cancel_s']:>12.0f}s  {r['clean']}")
    if not a.no_contract:
        print("\nContract suite wall time per backend (pytest tests/contract -k <backend>)\n")
        for kind, r in rows.items():
            if "contract" in r:
                print(f"{kind:<11} {r['contract'][0]:>6.1f} s   {r['contract'][1]}")
    return 0 if all(r.get("clean", "queue clean") == "queue clean" for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
