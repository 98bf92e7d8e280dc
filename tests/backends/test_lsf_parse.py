"""Table-driven tests of the LSF backend's pure functions.

Literal output comes from these documents (quoted where they print it):
  [IBM-MSG]   IBM Spectrum LSF 10.1.0, "Example messages"
              https://www.ibm.com/docs/en/spectrum-lsf/10.1.0?topic=messaging-example-messages
  [IBM-UF]    IBM Spectrum LSF 10.1.0, bjobs -UF
              https://www.ibm.com/support/knowledgecenter/SSWRJV_10.1.0/lsf_command_ref/bjobs.__u__f.1.html
  [IBM-TERM]  IBM Spectrum LSF 10.1.0, "Termination reasons displayed by bacct, bhist, and bjobs"
              https://www.ibm.com/docs/SSWRJV_10.1.0/lsf_admin/termination_reasons_lsf.html
  [IBM-STATE] IBM Spectrum LSF 10.1.0, "About job states"
              https://www.ibm.com/docs/en/spectrum-lsf/10.1.0?topic=execution-about-job-states
  [IBM-JSON]  IBM Spectrum LSF 10.1.0, bjobs -json / -o (COMMAND, JOBS, RECORDS; values as strings)
              .../lsf_command_ref/bjobs.json.1.html, .../bjobs.o.1.html
  [LSF-UG]    Platform LSF Batch User's Guide, ch. 7 "Tracking Batch Jobs" (default bjobs output)
              https://tin6150.github.io/psg/3rdParty/lsf4_userGuide/07-tracking.html
  [RECORDED]  bjobs -json / bkill / job-report text recorded from real clusters by LSF users
              (as quoted in public test suites); shape per [IBM-JSON].
"""

from __future__ import annotations

import pytest

from batchman.backends.base import FINISHED, QUEUED, RUNNING, JobSpec
from batchman.backends.batch.lsf import (
    build_bjobs_argv,
    build_bsub_argv,
    build_bsub_input,
    is_outage,
    map_state,
    parse_bhist_long,
    parse_bjobs_json,
    parse_bjobs_plain,
    parse_bsub_output,
)



# --------------------------------------------------------------------------- bsub

@pytest.mark.parametrize("text, job_id", [
    ("Job <2812> is submitted to default queue <normal>.", "2812"),                 # [IBM-MSG]
    ("Job <2015> is submitted to default queue <normal>. \n"
     "Job will be scheduled after Fri Nov 19 13:00:00 2009 ", "2015"),             # [IBM-MSG]
    ("Job <123> is submitted to queue <normal>.", "123"),
    ("Cannot connect to LSF. Please wait ...\nJob <12345678> is submitted to queue <normal>.",
     "12345678"),                                                                   # [RECORDED]
])
def test_parse_bsub_output(text, job_id):
    assert parse_bsub_output(text) == job_id


@pytest.mark.parametrize("text", [
    "nosuchq: No such queue. Job not submitted.",                                   # [RECORDED]
    "Job <444> is subtted to default queue",
    "",
])
def test_parse_bsub_output_without_id(text):
    with pytest.raises(ValueError):
        parse_bsub_output(text)


def _spec(**kw):
    base = dict(name="bm.st.7.reco.1", script="/w/a b/job.sh", workdir="/w", stdout="/w/o", stderr="/w/e",
                attempt_dir="/w")
    return JobSpec(**{**base, **kw})


@pytest.mark.parametrize("kw, expect", [
    ({}, ["bsub", "-J", "bm.st.7.reco.1", "-o", "/w/o", "-e", "/w/e", "-cwd", "/w",
          "/bin/bash", "'/w/a b/job.sh'"]),
    ({"time_limit": 90, "memory_mb": 2000, "cpus": 4, "queue": "long", "account": "alcap",
      "extra_args": ["-R", "select[type==any]"]},
     ["bsub", "-J", "bm.st.7.reco.1", "-o", "/w/o", "-e", "/w/e", "-cwd", "/w", "-W", "2",
      "-M", "2000MB", "-n", "4", "-q", "long", "-P", "alcap", "-R", "select[type==any]",
      "/bin/bash", "'/w/a b/job.sh'"]),
    ({"time_limit": 7200}, ["-W", "2:00"]),
    ({"env": {"B": "2", "A": "x,y"}}, ["-env", "all, A='x,y', B=2", "/bin/bash"]),
])
def test_build_bsub_argv(kw, expect):
    argv = build_bsub_argv(_spec(**kw))
    if expect[0] == "bsub":
        assert argv == expect
    else:
        i = argv.index(expect[0])
        assert argv[i:i + len(expect)] == expect


