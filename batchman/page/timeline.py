"""Tasks per state over time, from the store's append-only journal, read incrementally.

The journal (``<status file>.journal``) gets one line per transition and is never
rewritten, so the page keeps a small summary beside it (``<journal>.page``): the byte
offset read so far and, per time bucket, the net change of tasks in each state group: 10 s
buckets for the last 3 hours of the journal, merged into 5-minute ones as they age (a young
production, or the demo's half minute, is drawn as it went, not as steps 5 minutes wide that
show tasks done before they were; a month costs ~9,000 buckets). A bucket is named by the
second it starts at. Each render reads only the lines appended since, so it costs the same at 100
transitions or 10 million. Counts at any instant are the current counts minus the changes
after it (counting backwards from the truth of the status file, so tasks added without a
journal line, or a journal started late, never make the curves drift at the right end).

``fold`` and ``series`` are pure; ``load`` is the only function that touches files.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter

import msgspec

from batchman.page.summary import GROUP_OF, GROUPS
from batchman.util.files import atomic_write

FINE = 10               # seconds per bucket, for the journal's last FINE_SPAN
BUCKET = 300            # seconds per bucket before that
FINE_SPAN = 3 * 3600
CACHE_VERSION = 2       # (1: buckets of 5 minutes numbered from 0, taken as 5-minute buckets)


class _Line(msgspec.Struct):
    """The fields of a journal line the plot needs (the rest are ignored while decoding)."""
    t: float
    g: int = 0
    old: str = msgspec.field(name="from", default="")
    new: str = msgspec.field(name="to", default="")


_decode = msgspec.json.Decoder(_Line).decode


def fold(lines: list[bytes], deltas: dict[int, dict[str, int]], upto: int | None = None) -> int:
    """Add the transitions of complete journal ``lines`` into ``deltas`` (bucket -> group -> change).

    Stops before the first line of a generation above ``upto`` (a write not yet landed).
    Returns the number of bytes consumed. Lines that do not parse are skipped.
    """
    used = 0
    for line in lines:
        try:
            e = _decode(line)
        except msgspec.MsgspecError:
            used += len(line)
            continue
        g, t, old, new = e.g, e.t, e.old, e.new
        if upto is not None and g > upto:
            break
        used += len(line)
        go, gn = GROUP_OF.get(old), GROUP_OF.get(new)
        if go == gn:
            continue
        b = deltas.setdefault(key(t), {})
        if go:
            b[go] = b.get(go, 0) - 1
        if gn:
            b[gn] = b.get(gn, 0) + 1
    return used


def key(t: float) -> int:
    """The (fine) bucket of a change at ``t``: the second it starts at."""
    return int(t // FINE) * FINE


def coarsen(deltas: dict[int, dict[str, int]]) -> None:
    """Merge the buckets that start FINE_SPAN or more before the newest into 5-minute ones."""
    if not deltas:
        return
    cutoff = max(deltas) - FINE_SPAN
    for k in [k for k in deltas if k < cutoff and k % BUCKET]:
        into = deltas.setdefault(k - k % BUCKET, {})
        for g, n in deltas.pop(k).items():
            into[g] = into.get(g, 0) + n


def series(deltas: dict[int, dict[str, int]], current: Counter, start: float, end: float,
           points: int = 120) -> list[tuple[float, dict[str, int]]]:
    """Tasks per group at ``points`` instants from ``start`` to ``end`` (the last is now).

    ``current`` is the count per group now; earlier counts undo the changes after them.
    """
    if end <= start or points < 2:
        return [(end, dict(current))]
    step = (end - start) / (points - 1)
    stamps = [start + i * step for i in range(points)]
    # a bucket's changes count as done from its start on (the curves are 10 s sharp for the
    # last 3 hours, 5 minutes before)
    after = sorted((b, d) for b, d in deltas.items() if b > start)
    out = []
    counts = Counter(current)
    j = len(after) - 1
    for ts in reversed(stamps):
        # undo every bucket that starts after ts
        while j >= 0 and after[j][0] > ts:
            for g, n in after[j][1].items():
                counts[g] -= n
            j -= 1
        out.append((ts, {g: max(0, counts[g]) for g, _ in GROUPS}))
    out.reverse()
    return out


def first_bucket(deltas: dict[int, dict[str, int]]) -> tuple[float, float] | None:
    """When the first bucket starts, and how long it is (None: no change yet)."""
    if not deltas:
        return None
    first = min(deltas)
    return float(first), float(FINE if first >= max(deltas) - FINE_SPAN else BUCKET)


def _read_cache(path: str, ino: int, store_id: str) -> tuple[int, dict[int, dict[str, int]]]:
    try:
        with open(path, encoding="utf-8") as f:
            c = json.load(f)
        if c.get("v") in (1, CACHE_VERSION) and c.get("ino") == ino and c.get("store") == store_id:
            # (version 1: 5-minute buckets by number, kept as they are rather than a long journal read again)
            scale = BUCKET if c["v"] == 1 else 1
            return int(c["offset"]), {int(k) * scale: v for k, v in c["deltas"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return 0, {}


def load(journal: str, store_id: str = "", upto: int | None = None) -> dict[int, dict[str, int]]:
    """The bucketed changes of the whole journal, reading only what was appended since last time.

    A journal replaced (new inode) or shorter than the offset read so far is read afresh.
    The summary is written atomically; two pages rendered at once only repeat work.
    """
    try:
        st = os.stat(journal)
    except OSError:
        return {}
    cache = journal + ".page"
    offset, deltas = _read_cache(cache, st.st_ino, store_id)
    if offset > st.st_size:
        offset, deltas = 0, {}
    if offset == st.st_size:
        return deltas
    with open(journal, "rb") as f:
        f.seek(offset)
        data = f.read(st.st_size - offset)
    end = data.rfind(b"\n") + 1          # complete lines only; a line being written waits
    offset += fold(data[:end].splitlines(keepends=True), deltas, upto)
    coarsen(deltas)
    with contextlib.suppress(OSError):     # a cache: losing it costs one full read next time
        atomic_write(cache, json.dumps({"v": CACHE_VERSION, "ino": st.st_ino, "store": store_id,
                                        "offset": offset, "deltas": deltas}, separators=(",", ":")),
                     sync=False)
    return deltas
