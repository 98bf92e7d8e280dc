"""Issue 18: the TUI reads a large status file in steps (store/steps.py, snapshot.read_steps),
keys handled between them. What the steps end with must be what ``Store.read`` gives, whatever
was written meanwhile, and the store must go on following the file and its change log after."""

import random

import msgspec
import pytest

from batchman.core import model
from batchman.core.model import Attempt, Task
from batchman.store import snapshot, steps
from batchman.store.store import Store
from test_store_partial import STATES, change, random_task, small_lines  # noqa: F401 - a fixture


def run_steps(gen, between=lambda: None):
    """Drive a steps generator to its end, ``between`` called after each step; (yields, value)."""
    seen = []
    while True:
        try:
            seen.append(next(gen))
        except StopIteration as e:
            return seen, e.value
        between()


def filled(tmp_path, seed: int, n: int = 30):
    """A store of ``n`` random tasks (runs from 1000); (store, its random source, its runs)."""
    rnd = random.Random(seed)
    s = Store(str(tmp_path / "status.json"), lock_timeout=2)
    runs = list(range(1000, 1000 + n))
    with s.transaction("t") as st:
        st.tasks = [random_task(rnd, r) for r in runs]
    return s, rnd, runs


# ---- pure: a line cut where a task begins ---------------------------------------------------------
@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7, 50])
def test_pieces_are_the_lines_tasks_in_order(parts):
    tasks = [Task(run=r, state=random.Random(r).choice(STATES), reason='a "quoted" },{"run": text',
                  past=[Attempt(n=1)] if r % 2 else []) for r in range(20)]
    array = msgspec.json.encode(tasks)
    got = [t for p in snapshot.pieces(array, parts) for t in msgspec.json.decode(p, type=list[Task])]
    assert msgspec.json.encode(got) == msgspec.json.encode(msgspec.json.decode(array, type=list[Task]))
    assert len(snapshot.pieces(array, parts)) == min(parts, 20)


def test_a_cut_inside_a_task_does_not_decode():
    nested = b'[{"run":1,"counters":{"x":[{},{"run":2}]}},{"run":3}]'
    parts = snapshot.pieces(nested, 2)
    assert len(parts) == 2
    with pytest.raises(msgspec.DecodeError):
        for p in parts:
            msgspec.json.decode(p)


# ---- against read_stream and the full read -----------------------------------------------------------
def test_read_steps_yields_its_progress_and_ends_with_what_read_stream_gives(tmp_path, small_lines):
    s, _, _ = filled(tmp_path, 3)
    seen, got = run_steps(snapshot.read_steps(s.path, parts=2))
    assert len(seen) == 2 * -(-30 // 4)                  # 4 tasks a line (small_lines), two pieces each
    assert [len(st.tasks) for _, _, st in seen] == sorted(len(st.tasks) for _, _, st in seen)
    assert seen[-1][0] == seen[-1][1] - len(snapshot.TASKS_CLOSE)
    assert model.encode(got) == model.encode(snapshot.read_stream(s.path))


def test_a_cut_that_does_not_decode_gives_the_whole_line(tmp_path, small_lines, monkeypatch):
    s, _, _ = filled(tmp_path, 4)
    monkeypatch.setattr(snapshot, "TASK_START", b",")   # cuts anywhere: inside tasks
    _, got = run_steps(snapshot.read_steps(s.path, parts=3))
    assert model.encode(got) == model.encode(snapshot.read_stream(s.path))


@pytest.mark.parametrize("seed", range(6))
def test_the_store_read_in_steps_while_others_write_is_the_full_read_and_follows_on(tmp_path, small_lines, seed):
    s, rnd, runs = filled(tmp_path, seed, 40)
    for _ in range(5):
        change(rnd, s, runs)
    reader = Store(s.path)
    writes = iter(range(rnd.randint(0, 6)))
    _, got = run_steps(steps.read_steps(reader), lambda: next(writes, None) is not None and change(rnd, s, runs))
    assert model.encode(got) == model.encode(Store(s.path).read())
    for step in range(10):                               # and it goes on following the file and its log
        change(rnd, s, runs)
        assert model.encode(reader.read()) == model.encode(Store(s.path).read()), (seed, step)


def test_a_file_of_the_old_layout_is_read_whole_in_one_step(tmp_path, small_lines):
    s = Store(str(tmp_path / "status.json"), lock_timeout=2)
    with s.transaction("t") as st:
        st.tasks = [Task(run=r, state="failed") for r in range(10)]
    data = open(s.path, "rb").read()
    with open(s.path, "wb") as f:
        f.write(msgspec.json.encode(msgspec.json.decode(data)))     # one line, as before issue 18
    seen, got = run_steps(steps.read_steps(Store(s.path)))
    assert seen == [] and len(got.tasks) == 10
