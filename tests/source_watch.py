"""Which of the tree's sources were written while the test session ran (tests/conftest.py).

The daemons and commands a test starts import batchman from the tree when they start; the test
process imported it once, at collection. An edit made while the suite runs (a mutation check in
the same worktree) reaches only the processes started after it, and their failures look like
the batch system's: in wt-suite2's run of 3 Dec, decide.py was made to give no job name for
about ten seconds, and two Grid Engine tests saw every qsub refused for "no job_name in the
request" while the tests around them passed.
"""

from __future__ import annotations

import os
import time

Stamp = dict[str, tuple[int, int]]


def stamp(*roots: str) -> Stamp:
    """path -> (mtime in ns, size) of every ``.py`` file below ``roots``."""
    out: Stamp = {}
    for root in roots:
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            for f in files:
                if not f.endswith(".py"):
                    continue
                try:
                    st = os.stat(os.path.join(d, f))
                except FileNotFoundError:       # removed while we walked
                    continue
                out[os.path.join(d, f)] = (st.st_mtime_ns, st.st_size)
    return out


def changed(before: Stamp, after: Stamp) -> list[str]:
    """The files written, added or removed between two stamps, sorted (a file edited and put
    back counts: a process may have started in between)."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def section(before: Stamp, *roots: str) -> tuple[str, str] | None:
    """A report section naming the sources written since ``before`` (with when), or None."""
    now = stamp(*roots)
    paths = changed(before, now)
    if not paths:
        return None
    def when(p: str) -> str:
        return time.strftime("%H:%M:%S", time.localtime(now[p][0] / 1e9)) if p in now else "removed"
    lines = [f"  {when(p)}  {p}" for p in paths]
    return ("sources written during this session",
            "Processes started after these writes (daemons, commands, jobs) ran the new text; "
            "this process still runs what it imported at the start:\n" + "\n".join(lines))
