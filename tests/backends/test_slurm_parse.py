"""SLURM backend, pure layer: argv builders and parsers fed text captured from the real
one-node SLURM 22.05.8 cluster of contrib/slurm (2026-11-22), plus hand-made garbage."""

from __future__ import annotations

import pytest

from batchman.backends.base import ABSENT, FINISHED, QUEUED, RUNNING, JobInfo, JobSpec, Runner
from batchman.backends.batch import slurm
from batchman.backends.batch.slurm import (
    SQUEUE_FORMAT, STATE_TABLE, SlurmBackend, accounting_mode, build_sacct_argv,
    build_sbatch_argv, build_squeue_argv, classify_sbatch_error,
    log_failure_hint, map_state, match_jobs, parse_sacct,
    parse_sbatch_output, parse_scontrol_config, parse_squeue, sbatch_message,
)

# ----------------------------------------------------------------------------- captured text
# squeue --noheader --states=all --Format=JobID:0|,State:0|,Reason:0|,exit_code:0|,NodeList:0|,Name:0 -u root
SQUEUE_EARLY = """\
4|CANCELLED|None|15|vm|bm.t.4
1|COMPLETED|None|0|vm|bm.t.1
14|COMPLETED|None|0|vm|ok.sh
2|FAILED|NonZeroExitCode|768|vm|bm.t.2
8|FAILED|JobLaunchFailure|9|vm|bm.t.oom
10|FAILED|JobLaunchFailure|11|vm|bm.t.segv
12|FAILED|BadConstraints|1||ok.sh
26|PENDING|Resources|0||bm.cap.cancel
27|PENDING|Priority|0||bm.cap.to
28|PENDING|JobHeldUser|0||bm.cap.held
24|RUNNING|None|0|vm|bm.cap.ok
7|TIMEOUT|TimeLimit|15|vm|bm.t.to
13|CANCELLED|PartitionTimeLimit|0||ok.sh
"""
SQUEUE_END = """\
26|CANCELLED|None|0|vm|bm.cap.cancel
24|COMPLETED|None|0|vm|bm.cap.ok
30|COMPLETED|None|0|vm|bm.cap.pend
28|COMPLETED|None|0|vm|bm.cap.held
25|FAILED|NonZeroExitCode|768|vm|bm.cap.rc3
29|FAILED|JobLaunchFailure|9|vm|bm.cap.oom
27|TIMEOUT|TimeLimit|15|vm|bm.cap.to
"""
# sacct --noheader --parsable2 --allocations --format=JobID,State,ExitCode,Reason,NodeList,JobName
# (slurmdbd), just after sbatch, while running, and after the end
SACCT_DBD_JUST_SUBMITTED = """\
24|PENDING|0:0|None|vm|allocation
25|PENDING|0:0|None|vm|allocation
"""
SACCT_DBD_MID = """\
24|COMPLETED|0:0|None|vm|bm.cap.ok
25|RUNNING|0:0|None|vm|bm.cap.rc3
26|CANCELLED by 0|0:0|None|vm|bm.cap.cancel
27|RUNNING|0:0|None|vm|bm.cap.to
28|PENDING|0:0|JobHeldUser|None assigned|bm.cap.held
29|PENDING|0:0|None|None assigned|bm.cap.oom
30|PENDING|0:0|None|None assigned|bm.cap.pend
"""
SACCT_DBD_END = """\
24|COMPLETED|0:0|None|vm|bm.cap.ok
25|FAILED|3:0|None|vm|bm.cap.rc3
26|CANCELLED by 0|0:0|None|vm|bm.cap.cancel
27|TIMEOUT|0:0|None|vm|bm.cap.to
28|COMPLETED|0:0|JobHeldUser|vm|bm.cap.held
29|FAILED|0:9|None|vm|bm.cap.oom
30|COMPLETED|0:0|None|vm|bm.cap.pend
"""
# same without --allocations: steps come too
SACCT_DBD_STEPS = """\
27|TIMEOUT|0:0|None|vm|bm.cap.to
27.batch|CANCELLED|0:15||vm|batch
29|FAILED|0:9|None|vm|bm.cap.oom
29.batch|CANCELLED by 0|0:9||vm|batch
"""
# sacct --completion ... (jobcomp/filetxt): no Reason, file order
SACCT_C_END = """\
24|COMPLETED|0:0||vm|bm.cap.ok
26|CANCELLED|0:0||vm|bm.cap.cancel
25|FAILED|3:0||vm|bm.cap.rc3
29|FAILED|0:9||vm|bm.cap.oom
27|TIMEOUT|0:0||vm|bm.cap.to
30|COMPLETED|0:0||vm|bm.cap.pend
28|COMPLETED|0:0||vm|bm.cap.held
"""
# stderr of refused / failed submissions (sbatch exit 1, or 255 for a bad option)
SBATCH_ERRORS = {
    "bad-partition": "sbatch: error: invalid partition specified: nope\n"
                     "sbatch: error: Batch job submission failed: Invalid partition name specified\n",
    "bad-option": "sbatch: unrecognized option '--bogus'\nTry \"sbatch --help\" for more information\n",
    "too-much-memory": "sbatch: error: Memory specification can not be satisfied\n"
                       "sbatch: error: Batch job submission failed: Requested node configuration is not available\n",
    "no-script": "sbatch: error: Unable to open file missing.sh\n",
    "bad-reservation": "sbatch: error: Batch job submission failed: Requested reservation is invalid\n",
    "controller-down": "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n",
}
SQUEUE_DOWN = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
SACCT_NO_DBD = "Slurm accounting storage is disabled\n"
SCONTROL_CONFIG = """\
Configuration data as of 2026-11-22T22:40:26
AccountingStorageBackupHost = (null)
AccountingStorageEnforce = none
AccountingStorageHost   = localhost
AccountingStorageType   = accounting_storage/none
JobCompLoc              = /tmp/batchman-slurm/jobcomp.txt
JobCompType             = jobcomp/filetxt
MinJobAge               = 300 sec
"""
GARBAGE = """\

squeue: error: something odd
JOBID|STATE|REASON|EXIT_CODE|NODELIST|NAME
abc|RUNNING|None|0|vm|bm.x
12|0|None|0|vm|bm.numeric-state
only|three|fields
"""


