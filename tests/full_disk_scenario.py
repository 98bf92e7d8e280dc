"""A daemon whose disk fills up, on a real filesystem that fills: run by test_full_disk.py in a
mount namespace of its own (``unshare -rm``), where a 2 MB tmpfs holds the status file.

    unshare -rm python tests/full_disk_scenario.py ROOT      (prints one JSON line of findings)

ROOT (on the ordinary disk) holds the experiment, its job scripts, logs and markers: only the
status file and its companions are on the small disk, so that only batchman's writes fail.
"""

import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_helpers import daemon, env_for, job_starts, make_experiment, read_until, wait_for  # noqa: E402


def fill(path: str) -> None:
    """Write zeros until the disk says it is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def main(root: str) -> dict:
    disk = os.path.join(root, "disk")
    os.makedirs(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "none", disk], check=True)
    status = os.path.join(disk, "status.json")
    e = make_experiment(root, [1, 2, 3, 4], segments=1, **{"daemon.status_file": status, "batch.local_slots": 2})
    filler = os.path.join(disk, "filler")
    env = env_for(root, GO=os.path.join(root, "go"))
    found = {}

    # a oneshot on a full disk: the error, once; nothing changed
    fill(filler)
    before = open(status, "rb").read()
    r = subprocess.run([sys.executable, "-m", "batchman.daemon", "-C", root, "oneshot"], env=env,
                       capture_output=True, text=True, timeout=60)
    found["oneshot"] = [r.returncode, r.stderr]
    r = subprocess.run([sys.executable, "-m", "batchman.cli", "-C", root, "hold", "1"], env=env,
                       capture_output=True, text=True, timeout=60)
    found["hold"] = [r.returncode, r.stderr]
    found["oneshot_changed_nothing"] = open(status, "rb").read() == before
    os.unlink(filler)

    # a daemon: two jobs run (they wait for the file GO), the disk fills, they end
    d = daemon(root, "verbose", env=env)
    out: list[str] = []

    read_until(d, out, lambda s: s.count("submitted bm.") >= 2, "two jobs submitted")
    wait_for(lambda: len(job_starts(root)) >= 2, what="two jobs running")
    fill(filler)
    open(os.path.join(root, "go"), "w").close()
    read_until(d, out, lambda s: s.count("starts afresh") >= 2, "the daemon starting afresh twice")
    found["alive_while_full"] = d.poll() is None          # (the same process: execv keeps the pid)
    os.unlink(filler)
    rest, _ = d.communicate(timeout=120)
    out.append(rest)
    found["returncode"] = d.returncode
    found["output"] = "".join(out)
    found["states"] = sorted({t.state for t in e.store.read().tasks})
    found["starts"] = sorted(f"{k[0]}#{k[1]}x{n}" for k, n in job_starts(root).items())
    return found


if __name__ == "__main__":
    signal.alarm(300)
    print(json.dumps(main(sys.argv[1])))
