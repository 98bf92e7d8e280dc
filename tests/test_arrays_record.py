"""Job arrays in the daemon (issue 14), without a batch system: which submissions of an
iteration become one array and how that is recorded with the intent before any sbatch
(daemon/record.py), and the files an array is submitted with (daemon/arrayjob.py)."""

import os
import subprocess

import pytest

from batchman.backends.base import ArrayForm, JobSpec
from batchman.backends.batch import slurm_array
from batchman.core import decide as D
from batchman.core import states as S
from batchman.core.arrays import array_name, parse_array_name
from batchman.core.model import Intent, Status, Task, decode, encode, parse_job_name
from batchman.daemon import arrayjob
from batchman.daemon.record import record_arrays
from batchman.daemon.work import Work

SLURM = ArrayForm("SLURM_ARRAY_TASK_ID", 0, "%a")
GRIDENGINE = ArrayForm("SGE_TASK_ID", 1, "$TASK_ID")
RES = {"reco": {"memory_mb": 2000}, "hist": {"memory_mb": 500}}


def submitting(run, job="reco", resources=None, array=("", None)):
    t = Task(run=run, job=job, state=S.SUBMITTING, attempt=1, job_name=f"bm.s1.{run}.{job}.1",
             intent=Intent(actions=[D.SUBMIT], owner="h:1", at=1.0), resources=resources or {},
             array_name=array[0], array_index=array[1])
    return t


def work_of(t, fresh=True):
    w = Work.of(t, [D.SUBMIT])
    w.fresh = fresh
    return w


def arrays_of(st):
    return {t.key: (t.array_name, t.array_index) for t in st.tasks}


def test_new_submissions_of_one_job_become_one_array_written_into_the_tasks():
    st = Status(store_id="s1", tasks=[submitting(r) for r in (5, 6, 7)])
    work = [work_of(t) for t in st.tasks]
    assert record_arrays(st, work, 1001, "0stamp", RES.get) == 1
    name = "bm.s1.reco.a0stamp0"
    assert arrays_of(st) == {"5.reco": (name, 0), "6.reco": (name, 1), "7.reco": (name, 2)}
    assert [(w.array_name, w.array_index) for w in work] == [(name, 0), (name, 1), (name, 2)]
    # written with the intent: what a daemon finds after a crash
    again = decode(encode(Status(schema=1, store_id="s1", tasks=st.tasks)))
    assert arrays_of(again) == arrays_of(st) and all(t.intent is not None for t in again.tasks)


def test_the_segment_tasks_of_one_run_are_each_their_own_element():
    """per: segment (issue 18): three files of run 5 are three elements, by their own keys (the
    daemon died with a KeyError when an element was looked up by its run's key)."""
    st = Status(store_id="s1", tasks=[Task(run=5, job="reco", seg=s, state=S.SUBMITTING, attempt=1,
                                           job_name=f"bm.s1.5.reco.{s}.1") for s in range(3)])
    work = [work_of(t) for t in st.tasks]
    assert record_arrays(st, work, 1001, "0stamp", RES.get) == 1
    name = "bm.s1.reco.a0stamp0"
    assert arrays_of(st) == {"5.reco.0": (name, 0), "5.reco.1": (name, 1), "5.reco.2": (name, 2)}
    assert [(w.array_name, w.array_index) for w in work] == [(name, 0), (name, 1), (name, 2)]


def test_resumed_submissions_retries_with_new_resources_and_lone_tasks_go_plain():
    old = ("bm.s1.reco.a0old0", 3)
    tasks = [submitting(1, array=old), submitting(2, resources={"memory_mb": 4000}), submitting(3), submitting(4),
             submitting(5, "hist")]
    st = Status(store_id="s1", tasks=tasks)
    work = [work_of(tasks[0], fresh=False)] + [work_of(t) for t in tasks[1:]]
    record_arrays(st, work, 1001, "0stamp", RES.get)
    name = "bm.s1.reco.a0stamp0"
    assert arrays_of(st) == {"1.reco": ("", None), "2.reco": ("", None), "3.reco": (name, 0), "4.reco": (name, 1),
                             "5.hist": ("", None)}


def test_arrays_off_or_max_size_splits():
    st = Status(store_id="s1", tasks=[submitting(r) for r in range(1, 6)])
    work = [work_of(t) for t in st.tasks]
    assert record_arrays(st, work, 1, "0s", RES.get) == 0 and all(n == "" for n, _ in arrays_of(st).values())
    assert record_arrays(st, work, 2, "0s", RES.get) == 2
    assert [v for v in arrays_of(st).values()] == [("bm.s1.reco.a0s0", 0), ("bm.s1.reco.a0s0", 1),
                                                    ("bm.s1.reco.a0s1", 0), ("bm.s1.reco.a0s1", 1), ("", None)]