def test_env_bsub_env_cannot_carry_goes_to_stdin():
    spec = _spec(env={"Q": "it's $HOME"})
    argv = build_bsub_argv(spec)
    assert "-env" not in argv and "/bin/bash" not in argv         # the job comes on stdin
    text = build_bsub_input(spec)
    assert "export Q='it'\"'\"'s $HOME'" in text and text.rstrip().endswith("exec /bin/bash '/w/a b/job.sh'")
    assert build_bsub_input(_spec(env={"A": "1"})) is None


@pytest.mark.parametrize("kw, expect", [
    ({}, ["bjobs", "-a", "-o", "jobid job_name stat exit_code exit_reason pend_reason exec_host", "-json"]),
    ({"user": "ana", "json_output": False},
     ["bjobs", "-a", "-u", "ana", "-noheader", "-o",
      "jobid job_name stat exit_code exit_reason pend_reason exec_host delimiter='^'"]),
    ({"name": "bm.st.*"}, ["bjobs", "-a", "-J", "bm.st.*", "-o",
                           "jobid job_name stat exit_code exit_reason pend_reason exec_host", "-json"]),
])
def test_build_bjobs_argv(kw, expect):
    assert build_bjobs_argv(**kw) == expect


# --------------------------------------------------------------------------- states

TERM = {  # [IBM-TERM] keyword: description (bjobs -o exit_reason prints "KEYWORD: description")
    "TERM_RUNLIMIT": "TERM_RUNLIMIT: job killed after reaching LSF run time limit",
    "TERM_MEMLIMIT": "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit",
    "TERM_OWNER": "TERM_OWNER: job killed by owner",
    "TERM_ADMIN": "TERM_ADMIN: job killed by root or LSF administrator",
    "TERM_CPULIMIT": "TERM_CPULIMIT: job killed after reaching LSF CPU usage limit",
    "TERM_CWD_NOTEXIST": "TERM_CWD_NOTEXIST: current working directory is not accessible",
    "TERM_PREEMPT": "TERM_PREEMPT: job killed after preemption",
    "TERM_EXTERNAL_SIGNAL": "TERM_EXTERNAL_SIGNAL: job killed by a signal external to LSF",
}


@pytest.mark.parametrize("stat, code, why, expect", [
    # [IBM-STATE] normal and suspended states
    ("PEND", "", "", (QUEUED, None, "")),
    ("PSUSP", "", "", (QUEUED, None, "")),
    ("WAIT", "", "", (QUEUED, None, "")),
    ("PROV", "", "", (QUEUED, None, "")),
    ("RUN", "", "", (RUNNING, None, "")),
    ("USUSP", "", "", (RUNNING, None, "")),
    ("SSUSP", "", "", (RUNNING, None, "")),
    ("DONE", "", "", (FINISHED, 0, "")),
    ("ZOMBI", "", "", (RUNNING, None, "")),
    ("UNKWN", "", "", (RUNNING, None, "")),
    ("EXIT", "3", "", (FINISHED, 3, "exit-nonzero")),
    ("EXIT", "140", TERM["TERM_RUNLIMIT"], (FINISHED, 140, "timeout")),
    ("EXIT", "", TERM["TERM_MEMLIMIT"], (FINISHED, None, "out-of-memory")),
    ("EXIT", "130", TERM["TERM_OWNER"], (FINISHED, 130, "cancelled")),
    ("EXIT", "", TERM["TERM_OWNER"], (FINISHED, None, "cancelled")),
    ("EXIT", "-", TERM["TERM_ADMIN"], (FINISHED, None, "cancelled")),
    ("EXIT", "152", TERM["TERM_CPULIMIT"], (FINISHED, 152, "timeout")),
    ("EXIT", "", TERM["TERM_CWD_NOTEXIST"], (FINISHED, None, "boot-fail")),
    ("EXIT", "", TERM["TERM_PREEMPT"], (FINISHED, None, "preempted")),
    ("EXIT", "9", TERM["TERM_EXTERNAL_SIGNAL"], (FINISHED, 9, "exit-nonzero")),
    ("FOO", "", "", (RUNNING, None, "")),     # unknown word: alive, not failed
])
def test_map_state(stat, code, why, expect):
    state, exit_code, failure, reason = map_state(stat, code, why, "")
    assert (state, exit_code, failure) == expect
    if stat in ("ZOMBI", "UNKWN", "PSUSP", "USUSP", "SSUSP", "FOO"):
        assert reason                          # people see why
    if why:
        assert reason == why


def test_map_state_keeps_pending_reason():
    _, _, _, reason = map_state("PEND", "", "", "New job is waiting for scheduling;")
    assert reason == "New job is waiting for scheduling"


