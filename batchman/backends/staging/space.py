"""How full the cache filesystem is, for ``staging.max_cache_fraction`` (AlCap's ``--spacelim``).

The fraction is what ``df`` prints as Use%: used / (used + available to us), where the blocks
reserved for root count neither way. One ``statvfs`` call; a path that does not exist yet (the
cache directory before the first request) is checked through its nearest existing parent.
"""

from __future__ import annotations

import os


def used_fraction(path: str) -> float:
    """Fraction of the filesystem holding ``path`` that is used (0..1). Raises OSError."""
    p = os.path.abspath(path or ".")
    while not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    st = os.statvfs(p)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    total = used + avail
    return used / total if total > 0 else 0.0


def cache_full(path: str, limit: float) -> tuple[bool, float]:
    """(above the limit, the fraction); never full when the limit is 0 (off)."""
    if not limit:
        return False, 0.0
    f = used_fraction(path)
    return f > limit, f