# ----------------------------------------------------------------------------- sbatch
def spec(**kw) -> JobSpec:
    base = dict(name="bm.s.1.reco.1", script="/w/s.sh", workdir="/w", stdout="/w/o", stderr="/w/e",
                attempt_dir="/w/a")
    return JobSpec(**{**base, **kw})


def test_sbatch_argv_minimal():
    assert build_sbatch_argv(spec()) == [
        "sbatch", "--parsable", "--job-name=bm.s.1.reco.1", "--output=/w/o", "--error=/w/e",
        "--chdir=/w", "--nodes=1", "--ntasks=1", "--cpus-per-task=1", "--export=ALL", "/w/s.sh"]


def test_sbatch_argv_everything():
    argv = build_sbatch_argv(spec(env={"RUN": "7", "X": "a b"}, time_limit=61, memory_mb=2000, cpus=4,
                                  queue="short", account="phys", qos="low", reservation="r1",
                                  extra_args=["--exclude=n1", "--no-requeue"]))
    assert argv[:5] == ["env", "--", "RUN=7", "X=a b", "sbatch"]
    assert argv[5:13] == ["--parsable", "--job-name=bm.s.1.reco.1", "--output=/w/o", "--error=/w/e",
                          "--chdir=/w", "--nodes=1", "--ntasks=1", "--cpus-per-task=4"]
    for a in ["--partition=short", "--account=phys", "--qos=low", "--reservation=r1", "--time=2",
              "--mem=2000M", "--export=ALL"]:
        assert a in argv
    assert argv[-3:] == ["--exclude=n1", "--no-requeue", "/w/s.sh"]


@pytest.mark.parametrize("seconds, minutes", [(1, 1), (59, 1), (60, 1), (61, 2), (3600, 60), (0, 1)])
def test_time_limit_rounds_up_to_minutes(seconds, minutes):
    assert f"--time={minutes}" in build_sbatch_argv(spec(time_limit=seconds))


@pytest.mark.parametrize("env", [{"A": "x,y"}, {"A": "line\nbreak", "B": 'say "hi"'}, {"A": "it's", "B": ""}])
def test_sbatch_env_travels_in_sbatchs_environment_never_as_an_export_list(env):
    """issue 14: --export=ALL,K=V makes SLURM load the login environment per job (0.5-0.9 s)."""
    argv = build_sbatch_argv(spec(env=env))
    i = argv.index("sbatch")
    assert argv[:i] == ["env", "--", *(f"{k}={v}" for k, v in env.items())]
    assert [a for a in argv if a.startswith("--export")] == ["--export=ALL"]


