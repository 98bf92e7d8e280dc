"""The lines of a file, read into one buffer that each next line reuses (issue 18).

Reading the status file's lines with ``for line in f`` makes a fresh bytes object of each ~8 MB
line of tasks, and fresh memory costs a page fault every 4 KB: reading a file of 1,000,000 tasks
so took 0.65-0.80 s here, 0.5 s of it in the kernel, where reading the same bytes into memory
already touched takes 0.2 s (benchmarks/bench_read.py). Here a line is handed out as where it
lies in the buffer, valid until the next line is asked for: whatever still refers to its bytes
then (a ``msgspec.Raw`` decoded from it) would see the next line's.
"""

from __future__ import annotations

import os

BLOCK = 32 << 20        # bytes read at once; a line of tasks is ~8 MB


class Lines:
    """The lines of ``f`` (a file opened unbuffered, ``buffering=0``) from its position.

    ``next()`` gives (a, b): the line is ``buf[a:b]``, with its newline (the file's last line
    may lack one). The byte before it, ``buf[a - 1]``, is free: the caller may write it, and
    any byte of the line (snapshot.task_spans frames a line of tasks in brackets there). ``pos``
    is the end of the last line handed out, in the file."""

    def __init__(self, f, block: int | None = None) -> None:
        self.f = f
        self.buf = bytearray(max(2, min(block or BLOCK, os.fstat(f.fileno()).st_size - f.tell() + 2)))
        self.view = memoryview(self.buf)
        self.start = self.end = 1           # the unread part of the buffer; buf[0] is the free byte
        self.eof = False
        self.pos = f.tell()

    def next(self, limit: int | None = None) -> tuple[int, int] | None:
        """The next line's (a, b) in ``buf``, or None at the end of the file. ``limit``: a line
        longer than that is cut there (the rest is the next "line")."""
        while True:
            i = self.buf.find(b"\n", self.start, self.end)
            if i < 0 and (self.eof or (limit is not None and self.end - self.start >= limit)):
                i = min(self.end, self.start + (limit or self.end)) - 1
                if i < self.start:
                    return None
            if i >= 0:
                a, self.start = self.start, i + 1
                self.pos += self.start - a
                return a, self.start
            self._fill()

    def block(self) -> tuple[int, int] | None:
        """The next whole lines at once, as read (a, b): ``buf[a:b]`` ends after a newline, or at
        the end of the file; None there. For a reader that looks for bytes across many short
        lines (a journal) rather than at each line."""
        while True:
            i = self.buf.rfind(b"\n", self.start, self.end)
            if i >= 0 or (self.eof and self.start < self.end):
                a, self.start = self.start, i + 1 if i >= 0 else self.end
                self.pos += self.start - a
                return a, self.start
            if self.eof:
                return None
            self._fill()

    def _fill(self) -> None:
        """Move the unread bytes to the buffer's start and read more after them (in a buffer
        twice as big when they fill it: a line longer than the buffer)."""
        n = self.end - self.start
        if self.start > 1:
            self.view[1:1 + n] = self.view[self.start:self.end]
        elif self.end == len(self.buf):
            bigger = bytearray(2 * len(self.buf))
            bigger[1:1 + n] = self.view[1:1 + n]
            self.buf, self.view = bigger, memoryview(bigger)
        self.start, self.end = 1, 1 + n
        got = self.f.readinto(self.view[self.end:])
        self.eof = not got
        self.end += got or 0
