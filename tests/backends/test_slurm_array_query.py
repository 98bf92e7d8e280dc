"""SlurmBackend with job arrays, on text captured from the real 22.05 cluster: one squeue (and at
most one sacct) whatever the number of elements; elements found by id, or -- after a crash
between sbatch and its record -- through their array's name and index; never "absent" while
their array exists."""

import pytest

from batchman.backends.base import ABSENT, FINISHED, QUEUED, RUNNING, JobSpec
from batchman.backends.batch.slurm import SlurmBackend

from test_slurm_parse import SCONTROL_CONFIG, ScriptedRunner

NAME = "bm.s1.reco.a0abc"
SQUEUE = f"""\
948_[2-5%2]|PENDING|JobArrayTaskLimit|0||{NAME}
948_0|RUNNING|None|0|vm|{NAME}
948_1|COMPLETED|None|0|vm|{NAME}
951|RUNNING|None|0|vm|bm.s1.7.reco.1
"""
SACCT = f"""\
948_0|COMPLETED|0:0|None|vm|{NAME}
948_1|COMPLETED|0:0|None|vm|{NAME}
948_3|FAILED|3:0|None|vm|{NAME}
"""
ELEMS = {f"bm.s1.{r}.reco.1": (NAME, i) for i, r in enumerate(range(10, 16))}


def backend(squeue=SQUEUE, sacct="", sacct_rc=0, config=SCONTROL_CONFIG + "MaxArraySize            = 40\n"):
    r = ScriptedRunner({"squeue": (0, squeue, ""), "sacct": (sacct_rc, sacct, ""),
                        "scontrol": (0, config, ""), "sbatch": (0, "960\n", "")})
    return SlurmBackend(r, accounting="slurmdbd", user="root"), r


def test_elements_by_id_one_squeue_and_pending_range_is_queued():
    b, r = backend()
    asked = {n: f"948_{i}" for n, (_, i) in ELEMS.items() if i < 3}
    got = b.query({**asked, "bm.s1.7.reco.1": "951"}, arrays=ELEMS)
    assert [c.argv[0] for c in r.records] == ["squeue"]
    assert "--Format=JobArrayID:0|" in " ".join(r.records[0].argv)
    assert {n: (i.job_id, i.state) for n, i in got.items()} == {
        "bm.s1.10.reco.1": ("948_0", RUNNING), "bm.s1.11.reco.1": ("948_1", FINISHED),
        "bm.s1.12.reco.1": ("948_2", QUEUED), "bm.s1.7.reco.1": ("951", RUNNING)}


def test_crash_after_sbatch_elements_are_found_by_the_arrays_name_and_index():
    b, r = backend()
    got = b.query({n: "" for n in ELEMS}, arrays=ELEMS)
    assert [c.argv[0] for c in r.records] == ["squeue"]
    assert [got[n].job_id for n in ELEMS] == [f"948_{i}" for i in range(6)]
    assert all(got[n].name == n for n in ELEMS)


def test_element_gone_from_squeue_comes_from_sacct_by_its_id():
    b, r = backend(squeue=SQUEUE.replace("948_[2-5%2]", "948_[2,4-5%2]"), sacct=SACCT)
    got = b.query({"bm.s1.13.reco.1": "948_3"}, arrays=ELEMS)
    assert [c.argv[0] for c in r.records] == ["squeue", "sacct"] and "--jobs=948,948_3" in r.records[1].argv
    assert (got["bm.s1.13.reco.1"].state, got["bm.s1.13.reco.1"].exit_code) == (FINISHED, 3)


def test_array_known_only_to_sacct_is_found_by_name():
    b, r = backend(squeue="", sacct=SACCT)
    got = b.query({"bm.s1.13.reco.1": ""}, arrays=ELEMS)
    assert f"--name={NAME}" in r.records[1].argv
    assert (got["bm.s1.13.reco.1"].job_id, got["bm.s1.13.reco.1"].exit_code) == ("948_3", 3)


