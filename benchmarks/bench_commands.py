#!/usr/bin/env python3
"""The commands a person types in a campaign of a million tasks: their time and memory.

    python benchmarks/bench_commands.py [--tasks 1000000] [--perfile] [--repeat 3]
                                        [--pristine DIR] [--json FILE] [--tmp DIR]

The campaign is bench_oneshot.py's (bench_campaign's, one job a run, runs from 100000; or with
--perfile bench_perfile's; --pristine DIR takes one already built). On a fresh copy of it,
after another process wrote (bench_oneshot's other writer, as the daemon of a running campaign
writes: the page's saved tally is this code's and recent), each repeat runs, each a process of
its own as a person runs them (output to /dev/null, stderr not a terminal): the commands that read some tasks (`show` of a run, `list` of a range of runs,
`list --state failed` as a table and as JSON), the one that reads every task (`list`), then
those that write: requests on some runs (`hold` of a range), on a state (`restart --state
aborted --yes`), and `add` of new runs (it reads every task). Printed for each: the wall time
(median of --repeat, and each) and the peak memory of its process, then the machine's speed
line (bench_campaign's). README's "At a million tasks ... the commands that name runs" quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_campaign as BC  # noqa: E402 - also puts the repository on sys.path
import bench_oneshot as BO  # noqa: E402

FIRST = 100_000         # the campaigns' first run (bench_campaign.build, bench_perfile.build)

COMMANDS = (            # (label, arguments): readers first, then writers, as a person might
    ("show a run", ["show", str(FIRST + 5)]),
    ("list 11 runs", ["list", f"{FIRST}-{FIRST + 10}"]),
    ("list --state failed", ["list", "--state", "failed"]),
    ("list --state failed --json", ["list", "--state", "failed", "--json"]),
    ("list (every task)", ["list"]),
    ("hold 11 runs", ["hold", f"{FIRST + 20}-{FIRST + 30}"]),
    ("restart --state aborted", ["restart", "--state", "aborted", "--yes"]),
    ("add 3 runs", ["add", "5000000-5000002"]),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    BO.shape_arguments(ap)
    ap.add_argument("--repeat", type=int, default=3, help="runs of every command, each on a fresh copy (default 3)")
    BO.copy_arguments(ap)
    a = ap.parse_args()
    BC.bytecode()
    work = tempfile.mkdtemp(prefix="bench-commands-", dir=a.tmp)
    runs: dict[str, list] = {label: [] for label, _ in COMMANDS}
    try:
        pristine = BO.campaign(work, a)
        for k in range(a.repeat):
            root = BC.clone(pristine, os.path.join(work, f"copy-{k}"))
            BO.run_child("write", root, a)      # (a daemon's write before, as in a running campaign: the
                                                # page's saved tally is this code's and recent)
            for label, args in COMMANDS:
                with open(os.devnull, "w") as null:
                    wall, _, gb = BC.run([sys.executable, "-m", "batchman.cli", "-C", root, *args], stdout=null)
                runs[label].append({"wall": wall, "rss_gb": gb})
                BC.say(f"{k + 1} of {a.repeat}: {label}: {wall:.2f} s, {gb:.2f} GB")
            shutil.rmtree(root, ignore_errors=True)
        speed = BC.machine()
        print(f"commands at {a.tasks:,} tasks ({'per file' if a.perfile else 'a job a run'}), "
              f"median of {a.repeat}, each a process of its own:")
        print(f"  {'command':30s} {'wall s':>7s} {'peak GB':>8s}  every run")
        for label, got in runs.items():
            walls = [round(r["wall"], 2) for r in got]
            print(f"  {label:30s} {statistics.median(walls):7.2f} {max(r['rss_gb'] for r in got):8.2f}  {walls}")
        print(BC.machine_line(speed))
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump({"tasks": a.tasks, "perfile": a.perfile, "speed": speed,
                           "when": time.strftime("%Y-%m-%d %H:%M"), "runs": runs}, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
