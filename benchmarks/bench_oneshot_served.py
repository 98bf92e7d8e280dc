#!/usr/bin/env python3
"""`batchman-daemon oneshot` while a daemon runs: asked of it, or done alone (daemon/asks.py).

    python benchmarks/bench_oneshot_served.py [--tasks 1000000] [--perfile] [--repeat 5]
                                              [--own 2] [--pristine DIR] [--json FILE] [--tmp DIR]

The campaign is bench_oneshot.py's (bench_campaign's, or with --perfile bench_perfile's; --pristine
DIR takes one already built). On a copy of it (the production paused, as the other writer below
pauses it: no new staging or submission, the daemon only follows what runs), a daemon is started
as a person starts it (`batchman-daemon --forever --delay 600`, a process of its own) and left to
finish its first rounds. Then, --repeat times: another process writes (as bench_oneshot: it pauses the production
and ends 1 % of the local batch system's jobs, which wakes the daemon), and at once
`batchman-daemon oneshot` runs, a process of its own, timed from its start to its end; it asks
the daemon, which takes the ask before its next round (after the round the other writer started,
if it is in one) and answers with that round's report. Each is checked to be the daemon's round.
Then --own times, the same with `--daemon-wait 0`: the oneshot does its round itself beside the
living daemon (what every oneshot did before daemon/asks.py).

Printed for each kind: the oneshot's wall time (median, and every run) and its peak memory, the
daemon's peak memory; the machine's speed line last (bench_campaign's). The daemon is waited for
between runs until it is idle (its CPU time still for a second).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_campaign as BC  # noqa: E402 - also puts the repository on sys.path
import bench_oneshot as BO  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_gb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def idle(p: subprocess.Popen, still: float = 1.0, timeout: float = 600.0) -> None:
    """Wait until the daemon's CPU time moved less than 0.02 s in ``still`` s."""
    end = time.monotonic() + timeout
    last = cpu_seconds(p.pid)
    while time.monotonic() < end:
        if p.poll() is not None:
            raise SystemExit(f"the daemon ended (exit code {p.returncode})")
        time.sleep(still)
        now = cpu_seconds(p.pid)
        if now - last < 0.02:
            return
        last = now
    raise SystemExit(f"the daemon was still busy after {timeout:g} s")


def oneshot(root: str, *flags: str) -> dict:
    wall, out, rss = BC.run([sys.executable, "-m", "batchman.daemon", "-C", root, "oneshot", *flags])
    return {"wall": wall, "rss_gb": rss, "served": "(the round of the daemon" in out,
            "summary": [line for line in out.splitlines() if "iteration done" in line][-1:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    BO.shape_arguments(ap)
    ap.add_argument("--repeat", type=int, default=5, help="oneshots asked of the daemon (default 5)")
    ap.add_argument("--own", type=int, default=2, help="oneshots with --daemon-wait 0 after them (default 2)")
    BO.copy_arguments(ap)
    a = ap.parse_args()
    BC.bytecode()
    work = tempfile.mkdtemp(prefix="bench-served-", dir=a.tmp)
    daemon = None
    try:
        pristine = BO.campaign(work, a)
        root = BC.clone(pristine, os.path.join(work, "served"))
        BO.run_child("write", root, a)       # the production paused: the daemon goes idle between
        BC.say("starting the daemon (its first rounds) ...")
        with open(os.path.join(work, "daemon.log"), "w", encoding="utf-8") as log:
            daemon = subprocess.Popen([sys.executable, "-m", "batchman.daemon", "-C", root, "--forever",
                                       "--delay", "600"], stdout=log, stderr=subprocess.STDOUT)
        idle(daemon)
        runs: dict = {"asked": [], "own": []}
        for kind, n, flags in (("asked", a.repeat, ()), ("own", a.own, ("--daemon-wait", "0"))):
            for k in range(n):
                BO.run_child("write", root, a)
                r = oneshot(root, *flags)
                if r["served"] != (kind == "asked"):
                    raise SystemExit(f"oneshot {kind} {k + 1}: served by the daemon: {r['served']}")
                BC.say(f"oneshot {kind} {k + 1} of {n}: {r['wall']:.2f} s, {r['rss_gb']:.2f} GB; {' '.join(r['summary'])}")
                runs[kind].append(r)
                idle(daemon)
        daemon_gb = peak_gb(daemon.pid)
        speed = BC.machine()
        print(f"batchman-daemon oneshot at {a.tasks:,} tasks ({'per file' if a.perfile else 'a job a run'}), "
              f"a daemon running (its peak memory {daemon_gb:.2f} GB), another process wrote just before:")
        for kind, label in (("asked", "asked of the daemon"), ("own", "--daemon-wait 0 (its own round)")):
            got = runs[kind]
            if got:
                walls = [round(r["wall"], 2) for r in got]
                print(f"  {label:34s} {statistics.median(walls):5.2f} s (median of {len(got)}: {walls}), "
                      f"peak memory {max(r['rss_gb'] for r in got):.2f} GB")
        print(BC.machine_line(speed))
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump({"tasks": a.tasks, "perfile": a.perfile, "speed": speed, "daemon_gb": daemon_gb,
                           "when": time.strftime("%Y-%m-%d %H:%M"), "runs": runs}, f, indent=1)
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            daemon.wait(120)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