def test_element_of_an_existing_array_not_listed_is_never_absent():
    b, _ = backend(squeue=SQUEUE.replace("948_[2-5%2]", "948_[2,4-5%2]"), sacct=SACCT.replace("948_3|", "948_9|"))
    got = b.query({"bm.s1.13.reco.1": ""}, arrays=ELEMS)["bm.s1.13.reco.1"]
    assert (got.job_id, got.state) == ("948_3", QUEUED) and "not listed yet" in got.reason


def test_array_nowhere_is_absent_so_it_is_submitted():
    b, _ = backend(squeue="", sacct="")
    got = b.query({"bm.s1.10.reco.1": ""}, arrays=ELEMS)["bm.s1.10.reco.1"]
    assert (got.job_id, got.state) == ("", ABSENT)


def test_an_element_id_reused_by_another_array_is_not_ours():
    other = SQUEUE.replace(NAME, "bm.s1.reco.a0zzz")
    b, _ = backend(squeue=other, sacct="")
    assert b.query({"bm.s1.10.reco.1": "948_0"}, arrays=ELEMS)["bm.s1.10.reco.1"].state == ABSENT


def test_submit_array_is_one_sbatch_and_max_array_size_asked_once():
    b, r = backend()
    spec = JobSpec(name=NAME, script="/w/dispatch.sh", workdir="/w", stdout="/w/%a.out", stderr="/w/%a.err",
                   attempt_dir="/w")
    assert b.submit_array(spec, 6) == "960" and b.element_id("960", 5) == "960_5"
    assert b.max_array_size() == b.max_array_size() == 40
    assert [c.argv[0] for c in r.records] == ["sbatch", "scontrol"]
    assert "--array=0-5" in r.records[0].argv and r.records[0].argv[0] == "sbatch"   # no env on the line


@pytest.mark.parametrize("size", [0, -1])
def test_submit_array_refuses_an_empty_array(size):
    b, r = backend()
    with pytest.raises(ValueError):
        b.submit_array(JobSpec(name=NAME, script="/d", workdir="/w", stdout="o", stderr="e", attempt_dir="/w"), size)
    assert r.records == []


def test_max_array_size_falls_back_to_slurms_default_when_not_said():
    b, _ = backend(config=SCONTROL_CONFIG)
    assert b.max_array_size() == 1001


def test_a_range_cancelled_before_it_started_is_finished_not_queued():
    # squeue -t all after scancel of an array whose elements were all pending (captured on this cluster)
    b, _ = backend(squeue=f"1494_[0-2]|CANCELLED|None|0||{NAME}\n")
    got = b.query({n: f"1494_{i}" for n, (_, i) in ELEMS.items() if i < 3}, arrays=ELEMS)
    assert {(i.job_id, i.state, i.failure) for i in got.values()} == {(f"1494_{i}", FINISHED, "cancelled") for i in range(3)}


def test_elements_cancelled_before_they_started_come_from_the_arrays_range_record_in_sacct():
    # sacct (slurmdbd) --jobs=1494: elements that never started are one range record
    b, r = backend(squeue="", sacct=f"1494_[0-2]|CANCELLED by 0|0:0|None|None assigned|{NAME}\n")
    got = b.query({n: f"1494_{i}" for n, (_, i) in ELEMS.items() if i < 3}, arrays=ELEMS)
    assert "--jobs=1494,1494_0,1494_1,1494_2" in r.records[1].argv
    assert {(i.job_id, i.state, i.failure) for i in got.values()} == {(f"1494_{i}", FINISHED, "cancelled") for i in range(3)}


def test_no_arrays_with_jobcomp_accounting_sacct_c_cannot_tell_elements_apart():
    r = ScriptedRunner({"scontrol": (0, SCONTROL_CONFIG + "MaxArraySize            = 40\n", "")})
    assert SlurmBackend(r, accounting="jobcomp").max_array_size() == 1
    assert r.records == []                                    # known without asking