# --------------------------------------------------------------------------- bjobs

def test_parse_bjobs_plain_default_format():                                        # [LSF-UG]
    text = """\
JOBID USER     STAT  QUEUE      FROM_HOST   EXEC_HOST   JOB_NAME   SUBMIT_TIME
3926  user1    RUN   priority   hostF        hostC      verilog    Oct 22 13:51
605   user1    SSUSP idle       hostQ        hostC      Test4      Oct 17 18:07
1480  user1    PEND  priority   hostD                   generator  Oct 19 18:13
7678  user1    PEND  priority   hostD                   verilog    Oct 28 13:08
7679  user1    PEND  priority   hostA                   coreHunter Oct 28 13:12
7680  user1    PEND  priority   hostB                   myjob      Oct 28 13:17
"""
    got = [(j.job_id, j.name, j.native_state, j.state, j.node) for j in parse_bjobs_plain(text)]
    assert got == [
        ("3926", "verilog", "RUN", RUNNING, "hostC"),
        ("605", "Test4", "SSUSP", RUNNING, "hostC"),
        ("1480", "generator", "PEND", QUEUED, ""),
        ("7678", "verilog", "PEND", QUEUED, ""),
        ("7679", "coreHunter", "PEND", QUEUED, ""),
        ("7680", "myjob", "PEND", QUEUED, ""),
    ]


@pytest.mark.parametrize("text, expect", [
    ("101^bm.a.1^DONE^-^-^-^hostB\n", [("101", "bm.a.1", FINISHED, 0, "")]),
    ("102^bm.b.1^EXIT^140^TERM_RUNLIMIT: job killed after reaching LSF run time limit^-^hostB\n"
     "103^bm.c.1^PEND^-^-^New job is waiting for scheduling;^-\n"
     "104^bm.d.1^EXIT^3^-^-^4*hostC:2*hostD\n",
     [("102", "bm.b.1", FINISHED, 140, "timeout"), ("103", "bm.c.1", QUEUED, None, ""),
      ("104", "bm.d.1", FINISHED, 3, "exit-nonzero")]),
    ("No unfinished job found\n", []),
    ("", []),
])
def test_parse_bjobs_plain_delimited(text, expect):
    got = [(j.job_id, j.name, j.state, j.exit_code, j.failure) for j in parse_bjobs_plain(text)]
    assert got == expect


def test_parse_bjobs_plain_node_from_exec_host():
    [j] = parse_bjobs_plain("104^bm.d.1^RUN^-^-^-^4*hostC:2*hostD")
    assert j.node == "hostC"


@pytest.mark.parametrize("text, expect", [
    ('{"COMMAND":"bjobs","JOBS":0,"RECORDS":[]}', []),                             # [RECORDED]
    ("""{
  "COMMAND":"bjobs",
  "JOBS":1,
  "RECORDS":[
    {
      "JOBID":"22005",
      "JOB_NAME":"ls -l",
      "STAT":"DONE",
      "EXIT_CODE":"",
      "EXEC_HOST":"tbi-cn019:tbi-cn019"
    }
  ]
}""", [("22005", "ls -l", FINISHED, 0, "", "tbi-cn019")]),                          # [RECORDED]
    ("""{
  "COMMAND":"bjobs",
  "JOBS":2,
  "RECORDS":[
    {"JOBID":"806290","STAT":"RUN","QUEUE":"batch","JOB_NAME":"bm.x.1"},
    {"JOBID":"806291","USER":"nikhil","EXIT_CODE":"","STAT":"EXIT",
     "EXIT_REASON":"TERM_OWNER: job killed by owner","PEND_REASON":"","JOB_NAME":"bm.y.1"}
  ]
}""", [("806290", "bm.x.1", RUNNING, None, "", ""),
       ("806291", "bm.y.1", FINISHED, None, "cancelled", "")]),                     # [RECORDED]
    ('{"COMMAND":"bjobs","JOBS":2,"RECORDS":[{"JOBID":"7","STAT":"PSUSP","JOB_NAME":"hold_job",'
     '"EXIT_CODE":""},{"JOBID":"123","ERROR":"Job <123> is not found"}]}',
     [("7", "hold_job", QUEUED, None, "", "")]),
])
def test_parse_bjobs_json(text, expect):
    got = [(j.job_id, j.name, j.state, j.exit_code, j.failure, j.node) for j in parse_bjobs_json(text)]
    assert got == expect


@pytest.mark.parametrize("text", ["No unfinished job found", "LSF is down. Please wait...", '{"x": 1}'])
def test_parse_bjobs_json_rejects_non_bjobs_text(text):
    with pytest.raises(ValueError):
        parse_bjobs_json(text)


