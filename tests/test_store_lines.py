"""Issue 18: the status file's lines are read into one buffer that the next line reuses
(store/lines.py), and a line of tasks is framed in brackets where it lies (snapshot.task_spans).
What a reader gets must be the file's lines exactly, whatever the buffer's size against the
lines', and a file cut short or with something after its end must still be refused."""

import io
import random

import msgspec
import pytest

from batchman.core import model
from batchman.core.model import Status, Task
from batchman.store import partial, snapshot
from batchman.store.lines import Lines


def lines_of(path, block, limit=None):
    with open(path, "rb", buffering=0) as f:
        lines, out = Lines(f, block), []
        while (span := lines.next(limit)) is not None:
            out.append(bytes(lines.buf[span[0]:span[1]]))
            assert lines.pos == sum(map(len, out))
            lines.buf[span[0] - 1] = 0x21       # the byte before a line is the caller's to write
        return out


@pytest.mark.parametrize("seed", range(40))
def test_lines_are_the_files_lines_whatever_the_buffers_size(tmp_path, seed):
    rnd = random.Random(seed)
    text = b"".join(b"x" * rnd.choice([0, 1, 2, 5, 17, 64, 300]) + b"\n" for _ in range(rnd.randint(0, 30)))
    text += b"tail" * rnd.randint(0, 3)       # a last line without its newline, sometimes
    path = tmp_path / "f"
    path.write_bytes(text)
    for block in (1, 2, 3, 7, 64, 1 << 20):
        assert lines_of(path, block) == io.BytesIO(text).readlines(), block


@pytest.mark.parametrize("seed", range(20))
def test_blocks_are_whole_lines_that_make_up_the_file(tmp_path, seed):
    rnd = random.Random(seed)
    text = b"".join(b"y" * rnd.choice([0, 1, 9, 200]) + b"\n" for _ in range(rnd.randint(0, 40))) + b"z" * rnd.randint(0, 5)
    path = tmp_path / "f"
    path.write_bytes(text)
    for block in (1, 3, 64, 1 << 20):
        with open(path, "rb", buffering=0) as f:
            lines, got = Lines(f, block), []
            while (span := lines.block()) is not None:
                part = bytes(lines.buf[span[0]:span[1]])
                assert part.endswith(b"\n") or lines.pos == len(text), (block, part)
                got.append(part)
        assert b"".join(got) == text, block


def test_a_line_longer_than_the_limit_is_cut_there(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a" * 100 + b"\nb\n")
    assert lines_of(path, 8, limit=30)[0] == b"a" * 30


def status_file(tmp_path, n, monkeypatch, chunk=7):
    monkeypatch.setattr(snapshot, "CHUNK", chunk)
    rnd = random.Random(n)
    tasks = [Task(run=r, state=rnd.choice(["failed", "completed", "running"]), reason='a "quoted" },{"run": \n text',
                  counters={"x": [{"run": 1, "state": "failed"}, {"run": 2}]} if r % 5 == 0 else {}) for r in range(n)]
    status = Status(experiment="e", tasks=tasks)
    path = str(tmp_path / "status.json")
    snapshot.write(path, status)
    return path, status


@pytest.mark.parametrize("n", [0, 1, 6, 7, 8, 50])
def test_a_file_read_in_a_small_buffer_decodes_to_what_was_written(tmp_path, monkeypatch, n):
    path, status = status_file(tmp_path, n, monkeypatch)
    monkeypatch.setattr("batchman.store.lines.BLOCK", 64)
    assert model.encode(snapshot.read_stream(path)) == model.encode(status)
    steps = snapshot.read_steps(path, parts=3)
    while True:
        try:
            next(steps)
        except StopIteration as e:
            assert model.encode(e.value) == model.encode(status)
            break


@pytest.mark.parametrize("end", [b"", b"]}", b"]}\n\n", b"]}\nx"])
def test_a_file_that_does_not_end_with_its_closing_line_is_refused(tmp_path, monkeypatch, end):
    path, _ = status_file(tmp_path, 20, monkeypatch)
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(snapshot.TASKS_CLOSE)
    with open(path, "wb") as f:
        f.write(data[:-len(snapshot.TASKS_CLOSE)] + end)
    assert snapshot.read_stream(path) is None


def test_the_tasks_in_a_state_are_chosen_from_a_framed_line_as_from_the_whole(tmp_path, monkeypatch):
    path, status = status_file(tmp_path, 50, monkeypatch)
    with open(path, "rb", buffering=0) as f:
        lines = Lines(f, 100)
        snapshot.head(lines)
        got = [t for buf, a, b in snapshot.task_spans(lines)
               for t in partial.choose(buf, *partial.by_states(["failed"])[:2], a, b)]
    want = [t for t in status.tasks if t.state == "failed"]
    assert msgspec.json.encode(got) == msgspec.json.encode(want) and len(want) > 5
