"""The status file itself (the snapshot): written in a stream, its first line readable alone.

Layout (plain JSON, one document, what scripts read):

    {"schema":2,"generation":41,"store_id":"a1b2c3",...,"tasks":[
    {"run":1,...},{"run":2,...},...,
    ...
    {"run":99999,...}]}

The first line holds every field but the tasks, so a reader learns the store id and the
generation of a file without decoding a million tasks (``peek``). The tasks follow in lines of
``CHUNK`` tasks, so writing never holds more than one chunk's bytes besides the status itself.
Files written before this layout (one line) are read the same way; ``peek`` says None for them.

In a file of more than one line of tasks, a line that begins with a space (``MARK``, JSON's
whitespace) holds no object but its tasks whose first key is "run": each ``{"run":`` in it begins
a task, so a reader after a few tasks finds where each begins and ends without parsing the line
(partial.py). The writer counts them (~3 ms a line); a file of one line (up to ``CHUNK`` tasks,
written whole under the lock at each change) is not marked, so its writes do not pay for it. A
line without the mark (one whose counters hold such an object, or a file written before the
mark) is parsed.
"""

from __future__ import annotations

import os
from typing import Callable

import msgspec

from batchman.core.model import Status, Task
from batchman.store import changes
from batchman.store.lines import Lines
from batchman.util import files

CHUNK = 20_000
TASKS_OPEN = b',"tasks":[\n'
TASKS_CLOSE = b"]}\n"
TASK_BEGIN = b'{"run":'       # every task's first field is its run (a quote in a string is escaped)
MARK = b" "                   # a line of tasks begins with it: no other object in it begins so
_encoder = msgspec.json.Encoder()
_head = msgspec.json.Decoder(Status)
_tasks = msgspec.json.Decoder(list[Task])


def chunks(status: Status):
    """The file's bytes, a piece at a time."""
    head = _encoder.encode(changes.head_of(status))
    yield head[:-1] + TASKS_OPEN
    tasks = status.tasks
    mark = len(tasks) > CHUNK       # (a file of one line is parsed as fast: no count in its writes)
    for i in range(0, len(tasks), CHUNK):
        chunk = tasks[i:i + CHUNK]
        part = memoryview(_encoder.encode(chunk))[1:-1]
        if mark and part.obj.count(TASK_BEGIN) == len(chunk):
            yield MARK
        yield part
        yield b",\n" if i + CHUNK < len(tasks) else b"\n"
    yield TASKS_CLOSE


def write_temp(path: str, status: Status) -> str:
    """Write the snapshot to a new temp file beside ``path`` (fsynced); returns its name."""
    def fill(f) -> None:
        for part in chunks(status):
            f.write(part)
    return files.write_temp(path, fill)


def write(path: str, status: Status, backup: str | None = None) -> None:
    """Replace ``path`` by the snapshot of ``status``: readers see the old file or the new."""
    files.put_in_place(write_temp(path, status), path, backup)


def peek(path: str) -> Status | None:
    """The fields of the file but its tasks, from its first line; None for a file of the old
    layout, or one that cannot be read (the caller then reads it whole and says what is wrong)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(64 << 20)
    except OSError:
        return None
    try:
        return head_of_line(first)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class Cut(ValueError):
    """The file does not end with the closing line (cut short, or something after it)."""


def head_of_line(first: bytes) -> Status | None:
    """The status's own fields from the file's first line; None when it is not of this layout
    (msgspec.DecodeError / ValidationError for a first line that does not decode)."""
    if not first.endswith(TASKS_OPEN):
        return None
    return _head.decode(first[:-len(TASKS_OPEN)] + b"}")


def head(lines: Lines) -> Status | None:
    """The status's own fields from the first line of ``lines`` (see ``head_of_line``)."""
    span = lines.next(64 << 20)
    return head_of_line(bytes(lines.view[span[0]:span[1]]) if span else b"")


