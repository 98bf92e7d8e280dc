"""core.arrays: which ready tasks go as one job array (tables)."""

import pytest

from batchman.core.arrays import Ready, freeze, group, index_map, ready
from batchman.core.model import Task

MEM2 = freeze({"memory_mb": 2000, "cpus": 1})
MEM4 = freeze({"memory_mb": 4000, "cpus": 1})


def r(run, job="reco", res=MEM2, alone=False):
    return Ready(f"{run}.{job}", job, res, alone)


def keys(groups):
    return [[x.key for x in g] for g in groups]


# (items, max_size, min_size, expected groups of keys)
GROUP = [
    ("one kind, fits", [r(1), r(2), r(3)], 1001, 2, [["1.reco", "2.reco", "3.reco"]]),
    ("split at max size", [r(i) for i in range(1, 6)], 2, 2, [["1.reco", "2.reco"], ["3.reco", "4.reco"], ["5.reco"]]),
    ("other job definition: other array", [r(1), r(1, "hist"), r(2), r(2, "hist")], 1001, 2,
     [["1.reco", "2.reco"], ["1.hist", "2.hist"]]),
    ("other resources: other array", [r(1), r(2, res=MEM4), r(3), r(4, res=MEM4)], 1001, 2,
     [["1.reco", "3.reco"], ["2.reco", "4.reco"]]),
    ("retry with changed resources leaves the array", [r(1), r(2, alone=True), r(3)], 1001, 2,
     [["1.reco", "3.reco"], ["2.reco"]]),
    ("lone task keeps its place", [r(2, alone=True), r(1), r(3)], 1001, 2, [["2.reco"], ["1.reco", "3.reco"]]),
    ("a single task is a plain job", [r(1), r(1, "hist")], 1001, 2, [["1.reco"], ["1.hist"]]),
    ("min size 3: pairs go plain", [r(1), r(2), r(1, "hist"), r(2, "hist"), r(3, "hist")], 1001, 3,
     [["1.reco"], ["2.reco"], ["1.hist", "2.hist", "3.hist"]]),
    ("arrays off (max 1)", [r(1), r(2)], 1, 2, [["1.reco"], ["2.reco"]]),
    ("arrays off (max 0)", [r(1), r(2)], 0, 2, [["1.reco"], ["2.reco"]]),
    ("nothing ready", [], 1001, 2, []),
]


@pytest.mark.parametrize("why,items,max_size,min_size,want", GROUP, ids=[g[0] for g in GROUP])
def test_group(why, items, max_size, min_size, want):
    got = group(items, max_size, min_size)
    assert keys(got) == want
    assert sorted(x.key for g in got for x in g) == sorted(x.key for x in items)   # each task once


def test_index_map_is_the_group_order():
    assert index_map([r(7), r(3), r(5)]) == {"7.reco": 0, "3.reco": 1, "5.reco": 2}


def test_freeze_ignores_order_and_lists():
    assert freeze({"b": 1, "a": [1, 2]}) == freeze({"a": [1, 2], "b": 1}) == (("a", (1, 2)), ("b", 1))


def test_ready_from_a_task_marks_a_retry_with_changed_resources():
    plain = ready(Task(run=5, job="reco"), {"memory_mb": 2000})
    retried = ready(Task(run=6, job="reco", resources={"memory_mb": 4000}), {"memory_mb": 4000})
    assert (plain.key, plain.alone, retried.alone) == ("5.reco", False, True)
    assert keys(group([plain, retried, ready(Task(run=7, job="reco"), {"memory_mb": 2000})], 1001)) == \
        [["5.reco", "7.reco"], ["6.reco"]]
