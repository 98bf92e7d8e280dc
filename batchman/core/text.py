"""Text that a job, a batch system or a user wrote, made safe to show.

Counters, reasons, log tails and run-list columns reach the terminal and the page as their authors
wrote them; an escape sequence in a counter could retitle or recolour a terminal. ``visible`` turns
every control character into a visible escape (``\\x1b``, ``\\n``), so one value stays one line
and nothing in it acts on the terminal.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the Unicode direction overrides that reorder what is shown
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(m: re.Match) -> str:
    c = m.group(0)
    if c in _NAMED:
        return _NAMED[c]
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def visible(value, keep_lines: bool = False) -> str:
    """``value`` as text with its control characters shown, not obeyed.

    ``keep_lines`` keeps newlines and tabs (for log tails shown as several lines).
    """
    s = value if isinstance(value, str) else str(value)
    return (_CONTROL_BUT_LINES if keep_lines else _CONTROL).sub(_escape, s)
