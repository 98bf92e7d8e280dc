"""The daemon with job arrays, in-process, on a local stand-in for SLURM's arrays (a test
double on the local backend: each element a local job running the array's dispatcher with
$SLURM_ARRAY_TASK_ID, listed under the array's name with id <array>_<i>). What SLURM itself
does is tested in tests/slurm/test_slurm_arrays.py; here: one submission per array, every run
completed exactly once with its own logs, and a daemon killed between the array's submission
and its record followed by one that adopts every element."""

from __future__ import annotations

import dataclasses
import os

import pytest

from batchman.backends.base import ABSENT, ArrayForm, JobInfo, JobSpec
from batchman.backends.batch import slurm_array
from batchman.backends.batch.local import LocalBatch
from batchman.backends.factory import make_staging
from batchman.core import states as S
from batchman.daemon.engine import Engine

from clusterhelp import poll
from e2e_helpers import job_starts, make_experiment
from race_helpers import Crash, dead_pid, hooks

pytestmark = pytest.mark.slow


class LocalArrays(LocalBatch):
    """LocalBatch with arrays: element i of array A (id 'A<n>') is the local job 'A.e<i>'."""
    capabilities = dataclasses.replace(LocalBatch.capabilities, arrays=True)
    array_form = ArrayForm("SLURM_ARRAY_TASK_ID", 0, "%a")

    def __init__(self, root):
        super().__init__(root, slots=4)
        self.arrays_submitted: list[tuple[str, int]] = []

    def max_array_size(self):
        return 1001

    def element_id(self, array_id, index):
        return f"{array_id}_{index}"

    def element_index(self, job_id):
        return slurm_array.element_index(job_id)

    def submit_array(self, spec: JobSpec, size: int) -> str:
        aid = str(len(os.listdir(self.root)) + 1000 if os.path.isdir(self.root) else 1000)
        os.makedirs(self.job_dir(f"array.{spec.name}"), exist_ok=True)
        with open(os.path.join(self.job_dir(f"array.{spec.name}"), "id"), "w") as f:
            f.write(aid)
        for i in range(size):
            self.submit(dataclasses.replace(spec, name=f"{spec.name}.e{i}", env={"SLURM_ARRAY_TASK_ID": str(i)},
                                            stdout=spec.stdout.replace("%a", str(i)),
                                            stderr=spec.stderr.replace("%a", str(i))))
        self.arrays_submitted.append((spec.name, size))
        return aid

    def _array_id(self, name):
        try:
            with open(os.path.join(self.job_dir(f"array.{name}"), "id")) as f:
                return f.read()
        except OSError:
            return None

    def query(self, jobs, arrays=None):
        arrays = arrays or {}
        out = super().query({n: i for n, i in jobs.items() if n not in arrays})
        for n, (name, i) in arrays.items():
            aid = self._array_id(name)
            if aid is None:
                out[n] = JobInfo(n, "", ABSENT)
                continue
            info = self._info(f"{name}.e{i}", "")
            out[n] = dataclasses.replace(info, name=n, job_id=f"{aid}_{i}")
        return out


def engine(e, batch):
    return Engine(e.params, e.store, batch, make_staging(e.params), mode="test")


def run_until_done(eng, e, timeout=60):
    def done():
        eng.run_once()
        return all(t.state in S.TERMINAL for t in e.store.read().tasks)
    poll("every run at its end", done, timeout, every=0.2,
         show=lambda: [(t.run, t.state, t.reason) for t in e.store.read().tasks])


@pytest.fixture
def loud(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LOG", str(tmp_path / "jobs.log"))
    monkeypatch.setenv("SLEEP", "0.1")


def test_six_runs_one_array_each_its_own_logs_and_id(tmp_path, loud):
    e = make_experiment(tmp_path, range(1, 7), segments=1, **{"staging.cache_dir": "raw", "batch.arrays": True})
    batch = LocalArrays(str(tmp_path / ".batchman" / "local"))
    eng = engine(e, batch)
    run_until_done(eng, e)
    st = e.store.read()
    assert len(batch.arrays_submitted) == 1 and batch.arrays_submitted[0][1] == 6
    assert {t.state for t in st.tasks} == {S.COMPLETED}
    name = batch.arrays_submitted[0][0]
    assert sorted((t.array_name, t.array_index) for t in st.tasks) == [(name, i) for i in range(6)]
    assert len({t.job_id for t in st.tasks}) == 6 and all(t.job_id.endswith(f"_{t.array_index}") for t in st.tasks)
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in range(1, 7)}
    eng.unregister()


def test_arrays_off_submits_plain_jobs(tmp_path, loud):
    e = make_experiment(tmp_path, range(1, 4), segments=1, **{"staging.cache_dir": "raw", "batch.arrays": False})
    batch = LocalArrays(str(tmp_path / ".batchman" / "local"))
    eng = engine(e, batch)
    run_until_done(eng, e)
    assert batch.arrays_submitted == [] and {t.array_name for t in e.store.read().tasks} == {""}
    eng.unregister()


@pytest.mark.parametrize("point", ["after-intent", "before-submit", "after-submit", "before-record"])
def test_killed_around_the_arrays_submission_never_submits_twice(tmp_path, loud, point):
    e = make_experiment(tmp_path, range(1, 5), segments=1, **{"staging.cache_dir": "raw", "batch.arrays": True})
    root = str(tmp_path / ".batchman" / "local")
    first = LocalArrays(root)
    eng = engine(e, first)
    eng.me = eng.me.rsplit(":", 1)[0] + f":{dead_pid()}"      # a daemon that is dead once it crashed

    def die(_):
        raise Crash()
    with hooks() as at:
        at(point, die)
        with pytest.raises(Crash):
            eng.run_once()
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.SUBMITTING} and all(t.intent is not None for t in st.tasks)
    assert sorted(t.array_index for t in st.tasks) == [0, 1, 2, 3] and len({t.array_name for t in st.tasks}) == 1
    # the next daemon (another id: the first is dead)
    second = LocalArrays(root)
    eng2 = engine(e, second)
    run_until_done(eng2, e)
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.run, t.state, t.reason) for t in st.tasks]
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in range(1, 5)}
    submitted = len(first.arrays_submitted) + len(second.arrays_submitted)
    if point in ("after-submit", "before-record"):
        # the array went in before the crash: adopted element by element, nothing submitted again
        assert (len(first.arrays_submitted), second.arrays_submitted) == (1, [])
        assert all("_" in t.job_id for t in st.tasks)
    else:
        # no array before the crash: the resumed intents go as plain jobs, once each
        assert submitted == 0 and all(t.array_name == "" for t in st.tasks)
    eng2.unregister()
