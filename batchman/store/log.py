"""The change log beside a big status file (``<file>.log``): one line per write, appended.

First line: ``{"log":1,"s":<store id>,"base":<generation>}``, the snapshot generation it
continues. Then one JSON line per write (changes.Record), in generation order. A write counts
once its line is whole (ends with a newline, which JSON never puts inside a line): a line torn by
a crash is ignored by readers and cut off by the next writer, under the lock, before it appends.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import msgspec

from batchman.store.errors import CorruptStatus
from batchman.util.files import atomic_write


class Header(msgspec.Struct):
    log: int
    s: str
    base: int


@dataclass
class Tail:
    """What a read from an offset found: the log's inode, its header (read from offset 0), the
    whole lines, and the offset after the last whole line."""
    ino: int
    header: Header | None
    lines: list[bytes]
    offset: int
    torn: int          # bytes after the last whole line (a write cut short by a crash)


def header_line(store_id: str, base: int) -> bytes:
    return msgspec.json.encode(Header(1, store_id, base)) + b"\n"


def create(path: str, store_id: str, base: int, tail: bytes = b"") -> int:
    """A new log continuing snapshot generation ``base`` (with ``tail``: whole lines of later
    writes), put in place atomically; returns its size."""
    data = header_line(store_id, base) + tail
    atomic_write(path, data)
    return len(data)


def read_from(path: str, offset: int, ino: int | None) -> Tail | None:
    """The whole lines from ``offset`` (from the start if the file is not inode ``ino``);
    None when there is no log."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
        st = os.fstat(f.fileno())
        header = None
        if st.st_ino != ino or offset > st.st_size:
            offset = 0
        if offset == 0:
            first = f.readline(1 << 16)
            if not first.endswith(b"\n"):
                return Tail(st.st_ino, None, [], 0, len(first))
            try:
                header = msgspec.json.decode(first, type=Header)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise CorruptStatus(f"the change log {path} has a damaged first line; it was left as it is. "
                                    f"`batchman recover` rebuilds the status from the journal") from None
            offset = len(first)
        else:
            f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines() if end else []
    return Tail(st.st_ino, header, lines, offset + end, len(data) - end)


def append(path: str, line: bytes, whole: int) -> int:
    """Append one write's line after the first ``whole`` bytes (cutting a torn line a crash left
    after them); fsynced before it returns. Returns the new size."""
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size > whole:
            f.seek(whole)
            if b"\n" in f.read(size - whole):
                raise CorruptStatus(f"the change log {path} holds whole lines this process could not read; "
                                    f"nothing was written. `batchman recover` rebuilds the status from the journal")
            f.truncate(whole)
        f.seek(whole)
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return whole + len(line)


def read_range(path: str, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


def remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
