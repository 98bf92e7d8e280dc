#!/usr/bin/env python3
"""The demo's analysis: reads each staged segment slowly and reports progress.

It shows what a real analysis does with batchman: it gets its run and files from the
environment (BATCHMAN_RUN, BATCHMAN_FILES), reports counters with `batchman report`,
and writes how many segments it analysed into $BATCHMAN_STATS_FILE. Some runs misbehave
on purpose, as runs do (see DEMO_* below).
"""
import os
import subprocess
import sys
import time

run = int(os.environ["BATCHMAN_RUN"])
attempt = int(os.environ.get("BATCHMAN_ATTEMPT", "1"))
files = os.environ.get("BATCHMAN_FILES", "").split()
per_segment = float(os.environ.get("DEMO_SECONDS_PER_SEGMENT", "1.0"))
fail_run = int(os.environ.get("DEMO_FAIL_RUN", "-1"))
incomplete_run = int(os.environ.get("DEMO_INCOMPLETE_RUN", "-1"))
slow_run = int(os.environ.get("DEMO_SLOW_RUN", "-1"))


def report(**counters):
    args = [f"{k}={v}" for k, v in counters.items()]
    subprocess.run([sys.executable, "-m", "batchman.cli", "report", *args], check=False)


print(f"analysing run {run} (attempt {attempt}): {len(files)} segment(s)", flush=True)
if run == slow_run and attempt == 1:
    print("this attempt hangs (the demo kills and restarts it)", flush=True)
    time.sleep(600)
events = 0
done = 0
for i, path in enumerate(files):
    if run == incomplete_run and i == 1:
        print(f"segment {path} is unreadable: stopping early", file=sys.stderr, flush=True)
        break
    with open(path, encoding="utf-8") as f:
        n = sum(1 for _ in f)
    time.sleep(per_segment)
    events += n
    done += 1
    report(events=events, segments_done=done)
    print(f"segment {i}: {n} events", flush=True)
with open(os.environ["BATCHMAN_STATS_FILE"], "w", encoding="utf-8") as f:
    f.write(f"segments_analysed = {done}\n")
if run == fail_run:
    print("calibration database not found: giving up", file=sys.stderr, flush=True)
    sys.exit(2)
print(f"run {run}: {events} events in {done} segment(s)", flush=True)