def test_sbatch_env_with_a_bad_name_is_refused():
    with pytest.raises(ValueError, match="'A-B'"):
        build_sbatch_argv(spec(env={"A-B": "1"}))


@pytest.mark.parametrize("text, job_id", [
    ("24\n", "24"),
    ("123;batchman\n", "123"),
    ("  7 ; cluster2 \n", "7"),
    ("sbatch: warning: something\n42\n", "42"),
    ("55_3\n", "55_3"),
])
def test_parse_sbatch_output(text, job_id):
    assert parse_sbatch_output(text) == job_id


@pytest.mark.parametrize("text", ["", "\n", "Submitted batch job\n", "abc;cluster\n", "12a\n"])
def test_parse_sbatch_output_garbage(text):
    with pytest.raises(ValueError):
        parse_sbatch_output(text)


@pytest.mark.parametrize("key, kind, message", [
    ("bad-partition", "rejected", "invalid partition specified: nope; Batch job submission failed: "
                                  "Invalid partition name specified"),
    ("bad-option", "rejected", "unrecognized option '--bogus'"),
    ("too-much-memory", "rejected", "Memory specification can not be satisfied; Batch job submission "
                                    "failed: Requested node configuration is not available"),
    ("no-script", "rejected", "Unable to open file missing.sh"),
    ("bad-reservation", "rejected", "Batch job submission failed: Requested reservation is invalid"),
    ("controller-down", "unavailable", "Batch job submission failed: Unable to contact slurm "
                                       "controller (connect failure)"),
])
def test_sbatch_errors(key, kind, message):
    assert classify_sbatch_error(SBATCH_ERRORS[key]) == kind
    assert sbatch_message(SBATCH_ERRORS[key]) == message


# ----------------------------------------------------------------------------- squeue
def test_squeue_argv():
    assert build_squeue_argv("root") == [
        "squeue", "--noheader", "--states=all",
        "--Format=JobID:0|,State:0|,Reason:0|,exit_code:0|,NodeList:0|,Name:0", "--user=root"]
    assert build_squeue_argv("u", ["a", "b"])[-1] == "--name=a,b"
    assert SQUEUE_FORMAT.endswith("Name:0")


def _by_id(rows: list[JobInfo]) -> dict[str, JobInfo]:
    return {r.job_id: r for r in rows}


SQUEUE_CASES = [
    # id, name, state, native, exit_code, failure, reason, node
    ("4", "bm.t.4", FINISHED, "CANCELLED", None, "cancelled", "CANCELLED: job cancelled", "vm"),
    ("1", "bm.t.1", FINISHED, "COMPLETED", 0, "", "", "vm"),
    ("2", "bm.t.2", FINISHED, "FAILED", 3, "exit-nonzero", "FAILED: exit code 3", "vm"),
    ("8", "bm.t.oom", FINISHED, "FAILED", 137, "exit-nonzero", "FAILED: killed by SIGKILL (JobLaunchFailure)", "vm"),
    ("10", "bm.t.segv", FINISHED, "FAILED", 139, "exit-nonzero", "FAILED: killed by SIGSEGV (JobLaunchFailure)", "vm"),
    # raw status 1 = "signal 1": how SLURM encodes a job it failed itself (sacct says 0:1)
    ("12", "ok.sh", FINISHED, "FAILED", 129, "exit-nonzero", "FAILED: killed by SIGHUP (BadConstraints)", ""),
    ("26", "bm.cap.cancel", QUEUED, "PENDING", None, "", "Resources: waiting for free resources", ""),
    ("27", "bm.cap.to", QUEUED, "PENDING", None, "", "Priority: jobs with higher priority go first", ""),
    ("28", "bm.cap.held", QUEUED, "PENDING", None, "", "JobHeldUser: held by the user (scontrol release)", ""),
    ("24", "bm.cap.ok", RUNNING, "RUNNING", None, "", "", "vm"),
    ("7", "bm.t.to", FINISHED, "TIMEOUT", None, "timeout", "TIMEOUT: time limit reached", "vm"),
    ("13", "ok.sh", FINISHED, "CANCELLED", None, "cancelled", "CANCELLED: job cancelled (PartitionTimeLimit)", ""),
]


