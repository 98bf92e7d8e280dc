"""Finding a run's raw data segments: pure pattern handling, plus one glob call site."""

from __future__ import annotations

import glob
import os
import re
import string


def check_pattern(pattern: str) -> str | None:
    """None if the segment pattern is usable, else what is wrong with it."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as e:
        return f"{pattern!r} is not a valid pattern: {e}"
    unknown = sorted({f for f in fields if f not in ("run", "segment", "prefix", "suffix")})
    if unknown:
        return f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; allowed: {{run}} {{segment}} {{prefix}} {{suffix}}"
    if "run" not in fields:
        return f"{pattern!r} has no {{run}}: every run would find the same files"
    try:
        render_glob(pattern, 1, "", "")
    except (ValueError, KeyError, IndexError) as e:
        return f"{pattern!r}: {e}"
    return None


class _Star:
    """Formats as '*' whatever the format spec ({segment:03d} included)."""

    def __format__(self, spec: str) -> str:
        return "*"


def render_glob(pattern: str, run: int, prefix: str, suffix: str) -> str:
    return pattern.format(run=run, segment=_Star(), prefix=glob.escape(prefix), suffix=glob.escape(suffix))


def segment_regex(pattern: str, run: int, prefix: str, suffix: str) -> re.Pattern:
    """A regex matching one segment's file name, capturing the segment number."""
    marker = "\x00SEG\x00"
    text = pattern.replace("{segment", "\x01").split("\x01")
    # Replace each {segment...} field by the marker, keep the rest formatted.
    head, *rest = text
    parts = [head]
    for piece in rest:
        close = piece.index("}")
        parts.append(marker + piece[close + 1:])
    fmt = "".join(parts)
    rendered = fmt.format(run=run, prefix=prefix, suffix=suffix)
    return re.compile("^" + re.escape(rendered).replace(re.escape(marker), r"(\d+)") + "$")


def order_segments(paths: list[str], pattern: str, run: int, prefix: str, suffix: str) -> list[str]:
    """Keep the files that really are segments of this run, sorted by segment number."""
    rx = segment_regex(pattern, run, prefix, suffix)
    found = []
    for p in paths:
        m = rx.match(os.path.basename(p)) or rx.match(p)
        if m:
            found.append((int(m.group(1)) if m.groups() else 0, p))
    return [p for _, p in sorted(found)]


def find_segments(stub_dir: str, pattern: str, run: int, prefix: str, suffix: str) -> tuple[list[str], str]:
    """(segment paths, what was searched) for one run; the only filesystem access here."""
    g = render_glob(pattern, run, prefix, suffix)
    where = os.path.join(stub_dir, g)
    paths = glob.glob(where)
    rel = [os.path.relpath(p, stub_dir) for p in paths]
    ordered = order_segments(rel, pattern, run, prefix, suffix)
    return [os.path.join(stub_dir, r) for r in ordered], where


def run_regex(pattern: str, prefix: str, suffix: str) -> re.Pattern:
    """A regex matching any run's segment file name, capturing run and segment numbers."""
    rx = []
    for literal, fieldname, spec, conv in string.Formatter().parse(pattern):
        rx.append(re.escape(literal))
        if fieldname is None:
            continue
        if fieldname == "run":
            rx.append(r"(?P<run>\d+)")
        elif fieldname == "segment":
            rx.append(r"(?P<segment>\d+)")
        elif fieldname == "prefix":
            rx.append(re.escape(prefix))
        elif fieldname == "suffix":
            rx.append(re.escape(suffix))
    return re.compile("^" + "".join(rx) + "$")


def index_segments(stub_dir: str, pattern: str, prefix: str, suffix: str) -> dict[int, list[str]]:
    """Every run's segments found in one listing of ``stub_dir`` (for many runs at once).

    Only for patterns without a directory part; callers fall back to find_segments otherwise.
    """
    rx = run_regex(pattern, prefix, suffix)
    found: dict[int, list[tuple[int, str]]] = {}
    try:
        names = os.listdir(stub_dir)
    except FileNotFoundError:
        names = []
    for n in names:
        m = rx.match(n)
        if m:
            seg = int(m.group("segment")) if "segment" in rx.groupindex else 0
            found.setdefault(int(m.group("run")), []).append((seg, os.path.join(stub_dir, n)))
    return {r: [p for _, p in sorted(v)] for r, v in found.items()}


def numbered(paths: list[str], stub_dir: str, pattern: str, run: int, prefix: str,
             suffix: str) -> list[tuple[int, str]]:
    """(segment number, path) of a run's segments, in order: the number in the file name
    ({segment} of the pattern), or the file's position when the pattern has none."""
    rx = segment_regex(pattern, run, prefix, suffix)
    out = []
    for i, p in enumerate(paths):
        m = rx.match(os.path.basename(p)) or rx.match(os.path.relpath(p, stub_dir))
        out.append((int(m.group(1)) if m is not None and m.groups() else i, p))
    return out


def own_segment(paths: list[str], stub_dir: str, seg: int, pattern: str, prefix: str, suffix: str,
                run: int) -> list[str]:
    """The one file of segment ``seg`` among a run's segments (empty if it is not there)."""
    return [p for n, p in numbered(paths, stub_dir, pattern, run, prefix, suffix) if n == seg]


def file_sizes(paths: list[str]) -> dict[str, int]:
    sizes = {}
    for x in paths:
        try:
            sizes[x] = os.path.getsize(x)
        except OSError:
            pass
    return sizes


def file_stats(paths: list[str]) -> list[tuple[str, int, int]]:
    """(name, size, mtime) of the files that exist, for a settling signature."""
    files = []
    for path in paths:
        try:
            stt = os.stat(path)
        except OSError:
            continue
        files.append((os.path.basename(path), stt.st_size, stt.st_mtime_ns))
    return files