# --------------------------------------------------------------------------- long formats

def test_parse_long_format_events_ibm_uf_example():                                 # [IBM-UF]
    text = """\
Job <1>, User <lsfuser>, Project <default>, Status <RUN>, Queue <normal>, Command <./pi_css5 10000000>, Share group charged </lsfuser>
Tue May 6 15:45:10: Submitted from host <hostA>, CWD </home/lsfuser>;
Tue May 6 15:45:11: Started on <hostB>, Execution Home </home/lsfuser>, Execution CWD </home/lsfuser>;
SCHEDULING PARAMETERS:
r15s r1m r15m ut pg io ls it tmp swp mem
loadSched - - - - - - - - - - -
loadStop - - - - - - - - - - -
"""
    got = parse_bhist_long(text)["1"]
    assert (got.state, got.native_state, got.node) == (RUNNING, "RUN", "hostB")


BHIST_L = """\

Job <102>, Job Name <bm.s.4.a.1>, User <ana>, Project <default>, Command <sleep 
                     5>
Sun Nov 22 22:39:07: Submitted from host <vm>, to Queue <short>, CWD </tmp>, Ou
                     tput File </tmp/a2.out>;
Sun Nov 22 22:39:07: Dispatched 1 Task(s) on Host(s) <hostB>, Allocated 1 Slot(s) 
                     on Host(s) <hostB>;
Sun Nov 22 22:39:07: Starting (Pid 12660);
Sun Nov 22 22:39:09: Exited with exit code 140. The CPU time used is 0.0 second
                     s;
Sun Nov 22 22:39:09: Completed <exit>; TERM_RUNLIMIT: job killed after reaching
                      LSF run time limit;

Summary of time in seconds spent in various states by  Sun Nov 22 22:39:09
  PEND     PSUSP    RUN      USUSP    SSUSP    UNKWN    TOTAL
  0        0        2        0        0        0        2
------------------------------------------------------------------------------

Job <103>, Job Name <bm.s.4.b.1>, User <ana>, Project <default>, Command <true>
Sun Nov 22 22:39:07: Submitted from host <vm>, to Queue <normal>, CWD </tmp>;
Sun Nov 22 22:39:08: Dispatched 1 Task(s) on Host(s) <hostC>, Allocated 1 Slot(s) 
                     on Host(s) <hostC>;
Sun Nov 22 22:39:08: Done successfully. The CPU time used is 0.0 seconds;
Sun Nov 22 22:39:08: Post job process done successfully;
------------------------------------------------------------------------------

Job <104>, Job Name <bm.s.4.c.1>, User <ana>, Project <default>, Command <true>
Sun Nov 22 22:39:07: Submitted from host <vm>, to Queue <normal>, CWD </tmp>;
Sun Nov 22 22:39:08: Signal <KILL> requested by user or administrator <ana>;
Sun Nov 22 22:39:08: Exited; The CPU time used is 0.0 seconds;
Sun Nov 22 22:39:08: Completed <exit>; TERM_OWNER: job killed by owner;
------------------------------------------------------------------------------

Job <105>, Job Name <bm.s.4.d.1>, User <ana>, Project <default>, Command <true>
Sun Nov 22 22:39:07: Submitted from host <vm>, to Queue <normal>, CWD </tmp>;
"""


def test_parse_bhist_long():
    got = {k: (v.name, v.state, v.native_state, v.exit_code, v.failure, v.node)
           for k, v in parse_bhist_long(BHIST_L).items()}
    assert got == {
        "102": ("bm.s.4.a.1", FINISHED, "EXIT", 140, "timeout", "hostB"),
        "103": ("bm.s.4.b.1", FINISHED, "DONE", 0, "", "hostC"),
        "104": ("bm.s.4.c.1", FINISHED, "EXIT", None, "cancelled", ""),
        "105": ("bm.s.4.d.1", QUEUED, "PEND", None, "", ""),
    }
    assert parse_bhist_long(BHIST_L)["102"].reason == \
        "TERM_RUNLIMIT: job killed after reaching LSF run time limit"   # wrapped line re-joined


@pytest.mark.parametrize("text, outage", [
    ("LSF is down. Please wait...", True),
    ("Cannot connect to LSF. Please wait ...", True),
    ("batch system daemon not responding ... still trying", True),
    ("nosuchq: No such queue. Job not submitted.", False),
    ("Job <11>: Job has already finished", False),
    ("Job <22>: No matching job found", False),
])
def test_is_outage(text, outage):
    assert is_outage(text) is outage