@pytest.mark.parametrize("job_id, name, state, native, exit_code, failure, reason, node", SQUEUE_CASES)
def test_parse_squeue_captured(job_id, name, state, native, exit_code, failure, reason, node):
    rows = _by_id(parse_squeue(SQUEUE_EARLY))
    assert len(rows) == 13
    r = rows[job_id]
    assert (r.name, r.state, r.native_state, r.exit_code, r.failure, r.reason, r.node) == \
        (name, state, native, exit_code, failure, reason, node)


def test_parse_squeue_end_of_run():
    rows = _by_id(parse_squeue(SQUEUE_END))
    assert {k: (v.state, v.failure, v.exit_code) for k, v in rows.items()} == {
        "26": (FINISHED, "cancelled", None), "24": (FINISHED, "", 0), "30": (FINISHED, "", 0),
        "28": (FINISHED, "", 0), "25": (FINISHED, "exit-nonzero", 3),
        "29": (FINISHED, "exit-nonzero", 137), "27": (FINISHED, "timeout", None)}


def test_parse_squeue_garbage_and_pipes_in_names():
    rows = parse_squeue(GARBAGE + "31|RUNNING|None|0|vm|bm.odd|name\n" + SQUEUE_END)
    assert [r.job_id for r in rows] == ["31", "26", "24", "30", "28", "25", "29", "27"]
    assert rows[0].name == "bm.odd|name"
    assert parse_squeue("") == []


def test_parse_squeue_exit_code_not_a_number():
    (r,) = parse_squeue("5|FAILED|NonZeroExitCode|N/A|vm|bm.x\n")
    assert (r.state, r.exit_code, r.failure) == (FINISHED, None, "exit-nonzero")


# ----------------------------------------------------------------------------- sacct
def test_sacct_argv_by_id_and_by_name():
    assert build_sacct_argv("slurmdbd", job_ids=["3", "4"]) == [
        "sacct", "--noheader", "--parsable2", "--allocations",
        "--format=JobID,State,ExitCode,Reason,NodeList,JobName", "--jobs=3,4"]
    assert build_sacct_argv("jobcomp", job_ids=["3"])[:2] == ["sacct", "--completion"]
    by_name = build_sacct_argv("slurmdbd", names=["a", "b"], since="now-2days", user="root")
    assert by_name[-3:] == ["--starttime=now-2days", "--name=a,b", "--user=root"]
    assert not any(a.startswith("--jobs") for a in by_name)
    assert "--user=root" not in build_sacct_argv("jobcomp", names=["a"], user="root")


SACCT_END_CASES = [
    ("24", FINISHED, "", 0, "", "vm"),
    ("25", FINISHED, "exit-nonzero", 3, "FAILED: exit code 3", "vm"),
    ("26", FINISHED, "cancelled", None, "CANCELLED by uid 0", "vm"),
    ("27", FINISHED, "timeout", None, "TIMEOUT: time limit reached", "vm"),
    ("28", FINISHED, "", 0, "", "vm"),          # stale Reason JobHeldUser is not shown
    ("29", FINISHED, "exit-nonzero", 137, "FAILED: killed by SIGKILL", "vm"),
    ("30", FINISHED, "", 0, "", "vm"),
]


@pytest.mark.parametrize("job_id, state, failure, exit_code, reason, node", SACCT_END_CASES)
def test_parse_sacct_slurmdbd(job_id, state, failure, exit_code, reason, node):
    r = _by_id(parse_sacct(SACCT_DBD_END))[job_id]
    assert (r.state, r.failure, r.exit_code, r.reason, r.node) == (state, failure, exit_code, reason, node)


@pytest.mark.parametrize("job_id, state, failure, exit_code, reason, node", SACCT_END_CASES)
def test_parse_sacct_jobcomp_agrees(job_id, state, failure, exit_code, reason, node):
    r = _by_id(parse_sacct(SACCT_C_END))[job_id]
    if job_id == "26":
        reason = "CANCELLED: job cancelled"     # sacct -c has no "by <uid>"
    assert (r.state, r.failure, r.exit_code, r.reason, r.node) == (state, failure, exit_code, reason, node)


def test_parse_sacct_while_running():
    rows = _by_id(parse_sacct(SACCT_DBD_MID))
    assert {k: v.state for k, v in rows.items()} == {
        "24": FINISHED, "25": RUNNING, "26": FINISHED, "27": RUNNING, "28": QUEUED, "29": QUEUED,
        "30": QUEUED}
    assert rows["28"].reason.startswith("JobHeldUser")
    assert rows["29"].node == ""                  # "None assigned"
    # right after sbatch slurmdbd may call it "allocation", PENDING, with a node
    first = _by_id(parse_sacct(SACCT_DBD_JUST_SUBMITTED))
    assert (first["24"].state, first["24"].name) == (QUEUED, "allocation")


