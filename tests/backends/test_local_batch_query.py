"""Issue 18: the local batch system answers a query of many jobs with one listing of its root,
not one look per job for a directory (300,000 at 1,000,000 tasks); the answers are the same."""

import os

from batchman.backends.base import ABSENT, FINISHED
from batchman.backends.batch import local as L


def test_many_jobs_one_listing_same_answers(tmp_path, monkeypatch):
    b = L.LocalBatch(str(tmp_path / "attempts"))
    names = {f"bm.s.{i}.analysis.1": str(1000 + i) for i in range(L.LIST_FROM + 20)}
    for i, n in enumerate(list(names)[:10]):
        os.makedirs(b.job_dir(n))
        with open(os.path.join(b.job_dir(n), "local.exit"), "w") as f:
            f.write("0\n" if i % 2 else "1\n")
    one_by_one = {n: b.query({n: j})[n] for n, j in names.items()}
    looked = []
    real = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda p: looked.append(p) or real(p))
    together = b.query(names)
    assert together == one_by_one and looked == []
    assert [together[n].state for n in names].count(FINISHED) == 10
    assert [together[n].state for n in names].count(ABSENT) == L.LIST_FROM + 10
    assert L.LocalBatch(str(tmp_path / "none")).query(names)[next(iter(names))].state == ABSENT
