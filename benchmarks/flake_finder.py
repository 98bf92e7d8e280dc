#!/usr/bin/env python3
"""Find flaky cluster tests: run the cluster-marked tests K times in a row and count failures.

    python benchmarks/flake_finder.py                 # K=5 runs of -m "slurm or gridengine"
    python benchmarks/flake_finder.py -k 10 -- tests/slurm/test_slurm_retry.py
    python benchmarks/flake_finder.py -m gridengine -k 3 --out /tmp/ff

Each run is one ``python -m pytest -m MARKERS --junitxml=OUT/run-N.xml`` on the clusters that
are running now (start them first: contrib/slurm/start.sh --with-slurmdbd,
contrib/gridengine/start.sh); its console output goes to OUT/run-N.log. The results are read
from pytest's own JUnit XML. After each run the failed tests are listed with the first line of
their message; at the end a table gives every test id with its failures out of K and a mark per
run ('.' passed, 'F' failed, 'E' error, 's' skipped, ' ' not run).

CI=true is set for the runs (unless --no-ci): a cluster that does not answer fails its tests
instead of skipping them, so an outage is counted, not hidden.

Exit status: 0 if every run passed; 1 if any test failed or errored in any run, or a run ended
without a JUnit report (crash, --run-timeout) or collected nothing; 2 on bad arguments.
Arguments after ``--`` go to pytest unchanged (paths, -k, -x, ...).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(
        prog="flake_finder.py",
        description="Run the cluster-marked tests K times in a row on the running clusters and "
                    "report each test's failures per run and in a summary table.",
        epilog="Arguments after -- are passed to pytest (e.g. test paths, -k EXPR). "
               "Exit 0: no failure in any run; 1: some test failed or a run broke.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-k", "--runs", type=int, default=5, metavar="K", help="number of runs (default 5)")
    p.add_argument("-m", "--markers", default="slurm or gridengine",
                   help='pytest marker expression (default "slurm or gridengine")')
    p.add_argument("--out", type=Path, default=None,
                   help="directory for run-N.xml / run-N.log (default: a new directory under /tmp)")
    p.add_argument("--run-timeout", type=float, default=None, metavar="SECONDS",
                   help="stop a run that takes longer (counted as a broken run)")
    p.add_argument("--no-ci", action="store_true", help="do not set CI=true (unreachable clusters then skip)")
    p.add_argument("--all", action="store_true", help="list every test in the table, not only the ones that failed")
    a = p.parse_args(argv)
    if a.runs < 1:
        p.error("K must be at least 1")
    return a, extra


def test_id(case: ET.Element) -> str:
    """pytest's node id from a JUnit <testcase>: classname 'tests.slurm.test_x[.Class]' + name."""
    parts = case.get("classname", "").split(".")
    name = case.get("name", "")
    for cut in range(len(parts), 0, -1):             # the longest prefix that is a test file
        path = Path(*parts[:cut]).with_suffix(".py")
        if (REPO / path).exists():
            return "::".join([path.as_posix(), *parts[cut:], name])
    return "::".join([case.get("classname", ""), name])


def read_junit(path: Path) -> dict[str, tuple[str, str]]:
    """{test id: (mark, first line of the message)} from one run's JUnit XML."""
    out: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        mark, msg = ".", ""
        for child, m in (("failure", "F"), ("error", "E"), ("skipped", "s")):
            el = case.find(child)
            if el is not None:
                mark = m
                msg = (el.get("message") or el.text or "").strip().splitlines()
                msg = msg[0] if msg else ""
                break
        tid = test_id(case)
        if tid in out and out[tid][0] in "FE":       # a failure in setup + call: keep the first
            continue
        out[tid] = (mark, msg)
    return out


def main(argv: list[str]) -> int:
    a, extra = parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="flake-finder-"))
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not a.no_ci:
        env["CI"] = "true"
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    print(f"flake finder: {a.runs} run(s) of pytest -m {a.markers!r} {' '.join(extra)}".rstrip())
    print(f"flake finder: reports in {out}", flush=True)

    results: list[dict[str, tuple[str, str]]] = []
    broken: list[str] = []
    t_all = time.monotonic()
    for n in range(1, a.runs + 1):
        xml, log = out / f"run-{n}.xml", out / f"run-{n}.log"
        xml.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "pytest", "-m", a.markers, "-p", "no:cacheprovider", "-rfE",
               f"--junitxml={xml}", *extra]
        t0 = time.monotonic()
        with open(log, "w") as f:
            try:
                rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=a.run_timeout).returncode
            except subprocess.TimeoutExpired:
                rc = None
        took = time.monotonic() - t0
        res = read_junit(xml) if xml.exists() else {}
        results.append(res)
        failed = {t: m for t, (k, m) in res.items() if k in "FE"}
        counts = {k: sum(v[0] == k for v in res.values()) for k in ".FEs"}
        print(f"run {n}/{a.runs}: {len(res)} tests, {counts['.']} passed, {counts['F']} failed, "
              f"{counts['E']} errors, {counts['s']} skipped in {took:.0f} s (pytest exit {rc})", flush=True)
        for t, m in failed.items():
            print(f"    {res[t][0]} {t}: {m[:160]}", flush=True)
        why = ("timed out (--run-timeout)" if rc is None else "no JUnit report" if not xml.exists()
               else "no tests collected" if rc == 5 or not res
               else f"pytest exit {rc} without a failed test" if rc not in (0, 1) and not failed else "")
        if why:
            broken.append(f"run {n}: {why} (see {log})")
            print(f"    run {n} broken: {why} (see {log})", flush=True)
    wall = time.monotonic() - t_all

    tests = sorted({t for r in results for t in r})
    fails = {t: sum(r.get(t, ("", ""))[0] in ("F", "E") for r in results) for t in tests}
    shown = [t for t in tests if a.all or fails[t]]
    width = max([len(t) for t in shown] + [len("test id")])
    print()
    print(f"{'test id':<{width}}  failures  runs")
    print(f"{'-' * width}  --------  {'-' * a.runs}")
    for t in sorted(shown, key=lambda t: (-fails[t], t)):
        marks = "".join(r.get(t, (" ", ""))[0] for r in results)
        print(f"{t:<{width}}  {fails[t]:>3} of {a.runs}  {marks}")
    if not shown:
        print(f"{'(no test failed)':<{width}}  {0:>3} of {a.runs}")
    flaky = sum(1 for t in tests if 0 < fails[t] < a.runs)
    always = sum(1 for t in tests if fails[t] == a.runs)
    print(f"\n{len(tests)} tests, {a.runs} runs: {sum(1 for t in tests if fails[t])} failed at least once "
          f"({flaky} sometimes, {always} every time); wall time {wall:.0f} s ({wall / 60:.1f} min)")
    for b in broken:
        print(f"broken {b}")
    return 1 if any(fails.values()) or broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
