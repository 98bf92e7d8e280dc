"""Grid Engine job arrays, pure parts and the backend on captured text: output of the real
one-node cluster (contrib/gridengine/start.sh, Son of Grid Engine 8.1.9, as root; 2026-12-02)
for ``qsub -t 1-5 -tc 2`` of a script that exits 3 in task 2 (job 615), after ``qdel 615.4``
and ``qdel 615 -t 5``, and a ``qsub -t 1-12 -tc 1`` (job 616). Literals byte for byte.
"""

from __future__ import annotations

import subprocess

import pytest

from batchman.backends.base import ABSENT, FINISHED, QUEUED, RUNNING, JobSpec, Rejected
from batchman.backends.batch import gridengine_array as GA
from batchman.backends.batch.gridengine import GridEngineBackend, parse_qacct, parse_qstat_xml

# qsub -terse -N bm.tcap.arr ... -t 1-5 -tc 2 -V ./job.sh
QSUB_ARRAY = "615.1-5:1\n"

# qstat -xml -u root 4 s later: tasks 1 and 3 running, task 2 ended (exit 3), 4 and 5 pending
QSTAT_RUNNING_AND_PENDING = """\
<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>615</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>bm.tcap.arr</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-12-02T14:45:34</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
      <tasks>1</tasks>
    </job_list>
    <job_list state="running">
      <JB_job_number>615</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>bm.tcap.arr</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-12-02T14:45:35</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
      <tasks>3</tasks>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>615</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>bm.tcap.arr</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-12-02T14:45:34</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
      <tasks>4,5</tasks>
    </job_list>
  </job_info>
</job_info>
"""

# qstat -xml -u root: a second array job 616, all 12 tasks pending (one range row)
QSTAT_RANGE = """\
<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>615</JB_job_number>
      <JAT_prio>0.75000</JAT_prio>
      <JB_name>bm.tcap.arr</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-12-02T14:45:34</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
      <tasks>1</tasks>
    </job_list>
    <job_list state="running">
      <JB_job_number>615</JB_job_number>
      <JAT_prio>0.75000</JAT_prio>
      <JB_name>bm.tcap.arr</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-12-02T14:45:35</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
      <tasks>3</tasks>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>616</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>bm.tcap.arr2</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-12-02T14:45:46</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
      <tasks>1-12:1</tasks>
    </job_list>
  </job_info>
</job_info>
"""

# qacct -o root -j bm.tcap.arr once 615 had ended (4 and 5 deleted while pending: no record)
QACCT_ARRAY = """\
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.tcap.arr         
jobnumber    615                 
taskid       2                   
account      sge                 
priority     0                   
qsub_time    Wed Dec  2 14:45:34 2026
start_time   Wed Dec  2 14:45:34 2026
end_time     Wed Dec  2 14:45:34 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  3                   
ru_wallclock 0s
ru_utime     0.004s
ru_stime     0.004s
ru_maxrss    4.566KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    307                 
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   24                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     1                   
ru_nivcsw    3                   
cpu          0.008s
mem          0.000Bs
io           0.000B
iow          0.000s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     NONE
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.tcap.arr         
jobnumber    615                 
taskid       1                   
account      sge                 
priority     0                   
qsub_time    Wed Dec  2 14:45:34 2026
start_time   Wed Dec  2 14:45:34 2026
end_time     Wed Dec  2 14:45:54 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 20s
ru_utime     0.002s
ru_stime     0.008s
ru_maxrss    4.395KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    440                 
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   16                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     4                   
ru_nivcsw    9                   
cpu          0.009s
mem          0.000Bs
io           0.000B
iow          0.000s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     NONE
==============================================================
qname        all.q               
hostname     vm                  
group        root                
owner        root                
project      NONE                
department   defaultdepartment   
jobname      bm.tcap.arr         
jobnumber    615                 
taskid       3                   
account      sge                 
priority     0                   
qsub_time    Wed Dec  2 14:45:34 2026
start_time   Wed Dec  2 14:45:35 2026
end_time     Wed Dec  2 14:45:55 2026
granted_pe   NONE                
slots        1                   
failed       0    
exit_status  0                   
ru_wallclock 20s
ru_utime     0.001s
ru_stime     0.007s
ru_maxrss    4.492KB
ru_ixrss     0.000B
ru_ismrss    0.000B
ru_idrss     0.000B
ru_isrss     0.000B
ru_minflt    437                 
ru_majflt    0                   
ru_nswap     0                   
ru_inblock   0                   
ru_oublock   16                  
ru_msgsnd    0                   
ru_msgrcv    0                   
ru_nsignals  0                   
ru_nvcsw     4                   
ru_nivcsw    0                   
cpu          0.008s
mem          0.000Bs
io           26.214KB
iow          0.000s
maxvmem      4.789MB
arid         undefined
ar_sub_time  undefined
category     NONE
"""