def test_parse_sacct_skips_steps_and_garbage():
    rows = parse_sacct(GARBAGE + SACCT_DBD_STEPS)
    assert [(r.job_id, r.state, r.failure) for r in rows] == [
        ("27", FINISHED, "timeout"), ("29", FINISHED, "exit-nonzero")]


def test_parse_sacct_keeps_last_row_of_a_job():
    rows = parse_sacct("5|REQUEUED|0:0||vm|bm.a\n5|COMPLETED|0:0||vm|bm.a\n")
    assert [(r.job_id, r.state) for r in rows] == [("5", FINISHED)]


# ----------------------------------------------------------------------------- states
# Every state SLURM 22.05 documents for squeue/sacct.
ALL_STATES = [
    ("PENDING", QUEUED, ""), ("CONFIGURING", QUEUED, ""), ("REQUEUED", QUEUED, ""),
    ("REQUEUE_HOLD", QUEUED, ""), ("REQUEUE_FED", QUEUED, ""), ("RESV_DEL_HOLD", QUEUED, ""),
    ("SPECIAL_EXIT", QUEUED, ""), ("POWER_UP_NODE", QUEUED, ""),
    ("RUNNING", RUNNING, ""), ("COMPLETING", RUNNING, ""), ("SUSPENDED", RUNNING, ""),
    ("STOPPED", RUNNING, ""), ("RESIZING", RUNNING, ""), ("SIGNALING", RUNNING, ""),
    ("STAGE_OUT", RUNNING, ""), ("UPDATE_DB", RUNNING, ""),
    ("COMPLETED", FINISHED, ""), ("FAILED", FINISHED, "exit-nonzero"),
    ("CANCELLED", FINISHED, "cancelled"), ("CANCELLED by 0", FINISHED, "cancelled"),
    ("CANCELLED by 1234", FINISHED, "cancelled"), ("TIMEOUT", FINISHED, "timeout"),
    ("OUT_OF_MEMORY", FINISHED, "out-of-memory"), ("NODE_FAIL", FINISHED, "node-fail"),
    ("BOOT_FAIL", FINISHED, "boot-fail"), ("PREEMPTED", FINISHED, "preempted"),
    ("DEADLINE", FINISHED, "deadline"), ("REVOKED", FINISHED, "revoked"),
    ("LAUNCH_FAILED", FINISHED, "launch-failed"), ("RECONFIG_FAIL", FINISHED, "node-fail"),
    # short codes and abbreviations
    ("PD", QUEUED, ""), ("R", RUNNING, ""), ("CG", RUNNING, ""), ("CD", FINISHED, ""),
    ("CA", FINISHED, "cancelled"), ("TO", FINISHED, "timeout"), ("OOM", FINISHED, "out-of-memory"),
    ("NF", FINISHED, "node-fail"), ("PR", FINISHED, "preempted"), ("CANCELLED+", FINISHED, "cancelled"),
    ("running", RUNNING, ""),
]


@pytest.mark.parametrize("native, state, failure", ALL_STATES)
def test_map_every_state(native, state, failure):
    m = map_state(native)
    assert (m.state, m.failure) == (state, failure)
    if state != FINISHED:
        assert m.exit_code is None


def test_state_table_covers_the_list():
    mapped = {n.split()[0] for n, _, _ in ALL_STATES if n.isupper() and len(n) > 3}
    assert set(STATE_TABLE) <= mapped | {"CANCELLED"}


@pytest.mark.parametrize("native", ["", "WEIRD_NEW_STATE", "???"])
def test_unknown_state_is_never_an_ending(native):
    m = map_state(native)
    assert (m.state, m.failure) == (RUNNING, "")


