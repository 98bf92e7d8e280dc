"""How far a long read has come, on a terminal: a status file of a million tasks (~400 MB)
takes a command seconds to read, which it spent silent. One line, written over itself as the
read goes on and wiped when it ends, so the command's own output starts on a clean line."""

from __future__ import annotations

import os
import sys
from typing import TextIO

SHOW_FROM = 64 * 2**20      # a smaller file is read in well under a second: nothing shown


def on_terminal(path: str) -> ReadProgress | None:
    """A ReadProgress on stderr for the status file at ``path`` (``Store.progress``), when
    stderr is a terminal: none for a pipe, a log file or cron."""
    return ReadProgress(sys.stderr, os.path.basename(path)) if _is_terminal(sys.stderr) else None


def _is_terminal(stream) -> bool:
    return stream.isatty()


class ReadProgress:
    """``progress(done, size)`` for ``Store.progress`` (bytes of the file read, of ``size``):
    'reading status.json (405 MB): 40%' on ``stream``, once a percent, for a file of at least
    ``show_from`` bytes; ``done >= size`` wipes it."""

    def __init__(self, stream: TextIO, what: str, show_from: int | None = None) -> None:
        self.stream, self.what = stream, what
        self.show_from = SHOW_FROM if show_from is None else show_from
        self.width = 0          # of the line on the screen (0: none)
        self.percent = -1

    def __call__(self, done: int, size: int) -> None:
        if size < self.show_from:
            return
        if done >= size:
            if self.width:
                self._put(" " * self.width + "\r")
            self.width, self.percent = 0, -1
            return
        percent = 100 * done // size
        if percent != self.percent:
            self.percent = percent
            line = f"reading {self.what} ({size / 2**20:.0f} MB): {percent}%"
            self._put(line.ljust(self.width) + "\r")
            self.width = len(line)

    def _put(self, text: str) -> None:
        self.stream.write("\r" + text)
        self.stream.flush()