# qstat -xml -u root with no job of ours
QSTAT_EMPTY = """\
<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
  </queue_info>
  <job_info>
  </job_info>
</job_info>
"""

QDEL_TASK = "root has deleted job-array task 615.4\n"
QDEL_NO_TASK = 'job "615" task "99" does not exist\n'
SCONF = """\
max_aj_instances             2000
max_aj_tasks                 75000
max_u_jobs                   0
"""


class ScriptedRunner:
    """Answers each command with captured output, keyed by the program (qstat -j apart)."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]):
        self.answers = answers
        self.records: list[list[str]] = []

    def __call__(self, argv, **kw):
        self.records.append(argv)
        key = "qstat -j" if argv[:2] == ["qstat", "-j"] else "qsub" if "qsub" in argv else argv[0]
        rc, out, err = self.answers[key]
        return subprocess.CompletedProcess(argv, rc, out, err)


ARRAYS = {f"bm.s1.{i}.reco.1": ("bm.tcap.arr", i) for i in range(5)}


def spec(**kw) -> JobSpec:
    fields = dict(name="bm.tcap.arr", script="/a/dispatch.sh", workdir="/w", stdout="/a/$TASK_ID.out",
                  stderr="/a/$TASK_ID.err", attempt_dir="/a")
    return JobSpec(**{**fields, **kw})


# ---- pure parts -----------------------------------------------------------------------------
def test_qsub_array_argv_asks_tasks_1_to_n_before_the_script():
    argv = GA.build_qsub_array_argv(spec(memory_mb=100, extra_args=["-p", "-1"]), 5)
    assert argv[argv.index("-t"):] == ["-t", "1-5", "-V", "-p", "-1", "/a/dispatch.sh"]
    assert argv[argv.index("-o"):argv.index("-o") + 4] == ["-o", "/a/$TASK_ID.out", "-e", "/a/$TASK_ID.err"]
    with pytest.raises(ValueError):
        GA.build_qsub_array_argv(spec(), 0)


def test_element_ids_are_task_numbers_one_above_batchmans_index():
    assert GA.element_id("615", 0) == "615.1" and GA.element_id("615", 3) == "615.4"
    assert [GA.element_index(i) for i in ("615.1", "615.4", " 615.12 ", "615", "615.0", "615.1-5:1", "615_3")] == [
        0, 3, 11, None, None, None, None]
    assert GA.split_id("615.4") == ("615", 3) and GA.split_id("615") == ("615", None)


@pytest.mark.parametrize("text, tasks", [("3", [3]), ("4,5", [4, 5]), ("1-12:1", list(range(1, 13))),
                                         ("2-10:4,15", [2, 6, 10, 15])])
def test_parse_tasks(text, tasks):
    assert GA.parse_tasks(text) == tasks


@pytest.mark.parametrize("text", ["", "a", "5-3:1", "1-4:0", "1-"])
def test_parse_tasks_refuses_garbage(text):
    with pytest.raises(ValueError):
        GA.parse_tasks(text)


def test_expand_queue_gives_each_task_a_row_of_its_own():
    rows = GA.expand_queue(parse_qstat_xml(QSTAT_RUNNING_AND_PENDING))
    assert [(r.job_id, r.state, r.node) for r in rows] == [
        ("615.1", "r", "vm"), ("615.3", "r", "vm"), ("615.4", "qw", ""), ("615.5", "qw", "")]
    rows = GA.expand_queue(parse_qstat_xml(QSTAT_RANGE))
    assert [r.job_id for r in rows if r.name == "bm.tcap.arr2"] == [f"616.{t}" for t in range(1, 13)]


def test_expand_queue_keeps_plain_jobs_and_drops_unreadable_task_ids():
    plain, bad = parse_qstat_xml(QSTAT_RUNNING_AND_PENDING)[:2]
    plain.tasks, bad.tasks = "", "1-x"
    assert [r.job_id for r in GA.expand_queue([plain, bad])] == ["615"]


def test_pick_element_takes_the_tasks_record_of_that_array():
    recs = parse_qacct(QACCT_ARRAY)
    assert [(r.job_id, r.task_id, r.exit_status) for r in recs] == [("615", "2", 3), ("615", "1", 0), ("615", "3", 0)]
    assert GA.pick_element(recs, "bm.tcap.arr", "615", 1).exit_status == 3
    assert GA.pick_element(recs, "bm.tcap.arr", "", 0).task_id == "1"
    assert GA.pick_element(recs, "bm.tcap.arr", "614", 1) is None        # an id reused: not this array
    assert GA.pick_element(recs, "bm.other", "615", 1) is None
    assert GA.pick_element(recs, "bm.tcap.arr", "615", 3) is None        # deleted while pending


@pytest.mark.parametrize("text, size", [(SCONF, 75000), (SCONF.replace("75000", "500"), 500),
                                        (SCONF.replace("75000", "0"), GA.UNLIMITED_CAP),
                                        (SCONF.replace("75000", "900000"), GA.UNLIMITED_CAP), ("", GA.UNLIMITED_CAP)])
def test_max_array_size_from_max_aj_tasks(text, size):
    assert GA.max_array_size(text) == size


# ---- the backend on captured text -----------------------------------------------------------
def test_submit_array_is_one_qsub_and_max_aj_tasks_is_asked_once():
    runner = ScriptedRunner({"qsub": (0, QSUB_ARRAY, ""), "qconf": (0, SCONF, "")})
    b = GridEngineBackend(runner, user="root")
    assert b.submit_array(spec(), 5) == "615"
    assert b.max_array_size() == b.max_array_size() == 75000
    assert [r[0] for r in runner.records] == ["qsub", "qconf"]
    assert b.element_id("615", 4) == "615.5" and b.element_index("615.5") == 4


def test_submit_array_refused():
    runner = ScriptedRunner({"qsub": (1, "", 'Unable to run job: unknown resource "foo".\nExiting.\n')})
    with pytest.raises(Rejected, match="unknown resource"):
        GridEngineBackend(runner, user="root").submit_array(spec(), 2)


def test_query_elements_from_queue_and_accounting_in_two_commands():
    runner = ScriptedRunner({"qstat": (0, QSTAT_RUNNING_AND_PENDING, ""), "qacct": (0, QACCT_ARRAY, "")})
    ids = {n: GA.element_id("615", i) for n, (_, i) in ARRAYS.items()}
    got = GridEngineBackend(runner, user="root").query(ids, arrays=ARRAYS)
    assert [r[0] for r in runner.records] == ["qstat", "qacct"]
    assert runner.records[1][-1] == "bm.tcap.arr"
    assert {n: (i.state, i.job_id, i.exit_code) for n, i in got.items()} == {
        "bm.s1.0.reco.1": (RUNNING, "615.1", None), "bm.s1.1.reco.1": (FINISHED, "615.2", 3),
        "bm.s1.2.reco.1": (RUNNING, "615.3", None), "bm.s1.3.reco.1": (QUEUED, "615.4", None),
        "bm.s1.4.reco.1": (QUEUED, "615.5", None)}
    assert got["bm.s1.1.reco.1"].failure == "exit-nonzero"


def test_query_element_without_id_is_found_through_its_arrays_name():
    runner = ScriptedRunner({"qstat": (0, QSTAT_RUNNING_AND_PENDING, "")})
    got = GridEngineBackend(runner, user="root").query({"bm.s1.4.reco.1": ""}, arrays=ARRAYS)
    assert (got["bm.s1.4.reco.1"].state, got["bm.s1.4.reco.1"].job_id) == (QUEUED, "615.5")


def test_query_element_of_another_array_with_a_reused_id_is_not_taken():
    runner = ScriptedRunner({"qstat": (0, QSTAT_RUNNING_AND_PENDING, ""),
                             "qacct": (1, "", "error: job name bm.other not found\n")})
    b = GridEngineBackend(runner, user="root")
    b.accounting_lag = 0
    got = b.query({"bm.s1.0.reco.1": "615.1"}, arrays={"bm.s1.0.reco.1": ("bm.other", 0)})
    assert got["bm.s1.0.reco.1"].state == ABSENT


def test_element_that_left_the_queue_runs_until_accounting_has_it():
    runner = ScriptedRunner({"qstat": (0, QSTAT_RUNNING_AND_PENDING, ""),
                             "qacct": (1, "", "error: job name bm.tcap.arr not found\n")})
    b = GridEngineBackend(runner, user="root")
    got = b.query({"bm.s1.1.reco.1": "615.2"}, arrays=ARRAYS)      # never seen itself: its array was
    assert (got["bm.s1.1.reco.1"].state, got["bm.s1.1.reco.1"].native_state) == (RUNNING, "left queue")
    runner.answers["qstat"] = (0, QSTAT_EMPTY, "")       # the array left the queue too
    b.clock = lambda: 1e12                               # long after: no record is no job
    assert b.query({"bm.s1.1.reco.1": "615.2"}, arrays=ARRAYS)["bm.s1.1.reco.1"].state == ABSENT


def test_element_deleted_while_pending_is_cancelled_without_waiting_for_accounting():
    runner = ScriptedRunner({"qstat": (0, QSTAT_RUNNING_AND_PENDING, ""), "qdel": (0, QDEL_TASK, ""),
                             "qacct": (0, QACCT_ARRAY, "")})
    b = GridEngineBackend(runner, user="root")
    b.query({"bm.s1.3.reco.1": "615.4"}, arrays=ARRAYS)
    b.cancel(["615.4"])
    assert runner.records[-1] == ["qdel", "615.4"]
    runner.answers["qstat"] = (0, QSTAT_EMPTY, "")           # 615 is gone from the queue
    got = b.query({"bm.s1.3.reco.1": "615.4"}, arrays=ARRAYS)["bm.s1.3.reco.1"]
    assert (got.state, got.failure, got.job_id) == (ABSENT, "cancelled", "615.4")


def test_cancel_of_a_task_that_is_gone_is_no_error():
    runner = ScriptedRunner({"qdel": (1, "", QDEL_NO_TASK)})
    GridEngineBackend(runner, user="root").cancel(["615.99"])
    assert runner.records == [["qdel", "615.99"]]


def test_list_ours_lists_each_element_under_the_arrays_name():
    runner = ScriptedRunner({"qstat": (0, QSTAT_RANGE, "")})
    rows = GridEngineBackend(runner, user="root").list_ours("bm.tcap.arr2")
    assert [(r.name, r.job_id, r.state) for r in rows][:2] == [("bm.tcap.arr2", "616.1", QUEUED),
                                                               ("bm.tcap.arr2", "616.2", QUEUED)]
    assert len(rows) == 12
