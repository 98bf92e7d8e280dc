#!/usr/bin/env python3
"""Stand-in for the analysis ARP's arp_submit.sh submits (the tutorial's arp_actual.py):
logs EXPERIMENT and RUN_NUM, works, and reports counters (ARP's "Report" column). The only
difference from ARP: counters go to `batchman report KEY=VALUE` instead of a POST to
$JID_UPDATE_COUNTERS.

    arp_actual.py smd               reads the run's xtc2 files ($BATCHMAN_FILES)
    arp_actual.py summary FILE...   reads smd's output
    arp_actual.py calib             a pedestal calibration, triggered by hand
"""
import datetime
import logging
import os
import shutil
import subprocess
import sys
import time

logging.basicConfig(level=logging.DEBUG)
logger = logging.getLogger(__name__)


def post_counters(**counters):
    """ARP: requests.post(os.environ["JID_UPDATE_COUNTERS"], json=[{"key": k, "value": v}, ...])"""
    exe = shutil.which("batchman")
    cmd = [exe, "report"] if exe else [sys.executable, "-m", "batchman.cli", "report"]
    subprocess.run(cmd + [f"{k}={v}" for k, v in counters.items()], check=False)


def out(kind, suffix):
    path = os.path.join("hdf5", kind, f"{experiment}_Run{run:04d}{suffix}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


logger.debug("In the arp_actual script - current time is %s", datetime.datetime.now().strftime("%c"))
experiment = os.environ["EXPERIMENT"]
run = int(os.environ["RUN_NUM"])
logger.debug("EXPERIMENT=%s RUN_NUM=%s", experiment, run)
logger.debug("The parameters passed into the script are %s", " ".join(sys.argv))
what = sys.argv[1] if len(sys.argv) > 1 else "smd"

if what == "smd":
    events = 0
    for i, f in enumerate(os.environ.get("BATCHMAN_FILES", "").split()):
        with open(f) as fh:
            events += sum(1 for _ in fh)
        time.sleep(float(os.environ.get("ARP_SLEEP", "0.3")))
        post_counters(Counter=i + 1, events=events)
    with open(out("smalldata", ".h5"), "w") as fh:
        fh.write(f"smalldata of {experiment} run {run}: {events} events\n")
elif what == "summary":
    lines = [open(f).read().strip() for f in sys.argv[2:]]
    if not lines:
        sys.exit("summary: no smd output given")
    with open(out("summary", ".txt"), "w") as fh:
        fh.write("summary: " + "; ".join(lines) + "\n")
    post_counters(summary="ok")
elif what == "calib":
    with open(out("calib", "_pedestals.txt"), "w") as fh:
        fh.write(f"pedestals of {experiment} run {run}\n")
    post_counters(pedestals="done")
else:
    sys.exit(f"unknown job {what!r}: smd, summary or calib")
logger.debug("Done with job execution")
