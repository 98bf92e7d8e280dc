"""LSF job arrays (issue 14): the pure parts, the backend against the LSF test double
(tests/doubles/lsf, which follows IBM's documented array behaviour), and the daemon on it."""

from __future__ import annotations

import dataclasses

import pytest

from batchman.backends.base import ABSENT, FINISHED, QUEUED, RUNNING, JobInfo, JobSpec, Rejected
from batchman.backends.batch import lsf_array as LA
from batchman.backends.batch.lsf_text import parse_bhist_long, parse_bjobs_json, parse_bjobs_plain
from batchman.daemon import arrayjob

from clusterhelp import poll

# what the double prints, as LSF does by default (LSB_BJOBS_DISPLAY_ENH=N): JOBID is the array's
BJOBS_JSON = """{"COMMAND": "bjobs", "JOBS": 3, "RECORDS": [
 {"JOBID": "101", "JOB_NAME": "bm.s1.reco.a0x[1]", "STAT": "DONE", "EXIT_CODE": "", "EXIT_REASON": "",
  "PEND_REASON": "", "EXEC_HOST": "vm"},
 {"JOBID": "101", "JOB_NAME": "bm.s1.reco.a0x[2]", "STAT": "EXIT", "EXIT_CODE": "3", "EXIT_REASON": "",
  "PEND_REASON": "", "EXEC_HOST": "vm"},
 {"JOBID": "101", "JOB_NAME": "bm.s1.reco.a0x[3]", "STAT": "PEND", "EXIT_CODE": "", "EXIT_REASON": "",
  "PEND_REASON": "Job slot limit reached", "EXEC_HOST": ""}]}"""


def spec(**kw) -> JobSpec:
    fields = dict(name="bm.s1.reco.a0x", script="/a/dispatch.sh", workdir="/w", stdout="/a/%I.out",
                  stderr="/a/%I.err", attempt_dir="/a", memory_mb=100)
    return JobSpec(**{**fields, **kw})


# ---- pure ------------------------------------------------------------------------------------
def test_bsub_array_argv_names_the_array_with_its_indexes():
    argv = LA.build_bsub_array_argv(spec(env={"X": "1"}), 4)
    assert argv[argv.index("-J") + 1] == "bm.s1.reco.a0x[1-4]"
    assert argv[argv.index("-o") + 1] == "/a/%I.out" and argv[argv.index("-e") + 1] == "/a/%I.err"
    assert "-env" not in argv and argv[-2:] == ["/bin/bash", "/a/dispatch.sh"]
    with pytest.raises(ValueError):
        LA.build_bsub_array_argv(spec(), 0)
    with pytest.raises(ValueError):
        LA.build_bsub_array_argv(spec(), LA.MAX_JOB_ARRAY_SIZE + 1)


def test_element_ids_are_lsf_indexes_one_above_batchmans():
    assert LA.element_id("101", 0) == "101[1]"
    assert [LA.element_index(i) for i in ("101[1]", "101[12]", "101", "101[0]", "101_1", "101.1")] == [
        0, 11, None, None, None, None]


@pytest.mark.parametrize("rows", [parse_bjobs_json(BJOBS_JSON),
                                  parse_bjobs_plain("101^bm.s1.reco.a0x[1]^DONE^-^-^-^vm\n"
                                                    "101[2]^bm.s1.reco.a0x[2]^EXIT^3^-^-^vm\n")],
                         ids=["json", "plain-display-enh"])
def test_rows_of_elements_get_the_elements_id_under_the_arrays_name(rows):
    els = [LA.as_element(r) for r in rows]
    assert [(e.name, e.job_id) for e in els][:2] == [("bm.s1.reco.a0x", "101[1]"), ("bm.s1.reco.a0x", "101[2]")]
    assert (els[1].state, els[1].exit_code) == (FINISHED, 3)
    plain = JobInfo(name="bm.s1.1.reco.1", job_id="99", state=RUNNING)
    assert LA.as_element(plain) is plain


def test_resolve_takes_the_newest_array_of_the_name():
    rows = [LA.as_element(r) for r in parse_bjobs_json(BJOBS_JSON)]
    rows.append(dataclasses.replace(rows[0], job_id="140[1]"))
    assert LA.resolve(("bm.s1.reco.a0x", 2), rows) == "140[3]"
    assert LA.resolve(("bm.s1.reco.other", 2), rows) == ""


def test_bhist_of_an_element():
    text = """
Job <101[2]>, Job Name <bm.s1.reco.a0x[2]>, User <root>, Project <default>, Command </bin/
                     bash /a/dispatch.sh>
Wed Dec  2 14:57:16: Submitted from host <vm>, to Queue <normal>, CWD </w>;
Wed Dec  2 14:57:18: Dispatched 1 Task(s) on Host(s) <vm>, Allocated 1 Slot(s) on Host(s) <vm>;
Wed Dec  2 14:57:19: Exited with exit code 3. The CPU time used is 0.0 seconds;
Wed Dec  2 14:57:19: Completed <exit>;
"""
    h = LA.as_element(parse_bhist_long(text)["101[2]"])
    assert (h.name, h.job_id, h.state, h.exit_code) == ("bm.s1.reco.a0x", "101[2]", FINISHED, 3)


