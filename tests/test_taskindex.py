"""core/taskindex.TaskIndex (issue 18: the index of 1,000,000 tasks made in ~0.2 s instead of
~0.55 s) behaves as the dict of key strings it replaces: random operations on both, with tasks
and keys of every shape (odd ones turn it into such a dict), give the same answers."""

from __future__ import annotations

import random

import pytest

from batchman.core.model import Status, Task
from batchman.core.taskindex import RUNS, TaskIndex

ODD_KEYS = ["0012.reco", "+1.reco", "1_0.reco", " 1.reco", "1.reco ", "1.reco.", "1..", "abc", "", ".", "1.",
            "1.reco.01", "1.reco.-1", "-1.reco", "1.a.b", "１.reco", "4294967296.reco", 5, None, ("1", "reco"), b"1.reco"]


def a_task(rnd: random.Random, odd: bool) -> Task:
    run = rnd.choice([1, 2, 3, 17, 1000, 99999, RUNS - 1] + ([RUNS, -1, 2**70] if odd else []))
    job = rnd.choice(["reco", "analysis", "merge", "x-1", "A_b"] + (["a.b", ""] if odd else []))
    seg = rnd.choice([None, None, 0, 1, 7, 199, 2**40] + ([-1, -5] if odd else []))
    return Task(run=run, job=job, seg=seg)


def keys_to_ask(rnd: random.Random, tasks: list[Task]) -> list:
    return [t.key for t in rnd.sample(tasks, min(5, len(tasks)))] + rnd.sample(ODD_KEYS, 4) + \
        [a_task(rnd, True).key for _ in range(3)]


def same(idx: TaskIndex, d: dict, rnd: random.Random, tasks: list[Task]) -> None:
    assert len(idx) == len(d)
    assert list(idx) == list(d) and list(idx.keys()) == list(d.keys())
    assert list(idx.values()) == list(d.values()) and all(a is b for a, b in zip(idx.values(), d.values()))
    assert list(idx.items()) == list(d.items())
    assert idx == d
    for k in keys_to_ask(rnd, tasks):
        assert idx.get(k) is d.get(k), k
        assert (k in idx) == (k in d), k
        if k in d:
            assert idx[k] is d[k]
        else:
            with pytest.raises(KeyError):
                idx[k]
    for t in rnd.sample(tasks, min(5, len(tasks))) + [a_task(rnd, True) for _ in range(5)]:
        assert idx.of(t) is d.get(t.key), t


@pytest.mark.parametrize("seed", range(200))
def test_a_task_index_answers_as_a_dict_of_key_strings(seed):
    rnd = random.Random(seed)
    odd = seed % 3 == 0
    tasks = [a_task(rnd, odd and rnd.random() < 0.1) for _ in range(rnd.randint(0, 30))]
    idx, d = TaskIndex(tasks), {t.key: t for t in tasks}
    same(idx, d, rnd, tasks or [Task(run=1)])
    for _ in range(25):
        what = rnd.choice(["add", "set", "del", "pop", "update", "setdefault"])
        t = a_task(rnd, odd and rnd.random() < 0.1)
        tasks.append(t)
        if what == "add":
            more = [a_task(rnd, odd and rnd.random() < 0.05) for _ in range(rnd.randint(0, 6))]
            tasks += more
            idx.add(more)
            d.update({x.key: x for x in more})
        elif what == "set":
            idx[t.key] = d[t.key] = t
        elif what == "update":
            idx.update((x.key, x) for x in (t, a_task(rnd, False)) if d.setdefault(x.key, x) is x)
        elif what == "setdefault":
            assert idx.setdefault(t.key, t) is d.setdefault(t.key, t)
        else:
            k = rnd.choice([t.key] + list(d)[:3] + ODD_KEYS[:3])
            if what == "pop":
                assert idx.pop(k, "none") is d.pop(k, "none")
            elif k in d:
                del idx[k], d[k]
            else:
                with pytest.raises(KeyError):
                    del idx[k]
        same(idx, d, rnd, tasks)


def test_the_numbers_of_tasks_are_theirs_alone():
    """Tasks that differ in run, job or segment by the places of the number never share one."""
    tasks = [Task(run=r, job=j, seg=s) for r in (0, 1, RUNS - 1) for j in ("a", "b") for s in (None, 0, 1, 2**50)]
    idx = TaskIndex(tasks)
    assert len(idx) == len(tasks) and not idx._plain
    assert all(idx.of(t) is t for t in tasks)
    assert list(idx) == [t.key for t in tasks]
    for other in (Task(run=1, job="a", seg=-1), Task(run=RUNS + 1, job="a"), Task(run=-RUNS + 1, job="a")):
        assert idx.of(other) is None and other.key not in idx and idx.get(other.key) is None


def test_the_status_index_is_kept_with_its_tasks():
    tasks = [Task(run=r) for r in range(5)]
    st = Status(tasks=tasks)
    idx = st.index()
    assert isinstance(idx, TaskIndex) and idx["3.analysis"] is tasks[3] and st.index() is idx
    tasks.append(Task(run=9, job="reco", seg=2))
    assert st.index() is idx and idx["9.reco.2"] is tasks[-1]
    tasks.append(Task(run=9, job="reco", seg=2))            # the same key again: made afresh
    assert st.index() is not idx and st.index()["9.reco.2"] is tasks[-1]