@pytest.mark.parametrize("args, expected", [
    (("TIMEOUT", 0, 15, "TimeLimit"), (None, "timeout", "TIMEOUT: time limit reached")),
    (("OUT_OF_MEMORY", 0, 9, "OutOfMemory"), (None, "out-of-memory", "OUT_OF_MEMORY: job exceeded its memory (OutOfMemory)")),
    (("NODE_FAIL", 0, 0, "NodeDown"), (None, "node-fail", "NODE_FAIL: a node of the job failed (NodeDown)")),
    (("PREEMPTED", 0, 0, ""), (None, "preempted", "PREEMPTED: job preempted")),
    (("BOOT_FAIL", 0, 0, ""), (None, "boot-fail", "BOOT_FAIL: a node failed to boot")),
    (("DEADLINE", 0, 0, ""), (None, "deadline", "DEADLINE: job reached its deadline")),
    (("CANCELLED by 0", 0, 0, "None"), (None, "cancelled", "CANCELLED by uid 0")),
    (("FAILED", 1, 0, "NonZeroExitCode"), (1, "exit-nonzero", "FAILED: exit code 1")),
    (("FAILED", 0, 0, ""), (0, "exit-nonzero", "FAILED")),
    (("FAILED", 2, 9, ""), (2, "exit-nonzero", "FAILED: killed by SIGKILL")),
    (("COMPLETED", 0, 0, "None"), (0, "", "")),
    (("PENDING", None, None, "PartitionTimeLimit"), (None, "", "PartitionTimeLimit: time limit above the partition's maximum")),
    (("PENDING", None, None, "AssocGrpMemLimit"), (None, "", "AssocGrpMemLimit")),
    (("PENDING", None, None, "None"), (None, "", "")),
])
def test_map_state_details(args, expected):
    m = map_state(*args)
    assert (m.exit_code, m.failure, m.reason) == expected


@pytest.mark.parametrize("text, hint", [
    ("slurmstepd-vm: error: StepId=8.batch exceeded memory limit (331591680 > 52428800), being killed\n"
     "slurmstepd-vm: error: *** JOB 8 ON vm CANCELLED AT 2026-11-22T22:38:34 ***\n"
     "slurmstepd-vm: error: Exceeded job memory limit\n", "out-of-memory"),
    ("slurmstepd: error: *** JOB 27 ON vm CANCELLED AT 2026-11-22T22:44:41 DUE TO TIME LIMIT ***\n", "timeout"),
    ("Traceback (most recent call last):\nValueError\n", ""),
])
def test_log_failure_hint(text, hint):
    assert log_failure_hint(text) == hint


# ----------------------------------------------------------------------------- matching
def test_match_by_id_then_by_name():
    rows = parse_squeue(SQUEUE_EARLY + "40|RUNNING|None|0|vm|bm.t.1\n")
    found = match_jobs({"bm.t.1": "", "bm.t.2": "2", "bm.t.4": "999", "bm.none": ""}, rows)
    assert found["bm.t.1"].job_id == "40"        # by name: the live one wins over COMPLETED 1
    assert found["bm.t.2"].job_id == "2"
    assert "bm.t.4" not in found                 # asked by id: a name match is not enough
    assert "bm.none" not in found
    # an id that belongs to another name (ids reused after a reset) is not ours
    assert match_jobs({"bm.t.2": "1"}, rows) == {}
    # slurmdbd's temporary "allocation" name is accepted for an id
    (alloc,) = parse_sacct(SACCT_DBD_JUST_SUBMITTED)[:1]
    got = match_jobs({"bm.cap.ok": "24"}, [alloc])["bm.cap.ok"]
    assert (got.job_id, got.name) == ("24", "bm.cap.ok")


def test_scontrol_config_and_accounting_mode():
    conf = parse_scontrol_config(SCONTROL_CONFIG)
    assert conf["JobCompType"] == "jobcomp/filetxt" and conf["MinJobAge"] == "300 sec"
    assert accounting_mode(conf) == "jobcomp"
    assert accounting_mode({"AccountingStorageType": "accounting_storage/slurmdbd"}) == "slurmdbd"


def test_transient_errors():
    assert slurm.is_transient_error(SQUEUE_DOWN)
    assert slurm.is_transient_error(SACCT_NO_DBD)
    assert not slurm.is_transient_error(SBATCH_ERRORS["bad-partition"])