# ---- the backend on the double ---------------------------------------------------------------
def array_of(tmp_path, n: int, body: str, name: str = "bm.s1.reco.a0x") -> tuple[JobSpec, dict[int, str]]:
    """An array's files as the daemon writes them: n elements, each its own job.sh and logs."""
    from batchman.backends.batch.lsf import LsfBackend
    elements = {}
    for i in range(n):
        d = tmp_path / f"att{i}"
        d.mkdir()
        (d / "job.sh").write_text(f"#!/bin/bash\nI={i}\n{body}\n")
        (d / "job.sh").chmod(0o755)
        elements[i] = JobSpec(name=f"bm.s1.{i}.reco.1", script=str(d / "job.sh"), workdir=str(tmp_path),
                              stdout=str(d / "out"), stderr=str(d / "err"), attempt_dir=str(d))
    aspec = arrayjob.prepare(str(tmp_path / "arrays"), name, elements, LsfBackend.array_form)
    return aspec, {i: e.name for i, e in elements.items()}


def all_finished(backend, ids, arrays, timeout=30):
    last = {}

    def done():
        last.update(backend.query(ids, arrays=arrays))
        return all(x.state == FINISHED for x in last.values())
    poll("every element finished", done, timeout, 0.15, show=lambda: last)
    return last


def test_one_bsub_each_element_its_own_script_index_and_logs(lsf, backend, tmp_path):
    aspec, names = array_of(tmp_path, 3, 'echo "out $I idx=$LSB_JOBINDEX"; echo "err $I" >&2; exit $I')
    aid = backend.submit_array(aspec, 3)
    assert aid.isdigit() and len(lsf.calls("bsub")) == 1
    ids = {n: backend.element_id(aid, i) for i, n in names.items()}
    arrays = {n: (aspec.name, i) for i, n in names.items()}
    r = all_finished(backend, ids, arrays)
    assert {n: (x.job_id, x.exit_code) for n, x in r.items()} == {names[i]: (f"{aid}[{i + 1}]", i) for i in range(3)}
    # asked as plain jobs, elements are not taken for them: bjobs lists them under the array's name
    assert {x.state for x in backend.query(ids).values()} == {ABSENT}
    for i in range(3):
        assert (tmp_path / f"att{i}" / "out").read_text().startswith(f"out {i} idx={i + 1}\n")
        assert (tmp_path / f"att{i}" / "err").read_text() == f"err {i}\n"


def test_kill_of_one_element_leaves_the_others(lsf, backend, tmp_path):
    lsf.setenv("LSF_DOUBLE_SLOTS", 1)
    aspec, names = array_of(tmp_path, 3, "sleep 1")
    aid = backend.submit_array(aspec, 3)
    ids = {n: backend.element_id(aid, i) for i, n in names.items()}
    arrays = {n: (aspec.name, i) for i, n in names.items()}
    backend.cancel([ids[names[2]]])
    assert lsf.calls("bkill")[-1]["argv"] == [f"{aid}[3]"]
    r = all_finished(backend, ids, arrays)
    assert [r[names[i]].failure for i in range(3)] == ["", "", "cancelled"]
    backend.cancel([ids[names[0]]])                     # already finished: no error


def test_element_without_id_is_found_through_its_arrays_name(lsf, backend, tmp_path):
    lsf.setenv("LSF_DOUBLE_SLOTS", 1)
    aspec, names = array_of(tmp_path, 2, "sleep 5")
    aid = backend.submit_array(aspec, 2)
    r = backend.query({names[1]: ""}, arrays={names[1]: (aspec.name, 1)})[names[1]]
    assert (r.job_id, r.state) == (f"{aid}[2]", QUEUED)
    other = backend.query({"bm.s1.9.reco.1": ""}, arrays={"bm.s1.9.reco.1": ("bm.s1.reco.a0zz", 0)})
    assert other["bm.s1.9.reco.1"].state == ABSENT


def test_element_forgotten_by_bjobs_is_read_from_bhist(lsf, backend, tmp_path):
    aspec, names = array_of(tmp_path, 2, "exit $((I + 4))")
    aid = backend.submit_array(aspec, 2)
    lsf.wait_all_finished()
    lsf.setenv("LSF_DOUBLE_CLEAN_PERIOD", 0)
    ids = {n: backend.element_id(aid, i) for i, n in names.items()}
    r = backend.query(ids, arrays={n: (aspec.name, i) for i, n in names.items()})
    assert lsf.calls("bhist")[-1]["argv"][-2:] == [f"{aid}[1]", f"{aid}[2]"]
    assert [(r[names[i]].state, r[names[i]].exit_code) for i in range(2)] == [(FINISHED, 4), (FINISHED, 5)]
    # an element of another array that reused the id is not ours
    r = backend.query({names[0]: ids[names[0]]}, arrays={names[0]: ("bm.s1.reco.a0zz", 0)})
    assert r[names[0]].state == ABSENT


def test_list_ours_lists_each_element_and_the_members_file_names_its_task(lsf, backend, tmp_path):
    lsf.setenv("LSF_DOUBLE_SLOTS", 1)
    aspec, names = array_of(tmp_path, 3, "sleep 5")
    aid = backend.submit_array(aspec, 3)
    rows = backend.list_ours("bm.s1.")
    assert sorted(r.job_id for r in rows) == [f"{aid}[{i}]" for i in (1, 2, 3)]
    members = arrayjob.all_members(str(tmp_path / "arrays"))
    tasks = arrayjob.element_rows(rows, members, backend.element_index)
    assert sorted((t.name, t.job_id) for t in tasks) == [(names[i], f"{aid}[{i + 1}]") for i in range(3)]


def test_a_refused_array_is_rejected(lsf, backend, tmp_path):
    aspec, _ = array_of(tmp_path, 2, "true")
    with pytest.raises(Rejected, match="No such queue"):
        backend.submit_array(dataclasses.replace(aspec, queue="nosuch"), 2)
