"""Processes of this machine."""

from __future__ import annotations

import os


def pid_alive(pid: int, needle: str = "") -> bool:
    """Is ``pid`` a live (non-zombie) process, whose command line contains ``needle``?"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        if stat[stat.rindex(b")") + 2:][:1] in (b"Z", b"X"):
            return False
        if needle:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return needle.encode() in f.read()
        return True
    except (OSError, ValueError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not needle
