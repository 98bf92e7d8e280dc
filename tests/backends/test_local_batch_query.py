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
    assert list(together) == list(names)      # in the order asked (daemon/answer.answers_all)
    assert [together[n].state for n in names].count(FINISHED) == 10
    assert [together[n].state for n in names].count(ABSENT) == L.LIST_FROM + 10
    assert L.LocalBatch(str(tmp_path / "none")).query(names)[next(iter(names))].state == ABSENT


def test_many_jobs_those_never_submitted_here_are_answered_absent_without_a_look_each(tmp_path, monkeypatch):
    """(oneshot's benchmark at 1,000,000 tasks: 290,000 of the 300,000 jobs asked about have no
    directory; a call each took ~0.6 s.)"""
    b = L.LocalBatch(str(tmp_path / "attempts"))
    names = {f"bm.s.{i}.analysis.1": str(1000 + i) for i in range(L.LIST_FROM * 3)}
    for n in list(names)[::7]:
        os.makedirs(b.job_dir(n))
        with open(os.path.join(b.job_dir(n), "local.exit"), "w") as f:
            f.write("0\n")
    one_by_one = {n: b.query({n: j})[n] for n, j in names.items()}
    looked = []
    real = L.LocalBatch._info
    monkeypatch.setattr(L.LocalBatch, "_info", lambda self, n, *a: looked.append(n) or real(self, n, *a))
    assert b.query(names) == one_by_one
    assert sorted(looked) == sorted(list(names)[::7])


def test_listing_ours_names_the_queued_and_running_jobs_and_reads_no_ended_one(tmp_path, monkeypatch):
    import subprocess
    import sys
    b = L.LocalBatch(str(tmp_path / "attempts"))
    names = [f"bm.s.{i}.analysis.1" for i in range(6)] + ["other.1"]
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", names[1]])
    try:
        for i, n in enumerate(names):
            os.makedirs(b.job_dir(n))
            if i in (0, 3, 4, 6):
                with open(os.path.join(b.job_dir(n), "local.exit"), "w") as f:
                    f.write("0\n")
            if i == 1:
                with open(os.path.join(b.job_dir(n), "local.pid"), "w") as f:
                    f.write(f"{runner.pid}\n")
                with open(os.path.join(b.job_dir(n), "local.state"), "w") as f:
                    f.write("running\n")
        looked = []
        real = L.LocalBatch._info
        monkeypatch.setattr(L.LocalBatch, "_info", lambda self, n, *a: looked.append(n) or real(self, n, *a))
        ours = b.list_ours("bm.s.")
        assert [(j.name, j.state) for j in ours] == [(names[1], "running")]
        assert sorted(looked) == [names[1], names[2], names[5]]      # not the ended ones'
    finally:
        runner.kill()
        runner.wait()
