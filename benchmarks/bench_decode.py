#!/usr/bin/env python3
"""What a status file costs to hold in memory: decode, memory of the decoded status, encode.

    python benchmarks/bench_decode.py --size 1000000 [--tmp DIR] [--repeat 3] [--json FILE]
    python benchmarks/bench_decode.py --file /path/to/status.json

``--size N`` builds bench_campaign's experiment of N tasks in DIR (default: the system's temp
directory; kept there and reused by later runs of the same size), ``--file`` measures an
existing status file. Each figure comes from a fresh Python process of its own:

  decode    seconds of reading and decoding the file as a reader of the store does (a line at
            a time, with the cyclic garbage collector off: store.follow), the best of --repeat
  RSS       growth of the resident memory over that first read
  encode    seconds of ``model.encode`` of the decoded status (the best of --repeat)
  traced    bytes tracemalloc counts for one decode (slower: a process of its own)
  per task  traced / tasks
  states    distinct ``str`` objects among the tasks' states (a few when they are shared)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from batchman.core import model  # noqa: E402
from batchman.store import follow  # noqa: E402


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def read(path: str) -> model.Status:
    return follow._decode_untracked(path, "")[0]


def timing(path: str, repeat: int) -> dict:
    gc.collect()
    before = rss()
    t0 = time.perf_counter()
    st = read(path)
    decode = [time.perf_counter() - t0]
    grown = rss() - before
    encode = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.encode(st)
        encode.append(time.perf_counter() - t0)
    n, states = len(st.tasks), len({id(t.state) for t in st.tasks})
    for _ in range(repeat - 1):
        del st
        gc.unfreeze()
        gc.collect()
        t0 = time.perf_counter()
        st = read(path)
        decode.append(time.perf_counter() - t0)
    return {"tasks": n, "decode_s": min(decode), "rss_mb": grown / 1e6, "encode_s": min(encode), "states": states}


def traced(path: str) -> dict:
    import tracemalloc
    tracemalloc.start()
    st = read(path)
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"traced_mb": size / 1e6, "per_task_b": size / max(1, len(st.tasks))}


def child(figure: str, path: str, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--child", figure, "--file", path, "--repeat", str(repeat)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def status_file(size: int, tmp: str | None) -> str:
    import bench_campaign as BC
    root = os.path.join(tmp or tempfile.gettempdir(), f"bench_decode_{size}")
    if not os.path.exists(os.path.join(root, "status.json")):
        os.makedirs(root, exist_ok=True)
        print(f"building {size} tasks in {root}", file=sys.stderr, flush=True)
        BC.build(root, size)
    return os.path.join(root, "status.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, help="tasks of bench_campaign's experiment (built once, kept in --tmp)")
    ap.add_argument("--file", help="an existing status.json instead")
    ap.add_argument("--tmp", help="where --size's experiment is kept")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="write the figures to FILE too")
    ap.add_argument("--child", choices=("timing", "traced"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(timing(a.file, a.repeat) if a.child == "timing" else traced(a.file)))
        return 0
    if not (a.file or a.size):
        ap.error("give --size or --file")
    path = a.file or status_file(a.size, a.tmp)
    r = {"file": path, "mb": os.path.getsize(path) / 1e6, **child("timing", path, a.repeat), **child("traced", path, 1)}
    print(f"{r['tasks']:>9} tasks {r['mb']:7.0f} MB  decode {r['decode_s']:6.2f} s  RSS +{r['rss_mb']:6.0f} MB  "
          f"traced {r['traced_mb']:6.0f} MB ({r['per_task_b']:.0f} B/task)  encode {r['encode_s']:5.2f} s  "
          f"states: {r['states']} str objects")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
