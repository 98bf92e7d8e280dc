"""Processes of this machine."""

from __future__ import annotations

import os
import sys


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


def leave_now(code: int = 0) -> None:
    """End the process at once with ``code`` after flushing stdout and stderr, rather than free
    every object one by one (~1.5 s at 1,000,000 tasks). Only when the output is the process's
    own: under CliRunner or a test's captured output this returns and the caller ends as usual.
    For callers that hold no lock, run no thread that must finish and leave no file half written
    (the store's writes are fsynced and renamed before they return). A reader gone away makes
    the flush raise BrokenPipeError, for the caller to handle."""
    if sys.stdout is not sys.__stdout__ or sys.stderr is not sys.__stderr__:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
