"""How often a process just started shows an empty command line (/proc/PID/cmdline), and what
util/procs.pid_alive says of it then.

    python benchmarks/bench_cmdline.py [-n 2000]

Popen returns once exec has begun; the new program's arguments are set up after that. Read at
once, the command line of the process is empty in most starts on this machine; pid_alive with a
needle (the local batch system's check of its runner) must still say alive and ours.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from batchman.util.procs import pid_alive  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="processes started")
    a = ap.parse_args()
    empty = alive = 0
    for _ in range(a.n):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)", "--marker-xyz"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, close_fds=True)
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:
            empty += not f.read()
        p.kill()
        p.wait()
    for _ in range(min(a.n, 200)):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)", "--marker-xyz"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, close_fds=True)
        alive += pid_alive(p.pid, "--marker-xyz")
        p.kill()
        p.wait()
    print(f"command line empty right after Popen: {empty} of {a.n}; "
          f"pid_alive(pid, marker) right after Popen: {alive} of {min(a.n, 200)} (load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
