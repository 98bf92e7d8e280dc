"""How long reading a status file's lines takes, and what part of it is the kernel's (issue 18).

    python benchmarks/bench_read.py STATUS_FILE [--repeat 5]

Each way runs in a fresh process (as `batchman list` or `batchman-daemon oneshot` meet the file),
the ways alternated, and prints wall / user / system seconds and minor page faults, median of
--repeat runs:

  readline   ``for line in f`` (a buffered file, 16 MB buffer): a fresh bytes object a line
  lines      store/lines.Lines: every line read into one buffer that the next reuses
  stream     snapshot.read_stream: the lines decoded into tasks (what a full read costs)

    python benchmarks/bench_read.py --journal [--lines 2000000]

times a task's history from a journal of that many transitions (3 a task; a million tasks make
~10 million): every line decoded and then chosen (as before), against only the lines holding
the task's key (store/journal.py), each in a fresh process.

A status file of a million tasks: ``python benchmarks/bench_campaign.py --sizes 1000000 --keep
--tmp DIR`` leaves one in DIR/bench-campaign-1000000-*/pristine/status.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

CHILD = r"""
import json, resource, sys, time
from batchman.store import snapshot
from batchman.store.lines import Lines
way, path = sys.argv[1], sys.argv[2]
t, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
if way == "readline":
    with open(path, "rb", buffering=16 << 20) as f:
        n = sum(len(line) for line in f)
elif way == "lines":
    with open(path, "rb", buffering=0) as f:
        lines, n = Lines(f), 0
        while (span := lines.next()) is not None:
            n += span[1] - span[0]
else:
    n = len(snapshot.read_stream(path).tasks)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": time.perf_counter() - t, "user": r1.ru_utime - r0.ru_utime,
                  "sys": r1.ru_stime - r0.ru_stime, "minflt": r1.ru_minflt - r0.ru_minflt, "n": n}))
"""

WAYS = ("readline", "lines", "stream")

JOURNAL = r"""
import json, sys, time
from batchman.store import journal
way, path, key = sys.argv[1:]
t = time.perf_counter()
got = journal.read(path) if way == "every line" else journal.read(path, {key})
got = [e for e in got if e["task"] == key]
print(json.dumps({"wall": time.perf_counter() - t, "n": len(got)}))
"""


def journal_figures(lines: int, repeat: int) -> None:
    import tempfile
    from batchman.store import journal
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "status.json.journal")
        with open(path, "wb") as f:
            for i in range(0, lines, 30_000):
                f.write(journal.lines([journal.Transition(f"{1_000_000 + (i + k) // 3}.analysis", "queued", "running",
                                                          "started on node17", 1.8e9 + i + k, "daemon host:123")
                                       for k in range(min(30_000, lines - i))], i // 30_000 + 1, "a1b2c3"))
        key = f"{1_000_000 + lines // 6}.analysis"
        print(f"journal of {lines} lines, {os.path.getsize(path) / 1e6:.0f} MB; the history of {key}, "
              f"median of {repeat} (load {os.getloadavg()[0]:.1f})")
        for way in ("every line", "its lines"):
            runs = [json.loads(subprocess.run([sys.executable, "-c", JOURNAL, way, path, key], check=True,
                                              stdout=subprocess.PIPE, text=True,
                                              env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)}).stdout)
                    for _ in range(repeat)]
            print(f"{way:>11}: {statistics.median(r['wall'] for r in runs):.3f} s, {runs[0]['n']} entries")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", help="a status file (status.json)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--journal", action="store_true", help="time a task's history from a journal instead")
    ap.add_argument("--lines", type=int, default=2_000_000, help="the journal's lines (with --journal)")
    a = ap.parse_args()
    if a.journal:
        journal_figures(a.lines, a.repeat)
        return 0
    if not a.path:
        ap.error("name a status file, or --journal")
    got = {w: [] for w in WAYS}
    for _ in range(a.repeat):
        for w in WAYS:
            out = subprocess.run([sys.executable, "-c", CHILD, w, a.path], check=True, stdout=subprocess.PIPE,
                                 text=True, env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)}).stdout
            got[w].append(json.loads(out))
    print(f"{os.path.getsize(a.path) / 1e6:.0f} MB, median of {a.repeat} (load {os.getloadavg()[0]:.1f})")
    print(f"{'way':>9} {'wall s':>7} {'user s':>7} {'sys s':>7} {'minflt':>8}")
    for w in WAYS:
        med = {k: statistics.median(r[k] for r in got[w]) for k in ("wall", "user", "sys", "minflt")}
        print(f"{w:>9} {med['wall']:7.3f} {med['user']:7.3f} {med['sys']:7.3f} {med['minflt']:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
