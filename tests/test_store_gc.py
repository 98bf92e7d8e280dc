"""Reading a big status file leaves nothing for the cyclic garbage collector to walk (issue 13:
the TUI's first screen at 100,000 tasks spent most of its time in the first full collection
over the freshly decoded status). Run in a fresh interpreter: the collector's state is global."""

import json
import subprocess
import sys

from batchman.core.model import Segment, Task
from batchman.store.store import Store

PROBE = r"""
import gc, json, sys, weakref
from batchman.store.store import Store

class Cycle:
    pass

c = Cycle(); c.me = c                     # garbage in a reference cycle, made before the read
dead = weakref.ref(c); del c
before = gc.get_freeze_count()
status = Store(sys.argv[1]).read()
after = gc.get_freeze_count()
print(json.dumps({"tasks": len(status.tasks), "tracked_tasks": sum(gc.is_tracked(t) for t in status.tasks),
                  "tracked_segments": sum(gc.is_tracked(s) for t in status.tasks for s in t.segments), "frozen": after - before, "cycle_collected": dead() is None,
                  "gc_enabled": gc.isenabled(), "young": gc.get_count()[0]}))
"""


def test_a_read_status_is_kept_out_of_the_collectors_walks_and_old_garbage_is_not_frozen(tmp_path):
    path = str(tmp_path / "status.json")
    s = Store(path, lock_timeout=1)
    with s.transaction("test") as st:
        for r in range(3000):
            st.tasks.append(Task(run=r, segments=[Segment(f"raw/{r}.dat.{i}", False) for i in range(2)]))
    out = subprocess.run([sys.executable, "-c", PROBE, path], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["tasks"] == 3000
    # tasks and segments are structs the collector never tracks (gc=False: they hold no cycles);
    # what it does track (each task's list of segments) is in the permanent generation
    assert got["tracked_tasks"] == 0 and got["tracked_segments"] == 0, got
    assert got["frozen"] >= 3000, got
    assert got["young"] < 1000, got
    assert got["cycle_collected"], "garbage made before the read was frozen with the status (kept for ever)"
    assert got["gc_enabled"], "the read left the garbage collector off"