# ----------------------------------------------------------------------------- the backend, scripted runner
class ScriptedRunner(Runner):
    """Answers commands from a table (first argv word -> (rc, stdout, stderr)); records them."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]):
        super().__init__(timeout=5)
        self.answers = answers

    def __call__(self, argv, *, input=None, timeout=None, check=False):
        import subprocess
        from batchman.backends.base import CommandRecord
        rc, out, err = self.answers[argv[0]]
        self.records.append(CommandRecord(list(argv), 0.0, rc, err))
        return subprocess.CompletedProcess(argv, rc, out, err)


def test_query_uses_squeue_then_one_sacct():
    r = ScriptedRunner({"squeue": (0, SQUEUE_EARLY, ""), "sacct": (0, SACCT_C_END, "")})
    b = SlurmBackend(r, accounting="jobcomp", user="root")
    got = b.query({"bm.cap.ok": "24", "bm.cap.rc3": "25", "bm.cap.held": "28", "bm.gone": "77"})
    assert [c.argv[0] for c in r.records] == ["squeue", "sacct"]
    assert "--jobs=25,77" in r.records[1].argv and "--completion" in r.records[1].argv
    assert got["bm.cap.ok"].state == RUNNING                      # from squeue
    assert (got["bm.cap.rc3"].state, got["bm.cap.rc3"].exit_code) == (FINISHED, 3)  # from sacct -c
    assert got["bm.cap.held"].state == QUEUED
    assert got["bm.gone"].state == ABSENT


def test_query_by_name_when_an_id_is_unknown():
    r = ScriptedRunner({"squeue": (0, "", ""), "sacct": (0, SACCT_C_END, "")})
    b = SlurmBackend(r, accounting="jobcomp", user="root")
    got = b.query({"bm.cap.rc3": "", "bm.cap.ok": "24"})
    assert len(r.records) == 2 and "--name=bm.cap.ok,bm.cap.rc3" in r.records[1].argv
    assert got["bm.cap.rc3"].job_id == "25" and got["bm.cap.ok"].state == FINISHED


def test_query_squeue_down_is_unavailable():
    r = ScriptedRunner({"squeue": (1, "", SQUEUE_DOWN)})
    with pytest.raises(slurm.BackendUnavailable, match="Unable to contact"):
        SlurmBackend(r, accounting="jobcomp").query({"a": "1"})


def test_query_sacct_down_keeps_what_squeue_said():
    r = ScriptedRunner({"squeue": (0, SQUEUE_EARLY, ""), "sacct": (1, "", SACCT_NO_DBD)})
    with pytest.raises(slurm.AccountingUnavailable) as e:
        SlurmBackend(r, accounting="slurmdbd").query({"bm.cap.ok": "24", "bm.x": "99"})
    assert set(e.value.partial) == {"bm.cap.ok"}


def test_accounting_auto_asks_once():
    r = ScriptedRunner({"scontrol": (0, SCONTROL_CONFIG, ""), "squeue": (0, "", ""), "sacct": (0, "", "")})
    b = SlurmBackend(r, accounting="auto")
    b.query({"a": "1"})
    b.query({"a": "1"})
    assert [c.argv[0] for c in r.records] == ["squeue", "scontrol", "sacct", "squeue", "sacct"]
    assert b.accounting == "jobcomp"


def test_submit_rejected_and_unavailable():
    b = SlurmBackend(ScriptedRunner({"sbatch": (1, "", SBATCH_ERRORS["bad-partition"])}), accounting="jobcomp")
    with pytest.raises(slurm.Rejected, match="Invalid partition name specified"):
        b.submit(spec())
    b = SlurmBackend(ScriptedRunner({"sbatch": (1, "", SBATCH_ERRORS["controller-down"])}), accounting="jobcomp")
    with pytest.raises(slurm.BackendUnavailable):
        b.submit(spec())
    b = SlurmBackend(ScriptedRunner({"sbatch": (0, "123;batchman\n", "")}), accounting="jobcomp")
    assert b.submit(spec()) == "123"


def test_submit_with_env_names_sbatch_when_it_hangs_or_is_missing():
    """sbatch runs as ``env -- K=V sbatch``: a hang or a missing sbatch is an outage named sbatch."""
    class Hangs:
        env, records = None, []

        def __call__(self, argv, **kw):
            raise slurm.BackendUnavailable(f"{argv[0]} timed out after 3 s")

    with pytest.raises(slurm.BackendUnavailable, match=r"^sbatch timed out after 3 s$"):
        SlurmBackend(Hangs(), accounting="jobcomp").submit(spec(env={"A": "1"}))
    r = ScriptedRunner({"env": (127, "", "env: 'sbatch': No such file or directory")})
    with pytest.raises(slurm.BackendUnavailable, match="cannot run sbatch: env: 'sbatch': No such file"):
        SlurmBackend(r, accounting="jobcomp").submit(spec(env={"A": "1"}))