def test_array_names_never_parse_as_a_tasks_job_name():
    n = array_name("s1", "reco", "0abc")
    assert parse_array_name(n) == ("s1", "reco") and parse_job_name(n) is None
    assert parse_array_name("bm.s1.5.reco.1") is None
    with pytest.raises(ValueError, match="not a valid array name"):
        array_name("s1", "reco", "A_B")


def element(tmp_path, i, body):
    d = tmp_path / f"att{i}"
    d.mkdir()
    script = d / "job.sh"
    script.write_text(f"#!/bin/bash\n{body}\n")
    script.chmod(0o755)
    return JobSpec(name=f"bm.s1.{i}.reco.1", script=str(script), workdir=str(tmp_path),
                   stdout=str(tmp_path / "logs" / f"{i}.out"), stderr=str(tmp_path / "logs" / f"{i}.err"),
                   attempt_dir=str(d), memory_mb=2000, env={"BATCHMAN_RUN": str(i)})


@pytest.mark.parametrize("form", [SLURM, GRIDENGINE], ids=["slurm", "gridengine"])
def test_dispatcher_runs_each_elements_own_script_and_logs_go_to_its_own_files(tmp_path, form):
    specs = {i: element(tmp_path, i, f'echo "element {i} out"; echo "element {i} err" >&2; exit {i}') for i in range(3)}
    spec = arrayjob.prepare(str(tmp_path / "arrays"), "bm.s1.reco.a0x", specs, form)
    adir = tmp_path / "arrays" / "bm.s1.reco.a0x"
    assert (spec.name, spec.script, spec.env, spec.memory_mb) == ("bm.s1.reco.a0x", str(adir / "dispatch.sh"), {}, 2000)
    assert (spec.stdout, spec.stderr) == (str(adir / f"{form.log_token}.out"), str(adir / f"{form.log_token}.err"))
    for i in range(3):
        # what the batch system does for element i: open <dir>/<n>.out and <n>.err (n: its own
        # index of the element, first + i), run the dispatcher with n in the index variable
        n = str(form.first + i)
        with open(adir / f"{n}.out", "w") as out, open(adir / f"{n}.err", "w") as err:
            rc = subprocess.run([spec.script], stdout=out, stderr=err, env={**os.environ, form.index_var: n}).returncode
        assert rc == i
        assert (tmp_path / "logs" / f"{i}.out").read_text() == f"element {i} out\n"
        assert (tmp_path / "logs" / f"{i}.err").read_text() == f"element {i} err\n"
    assert arrayjob.all_members(str(tmp_path / "arrays")) == {"bm.s1.reco.a0x": {i: f"bm.s1.{i}.reco.1" for i in range(3)}}


def test_dispatcher_refuses_an_index_it_does_not_have(tmp_path):
    spec = arrayjob.prepare(str(tmp_path / "arrays"), "bm.s1.reco.a0x", {0: element(tmp_path, 0, "exit 0")}, SLURM)
    cp = subprocess.run([spec.script], capture_output=True, text=True, env={**os.environ, "SLURM_ARRAY_TASK_ID": "7"})
    assert cp.returncode == 2 and "has no element '7'" in cp.stderr


def test_dispatcher_of_a_one_based_system_has_no_element_0(tmp_path):
    spec = arrayjob.prepare(str(tmp_path / "arrays"), "bm.s1.reco.a0x", {0: element(tmp_path, 0, "exit 5")}, GRIDENGINE)
    env = {**os.environ, "SGE_TASK_ID": "0"}
    assert subprocess.run([spec.script], capture_output=True, env=env).returncode == 2
    assert subprocess.run([spec.script], capture_output=True, env={**env, "SGE_TASK_ID": "1"}).returncode == 5


def test_prepare_refuses_holes_in_the_indexes(tmp_path):
    with pytest.raises(ValueError, match="not 0..1"):
        arrayjob.prepare(str(tmp_path), "bm.s1.reco.a0x", {0: element(tmp_path, 0, ""), 2: element(tmp_path, 2, "")},
                         SLURM)


def test_members_text_round_trip_skips_garbage():
    assert arrayjob.parse_members(arrayjob.render_members({1: "b", 0: "a"}) + "junk\nx y\n") == {0: "a", 1: "b"}