def task_spans(lines: Lines):
    """Each line of tasks after the first, as (buf, a, b): ``buf[a:b]`` is the JSON array of its
    tasks (``[{...},{...}]``), framed in brackets where it lies (the byte before the line, and
    its trailing comma or newline); valid until the next. Raises Cut when the file does not end
    right after the closing line."""
    while (span := lines.next()) is not None:
        buf, (a, b) = lines.buf, span
        if buf[b - 1] != 0x0A:
            break                       # the file's last line, without its newline: cut short
        if b - a == len(TASKS_CLOSE) and buf[a:b] == TASKS_CLOSE:
            if lines.next() is not None:
                break
            return
        close = b - 2 if b - a > 1 and buf[b - 2] == 0x2C else b - 1
        buf[a - 1], buf[close] = 0x5B, 0x5D
        yield buf, a - 1, close + 1
    raise Cut()


def task_arrays(lines: Lines):
    """``task_spans`` as views of the arrays (msgspec decodes them where they lie)."""
    for buf, a, b in task_spans(lines):
        yield memoryview(buf)[a:b]


def read_stream(path: str, progress: Callable[[int, int], None] | None = None) -> Status | None:
    """Decode a file of this layout a line at a time (never the whole file's bytes in memory at
    once: ~370 MB at 1,000,000 tasks); None when it is not of this layout or a line does not
    decode (the caller then reads it whole and reports what is wrong). ``progress(done, size)``
    is told the bytes read after each line of tasks, and ``(size, size)`` at the end."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        lines = Lines(f)
        try:
            status = head(lines)
            if status is None:
                return None
            tasks: list[Task] = []
            for array in task_arrays(lines):
                tasks.extend(_tasks.decode(array))
                if progress is not None:
                    progress(lines.pos, size)
        except (msgspec.DecodeError, msgspec.ValidationError, Cut):
            return None
        finally:
            if progress is not None:
                progress(size, size)
    status.tasks = tasks
    return status


TASK_START = b'},{"run":'     # between two tasks of a line: every task's first field is its run


def pieces(array: bytes | bytearray, parts: int, start: int = 0, end: int | None = None) -> list[bytes]:
    """A JSON array of tasks (``array[start:end]``) as up to ``parts`` arrays of consecutive
    tasks, cut where a task begins (``TASK_START``: its quote cannot be inside a string, where it
    would be escaped). A cut inside a task (a nested value that looks so) leaves pieces with
    brackets open, which do not decode: the caller then decodes the whole array."""
    end = len(array) if end is None else end
    cuts = [start]
    for k in range(1, parts):
        i = array.find(TASK_START, max(cuts[-1] + 1, start + (end - start) * k // parts), end)
        if i < 0:
            break
        cuts.append(i + 1)
    cuts.append(end - 1)
    return [b"[" + array[a + 1:b] + b"]" for a, b in zip(cuts, cuts[1:])]


def read_steps(path: str, parts: int = 8):
    """``read_stream`` in steps of a ``parts``-th of a line of tasks (~2,500 tasks), for a reader
    that has other work between them (the TUI: keys): a generator yielding (bytes read, the
    file's size, the status so far: its one list of tasks growing), whose value is
    read_stream's (the Status, or None)."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        lines = Lines(f)
        try:
            status = head(lines)
            if status is None:
                return None
            status.tasks = tasks = []
            for buf, a, b in task_spans(lines):
                start = len(tasks)
                try:
                    for part in pieces(buf, parts, a, b):
                        tasks.extend(_tasks.decode(part))
                        yield lines.pos, size, status
                except (msgspec.DecodeError, msgspec.ValidationError):
                    del tasks[start:]
                    tasks.extend(_tasks.decode(memoryview(buf)[a:b]))
                    yield lines.pos, size, status
        except (msgspec.DecodeError, msgspec.ValidationError, Cut):
            return None
    return status
