"""Inline SVG pictures for the status page: no library, nothing fetched.

Readable without colour: every area and bar has a pattern as well as a colour, and the
groups are named in text beside the curves. Sizes come from the viewBox, so a picture
fills the width of a phone or of a wall screen alike.
"""

from __future__ import annotations

import time

from batchman.page.summary import GROUPS

W, H = 600, 200            # viewBox
L, R, T, B = 48, 150, 10, 26   # margins: axis labels left/bottom, group names right

# group -> (CSS class for the fill colour, pattern id)
STYLE = {"completed": "g-completed", "problem": "g-problem", "in batch": "g-inbatch",
         "staging": "g-staging", "waiting": "g-waiting"}

DEFS = """<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
<pattern id="p-problem" width="6" height="6" patternUnits="userSpaceOnUse"><path d="M0 0L6 6M6 0L0 6" stroke="#000" stroke-opacity=".45"/></pattern>
<pattern id="p-inbatch" width="6" height="6" patternUnits="userSpaceOnUse"><path d="M0 6L6 0" stroke="#000" stroke-opacity=".35"/></pattern>
<pattern id="p-staging" width="6" height="6" patternUnits="userSpaceOnUse"><circle cx="3" cy="3" r="1" fill="#000" fill-opacity=".4"/></pattern>
<pattern id="p-waiting" width="6" height="6" patternUnits="userSpaceOnUse"><path d="M0 3H6" stroke="#000" stroke-opacity=".25"/></pattern>
<pattern id="p-tail" width="6" height="6" patternUnits="userSpaceOnUse"><path d="M0 0L6 6" stroke="#000" stroke-opacity=".5"/></pattern>
</defs></svg>"""

PATTERN = {"problem": "p-problem", "in batch": "p-inbatch", "staging": "p-staging", "waiting": "p-waiting"}


def _tick_label(t: float, span: float) -> str:
    fmt = "%H:%M:%S" if span < 600 else "%H:%M" if span <= 2 * 86400 else "%m-%d"   # (a young production: seconds)
    return time.strftime(fmt, time.localtime(t))


def _short(n: float) -> str:
    return f"{n / 1000:.0f}k" if n >= 10000 else f"{n:.0f}"


def _frame(ymax: float, x_labels: list[tuple[float, str]], title: str) -> list[str]:
    pw, ph = W - L - R, H - T - B
    out = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{title}" class="plot">',
           f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" class="axis-bg"/>']
    for frac in (0, .5, 1):
        y = T + ph * (1 - frac)
        out.append(f'<text x="{L - 4}" y="{y + 4:.0f}" text-anchor="end">{_short(ymax * frac)}</text>')
    for x, label in x_labels:
        out.append(f'<text x="{x:.0f}" y="{H - 6}" text-anchor="middle">{label}</text>')
    return out


def state_areas(points: list[tuple[float, dict[str, int]]], title: str) -> str:
    """Stacked areas of tasks per state group over time, each group named at the right end."""
    if len(points) < 2:
        return ""
    t0, t1 = points[0][0], points[-1][0]
    ymax = max(1, max(sum(c.values()) for _, c in points))
    pw, ph = W - L - R, H - T - B

    def x(t: float) -> float:
        return L + pw * (t - t0) / (t1 - t0)

    def y(v: float) -> float:
        return T + ph * (1 - v / ymax)

    ticks = [(x(t0 + (t1 - t0) * f), _tick_label(t0 + (t1 - t0) * f, t1 - t0)) for f in (0, .25, .5, .75, 1)]
    out = _frame(ymax, ticks, title)
    base = [0] * len(points)
    labels = []
    for g, _ in GROUPS:
        vals = [c.get(g, 0) for _, c in points]
        if not any(vals):
            continue
        top = [b + v for b, v in zip(base, vals)]
        upper = " ".join(f"{x(t):.1f},{y(v):.1f}" for (t, _), v in zip(points, top))
        lower = " ".join(f"{x(t):.1f},{y(v):.1f}" for (t, _), v in reversed(list(zip(points, base))))
        poly = f"{upper} {lower}"
        out.append(f'<polygon points="{poly}" class="{STYLE[g]}"><title>{g}</title></polygon>')
        if g in PATTERN:
            out.append(f'<polygon points="{poly}" fill="url(#{PATTERN[g]})"/>')
        labels.append((g, vals[-1], (y(top[-1]) + y(base[-1])) / 2))
        base = top
    last = -99.0
    for g, n, ly in sorted(labels, key=lambda x: x[2]):
        ly = max(ly, last + 17)
        last = ly
        out.append(f'<text x="{W - R + 4}" y="{ly + 4:.0f}">{g} {n}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram(durations: list[float], limit: float, bins: int = 30, title: str = "") -> str:
    """Bars of how many jobs ran how long; the bars above ``limit`` (the slow tail) hatched."""
    if not durations:
        return ""
    hi = max(durations) or 1.0
    width = hi / bins
    counts = [0] * bins
    for d in durations:
        counts[min(bins - 1, int(d / width))] += 1
    return histogram_of(counts, hi, limit, title)


def histogram_of(counts: list[int], hi: float, limit: float, title: str = "") -> str:
    """``histogram`` from its bars already counted: ``counts`` jobs per equal bin from 0 to ``hi``."""
    if not counts:
        return ""
    bins = len(counts)
    width = hi / bins
    ymax = max(counts)
    pw, ph = W - L - R, H - T - B
    bw = pw / bins
    ticks = [(L + pw * f, _dur(hi * f)) for f in (0, .25, .5, .75, 1)]
    out = _frame(ymax, ticks, title)
    for i, n in enumerate(counts):
        if not n:
            continue
        h = ph * n / ymax
        tail = (i + 1) * width > limit
        cls = "bar tail" if tail else "bar"
        rect = f'x="{L + i * bw + 1:.1f}" y="{T + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}"'
        out.append(f'<rect {rect} class="{cls}"><title>{n} job(s), {_dur(i * width)}-{_dur((i + 1) * width)}</title></rect>')
        if tail:
            out.append(f'<rect {rect} fill="url(#p-tail)"/>')
    lx = L + pw * min(1.0, limit / hi)
    out.append(f'<line x1="{lx:.1f}" x2="{lx:.1f}" y1="{T}" y2="{T + ph}" class="limit"/>')
    out.append(f'<text x="{W - R + 4}" y="{T + 12}">slowest 5%:</text>'
               f'<text x="{W - R + 4}" y="{T + 30}">over {_dur(limit)}</text>')
    out.append("</svg>")
    return "".join(out)


def _dur(s: float) -> str:
    if s < 10:
        return f"{s:.1f}s"
    s = int(s)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s / 3600:.1f}h"