class Listing:
    """A batch backend that lists jobs (list_ours) as SLURM does: array elements under the array's name."""
    capabilities = type("C", (), {"listing_reuse": False})()
    element_index = staticmethod(slurm_array.element_index)

    def __init__(self, rows):
        self.rows = rows

    def list_ours(self, prefix):
        return [r for r in self.rows if r.name.startswith(prefix)]


def test_unknown_scan_and_adopt_know_array_elements(tmp_path):
    from batchman.backends.base import QUEUED, RUNNING, JobInfo
    from batchman.daemon.unknown import keep_unknown, scan
    from batchman import actions
    from batchman.store.store import Store

    specs = {i: element(tmp_path, i, "true") for i in range(3)}
    arrayjob.prepare(str(tmp_path / "arrays"), "bm.s1.reco.a0x", specs, SLURM)
    rows = [JobInfo(name="bm.s1.reco.a0x", job_id="948_0", state=RUNNING),
            JobInfo(name="bm.s1.reco.a0x", job_id="948_1", state=QUEUED),
            JobInfo(name="bm.s1.reco.a0x", job_id="948_2", state=QUEUED),
            JobInfo(name="bm.s1.reco.a0zz", job_id="990_0", state=QUEUED)]     # no members file: not ours to tell
    store = Store(str(tmp_path / "status.json"))
    with store.transaction("test") as st:
        st.store_id = "s1"
        st.tasks = [Task(run=0, job="reco", state=S.SUBMITTED, attempt=1, job_name="bm.s1.0.reco.1", job_id="948_0",
                         array_name="bm.s1.reco.a0x", array_index=0)]
    unknown = scan(store.read(), Listing(rows), True, lambda: 5.0, str(tmp_path / "arrays"))
    assert [(u.name, u.job_id, u.array_name, u.array_index) for u in unknown] == [
        ("bm.s1.1.reco.1", "948_1", "bm.s1.reco.a0x", 1), ("bm.s1.2.reco.1", "948_2", "bm.s1.reco.a0x", 2)]
    with store.transaction("test") as st:
        keep_unknown(st, unknown)
    res = actions.adopt(store, ["bm.s1.2.reco.1"])
    assert res.adopted == ["bm.s1.2.reco.1"]
    t = store.read().index()["2.reco"]
    assert (t.state, t.job_id, t.array_name, t.array_index) == (S.SUBMITTED, "948_2", "bm.s1.reco.a0x", 2)


# ---- the submission bucket counts sbatch commands: one per array, not one per task ----------
def staged(run, job="reco", resources=None):
    from batchman.core.model import Segment
    return Task(run=run, job=job, state=S.STAGED, since=1.0, segments=[Segment(f"/d/{run}", True)],
                resources=resources or {})


def submitted_runs(tasks, array_size, tokens, cap=0):
    from batchman.backends.base import StagingView
    from batchman.core.decide import Observations, Policy
    from batchman.core.plan import plan_budget
    o = Observations(now=10.0, me="h:1", live_daemons=frozenset({"h:1"}),
                     staging=StagingView(present={s.path for t in tasks for s in t.segments}))
    ds, budget = plan_budget(tasks, o, Policy(array_size=array_size, max_submit_per_iteration=cap), None,
                             {"submit": tokens})
    return [t.key for t, d in ds if D.SUBMIT in d.actions], budget.sbatches


@pytest.mark.parametrize("why,array_size,tokens,cap,want,sbatches", [
    ("arrays off: a token per task", 1, 2, 0, ["1.reco", "2.reco"], 2),
    ("one token: one array of all five", 1001, 1, 0, ["1.reco", "2.reco", "3.reco", "4.reco", "5.reco"], 1),
    ("arrays of two: two tokens, four tasks", 2, 2, 0, ["1.reco", "2.reco", "3.reco", "4.reco"], 2),
    ("the per-iteration cap still counts tasks", 1001, 5, 3, ["1.reco", "2.reco", "3.reco"], 1),
    ("no token: nothing", 1001, 0, 0, [], 0),
])
def test_submission_tokens_count_arrays(why, array_size, tokens, cap, want, sbatches):
    assert submitted_runs([staged(r) for r in range(1, 6)], array_size, tokens, cap) == (want, sbatches)


def test_other_jobs_and_changed_resources_need_their_own_sbatch():
    tasks = [staged(1), staged(2, resources={"memory_mb": 4000}), staged(3, "hist"), staged(4), staged(5, "hist")]
    # in rank order: reco's array, then run 2 alone; hist would need a third
    assert submitted_runs(tasks, 1001, 2, 0) == (["1.reco", "2.reco", "4.reco"], 2)
    assert submitted_runs(tasks, 1001, 3, 0) == (["1.reco", "2.reco", "3.hist", "4.reco", "5.hist"], 3)
