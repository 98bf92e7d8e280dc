"""SlurmBackend against the real one-node SLURM cluster (contrib/slurm/start.sh).

Every wait polls with a deadline; nothing sleeps a fixed time. A time limit cannot be below
one minute in SLURM, so the time-limit test shortens the running job's end with
``scontrol update EndTime=now``: slurmctld then kills it at its next time-limit check (it runs
about every 30 s), which keeps the test under a minute.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import pytest

from batchman.backends.base import (
    ABSENT, FINISHED, QUEUED, RUNNING, BackendUnavailable, Rejected,
)
from batchman.backends.batch.slurm import SlurmBackend, log_failure_hint

from clusterhelp import poll, read_when, slurm_end_now

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(180)]

finished = lambda i: i.state == FINISHED          # noqa: E731
running = lambda i: i.state == RUNNING            # noqa: E731


class SqueueBlind(SlurmBackend):
    """Sees nothing in squeue: as if slurmctld had purged the job (MinJobAge), so every
    answer comes from accounting (sacct or sacct -c)."""

    def _squeue(self):
        self._run(["true"])        # still one command, as in the real thing
        return []


def _read(path: str, timeout: float = 10.0) -> str:
    """A job's output file (the node may write it a moment after the job ends)."""
    return read_when(path, bool, timeout)


# ----------------------------------------------------------------------------- lifecycle
def test_submit_queued_running_finished_ok(cluster, jobs, wait):
    b = cluster.backend()
    spec = jobs.spec('echo "value=$BM_VALUE pwd=$(pwd)"; echo to-stderr >&2; sleep 2',
                     env={"BM_VALUE": "hello world=1"}, time_limit=120, memory_mb=100)
    job_id = b.submit(spec)
    assert job_id.isdigit()
    info, seen = wait(b, spec.name, job_id, finished)
    assert seen[0] in (QUEUED, RUNNING) and RUNNING in seen
    assert (info.job_id, info.native_state, info.exit_code, info.failure) == (job_id, "COMPLETED", 0, "")
    assert info.node
    assert _read(spec.stdout).strip() == f"value=hello world=1 pwd={spec.workdir}"
    assert _read(spec.stderr).strip() == "to-stderr"
    shown = b.details(job_id)
    assert f"JobId={job_id}" in shown and f"JobName={spec.name}" in shown
    assert "TimeLimit=00:02:00" in shown and "mem=100M" in shown


def test_env_with_commas_quotes_and_newlines(cluster, jobs, wait):
    b = cluster.backend()
    value = "a,b 'c' \"d\"\nline2"
    spec = jobs.spec('printf "%s|%s" "$BM_ODD" "$PATH" > "$BM_OUT"',
                     env={"BM_ODD": value, "BM_OUT": str(jobs.dir / "env.txt")})
    job_id = b.submit(spec)
    info, _ = wait(b, spec.name, job_id, finished)
    assert info.failure == ""
    odd, path = (jobs.dir / "env.txt").read_text().split("|")
    assert odd == value
    assert "/usr/bin" in path            # the rest of the environment came too


def test_batchman_job_gets_its_variables_without_the_login_environment(cluster, jobs, wait):
    """issue 14: no --export list, so SLURM does not load the login environment (the job had
    SLURM_GET_USER_ENV=1 and started 0.5-0.9 s late); the real job.sh still sees BATCHMAN_*."""
    from batchman.daemon import jobscript
    from batchman.daemon.watch import DoneWatcher
    b = cluster.backend()
    spec = jobs.spec("true")
    env = {"BATCHMAN_RUN": "7", "BATCHMAN_TASK": spec.name, "BATCHMAN_FILES": "a,b c"}
    out = jobs.dir / "seen.txt"
    text = jobscript.render(
        command=["bash", "-c", f'echo "GUE=${{SLURM_GET_USER_ENV-unset}} RUN=$BATCHMAN_RUN '
                               f'TASK=$BATCHMAN_TASK FILES=$BATCHMAN_FILES" > {out}'],
        args=[], env=env, attempt_dir=spec.attempt_dir, workdir=spec.workdir, title=spec.name,
        done_file=str(jobs.dir / "done" / spec.name))
    jobscript.write(spec.script, text)
    spec = dataclasses.replace(spec, env=env)
    job_id = b.submit(spec)
    assert not any(a.startswith("--export=ALL,") for a in b.runner.records[-1].argv)
    info, _ = wait(b, spec.name, job_id, finished)
    assert info.failure == ""
    assert _read(str(out)).strip() == f"GUE=unset RUN=7 TASK={spec.name} FILES=a,b c"
    assert DoneWatcher(str(jobs.dir / "done")).check() == [spec.name]


def test_exit_3(cluster, jobs, wait):
    b = cluster.backend()
    spec = jobs.spec("echo failing; exit 3")
    job_id = b.submit(spec)
    info, _ = wait(b, spec.name, job_id, finished)
    assert (info.native_state, info.exit_code, info.failure) == ("FAILED", 3, "exit-nonzero")
    assert info.reason == "FAILED: exit code 3"


def test_time_limit(cluster, jobs, wait):
    b = cluster.backend()
    spec = jobs.spec("echo start; sleep 300", time_limit=60)
    job_id = b.submit(spec)
    wait(b, spec.name, job_id, running, timeout=60)
    assert "TimeLimit=00:01:00" in b.details(job_id)
    slurm_end_now(cluster.env, job_id)
    t0 = time.monotonic()
    info, _ = wait(b, spec.name, job_id, finished, timeout=75, every=0.5)
    assert (info.native_state, info.failure, info.exit_code) == ("TIMEOUT", "timeout", None)
    assert info.reason == "TIMEOUT: time limit reached"
    assert log_failure_hint(_read(spec.stderr)) == "timeout"
    print(f"TIMEOUT {time.monotonic() - t0:.1f} s after EndTime=now")


def test_cancel_running(cluster, jobs, wait):
    b = cluster.backend()
    spec = jobs.spec("sleep 120")
    job_id = b.submit(spec)
    wait(b, spec.name, job_id, running)
    b.cancel([job_id])
    info, _ = wait(b, spec.name, job_id, finished, timeout=30)
    assert (info.native_state, info.failure) == ("CANCELLED", "cancelled")
    b.cancel([job_id])                   # already finished: not an error
    b.cancel(["99999999"])               # unknown: not an error either
    b.cancel([])


def test_memory_over_limit_is_killed(cluster, jobs, wait):
    """OverMemoryKill (jobacct_gather/linux, no cgroups) kills the job within ~1 s; SLURM then
    says FAILED / JobLaunchFailure / signal 9, and only stderr tells it was memory."""
    b = cluster.backend()
    spec = jobs.spec("python3 -c 'import time; a = b\"x\" * (300 << 20); time.sleep(30)'; echo survived",
                     memory_mb=50)
    job_id = b.submit(spec)
    info, _ = wait(b, spec.name, job_id, finished, timeout=60)
    assert (info.native_state, info.failure, info.exit_code) == ("FAILED", "exit-nonzero", 137)
    assert log_failure_hint(_read(spec.stderr)) == "out-of-memory"
    assert "survived" not in _read(spec.stdout, timeout=0)


# ----------------------------------------------------------------------------- finding jobs
def test_found_by_name_after_forgetting_the_id(cluster, jobs, wait):
    b = cluster.backend()
    spec = jobs.spec("sleep 1")
    job_id = b.submit(spec)
    info = b.query({spec.name: ""})[spec.name]
    assert info.job_id == job_id and info.state in (QUEUED, RUNNING)
    info, _ = wait(b, spec.name, "", finished)
    assert (info.job_id, info.failure) == (job_id, "")
    assert b.query({cluster.prefix + "never-submitted": ""})[cluster.prefix + "never-submitted"].state == ABSENT


def test_list_ours(cluster, jobs, wait):
    b = cluster.backend()
    spec = jobs.spec("sleep 1", extra_args=["--hold"])
    job_id = b.submit(spec)
    try:
        ours = b.list_ours(jobs.base)
        assert [(j.job_id, j.name, j.state) for j in ours] == [(job_id, spec.name, QUEUED)]
        assert ours[0].reason.startswith("JobHeldUser")
        assert b.list_ours(cluster.prefix + "nobody-has-this-prefix") == []
    finally:
        b.cancel([job_id])


def test_rejected_bad_partition(cluster, jobs, wait):
    b = cluster.backend()
    with pytest.raises(Rejected, match="Invalid partition name specified") as e:
        b.submit(jobs.spec("true", queue="no-such-partition"))
    assert "no-such-partition" in str(e.value)
    with pytest.raises(Rejected, match="unrecognized option"):
        b.submit(jobs.spec("true", extra_args=["--no-such-option"]))


def test_partition_short_and_its_max_time(cluster, jobs, wait):
    b = cluster.backend()
    ok = jobs.spec("true", queue="short", time_limit=60)
    too_long = jobs.spec("true", queue="short", time_limit=3600)
    ok_id, long_id = b.submit(ok), b.submit(too_long)
    try:
        assert wait(b, ok.name, ok_id, finished)[0].failure == ""
        # over the partition's MaxTime: accepted but pending forever, and the reason says why
        info, _ = wait(b, too_long.name, long_id, lambda i: "PartitionTimeLimit" in i.reason, timeout=20)
        assert info.state == QUEUED
    finally:
        b.cancel([long_id])


# ----------------------------------------------------------------------------- accounting
@pytest.mark.parametrize("mode", ["jobcomp", "slurmdbd"])
def test_accounting_mode(cluster, two_finished, mode):
    if mode not in cluster.modes:
        pytest.skip("cluster started without slurmdbd (contrib/slurm/start.sh --with-slurmdbd)")
    (ok, ok_id), (bad, bad_id) = two_finished
    b = SqueueBlind(cluster.runner(), accounting=mode)

    def both(asked):
        got = b.query(asked)
        return got if all(g.state == FINISHED for g in got.values()) else None

    # slurmdbd learns of a job's end ~1 s after it: poll briefly
    got = poll("accounting showing both jobs finished", lambda: both({ok.name: ok_id, bad.name: bad_id}),
               20, 0.25, show=lambda: b.query({ok.name: ok_id, bad.name: bad_id}))
    assert (got[ok.name].exit_code, got[ok.name].failure) == (0, "")
    assert (got[bad.name].exit_code, got[bad.name].failure) == (3, "exit-nonzero")
    sacct = [r.argv for r in b.runner.records if r.argv[0] == "sacct"]
    assert ("--completion" in sacct[-1]) == (mode == "jobcomp")
    # by name, as after a crash between sbatch and recording the id. slurmdbd may list a job
    # that just ended under the name "allocation" for ~5 s (measured): poll briefly.
    by_name = []

    def found():
        by_name[:] = [b.query({ok.name: "", bad.name: ""})]
        return by_name[0] if ABSENT not in {g.state for g in by_name[0].values()} else None

    got = poll("both jobs found by name", found, 20, 0.5, show=lambda: by_name)
    assert (got[ok.name].job_id, got[bad.name].job_id) == (ok_id, bad_id)
    assert (got[bad.name].exit_code, got[bad.name].failure) == (3, "exit-nonzero")
    # and a job accounting never heard of
    assert b.query({"bm.none": "99999999"})["bm.none"].state == ABSENT


def test_accounting_auto_detects_the_cluster(cluster):
    b = cluster.backend(accounting="auto")
    assert b.accounting == cluster.accounting
    n = len(b.runner.records)
    assert b.accounting == cluster.accounting and len(b.runner.records) == n   # cached


# ----------------------------------------------------------------------------- faults and costs
@pytest.fixture
def unreachable_env(cluster, tmp_path):
    """SLURM_CONF pointing at a copy of the config whose controller port nobody listens on."""
    conf = Path(cluster.env["SLURM_CONF"]).read_text()
    port = int(re.search(r"^SlurmctldPort=(\d+)", conf, re.M).group(1)) + 100
    bogus = re.sub(r"^SlurmctldPort=\d+", f"SlurmctldPort={port}", conf, flags=re.M)
    path = tmp_path / "slurm.conf"
    path.write_text(bogus)
    return {**cluster.env, "SLURM_CONF": str(path)}, path


def test_unreachable_controller_fails_fast_with_slurms_words(cluster, jobs, unreachable_env):
    from batchman.backends.base import Runner
    env, path = unreachable_env
    # MessageTimeout=1: clients give up at once (with 10 s they retry ~9 s)
    path.write_text(re.sub(r"^MessageTimeout=\d+", "MessageTimeout=1", path.read_text(), flags=re.M))
    b = SlurmBackend(Runner(timeout=10, env=env), accounting="jobcomp")
    with pytest.raises(BackendUnavailable, match="Unable to contact slurm controller"):
        b.query({"x": "1"})
    with pytest.raises(BackendUnavailable, match="Unable to contact slurm controller"):
        b.submit(jobs.spec("true"))       # unreachable is NOT a rejection
    with pytest.raises(BackendUnavailable):
        b.list_ours(cluster.prefix)
    with pytest.raises(BackendUnavailable):
        b.cancel(["1"])


def test_unreachable_controller_times_out(cluster, unreachable_env):
    from batchman.backends.base import Runner
    env, _ = unreachable_env
    b = SlurmBackend(Runner(timeout=1.5, env=env), accounting="auto")
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match="timed out"):
        b.query({"x": "1"})
    assert time.monotonic() - t0 < 5
    assert b.runner.records[-1].returncode is None


def test_query_of_20_jobs_costs_at_most_2_commands(cluster, jobs, wait):
    b = cluster.backend()
    specs = [jobs.spec("true", extra_args=["--hold"]) for _ in range(20)]
    ids = [b.submit(s) for s in specs]
    try:
        n = len(b.runner.records)
        got = b.query({s.name: i for s, i in zip(specs, ids)})
        assert len(b.runner.records) - n == 1             # all in squeue: one command
        assert {g.state for g in got.values()} == {QUEUED}
        # 10 known ones + 10 ids squeue never saw: squeue + one batched sacct
        asked = {s.name: i for s, i in zip(specs[:10], ids[:10])}
        asked.update({f"{jobs.base}.ghost{k}": str(99999000 + k) for k in range(10)})
        n = len(b.runner.records)
        got = b.query(asked)
        assert len(b.runner.records) - n == 2
        assert sum(g.state == ABSENT for g in got.values()) == 10
        # ... and the same with ids unknown (by name)
        n = len(b.runner.records)
        got = b.query({**{s.name: "" for s in specs}, **{f"{jobs.base}.ghost{k}": "" for k in range(10)}})
        assert len(b.runner.records) - n == 2
        assert [got[s.name].job_id for s in specs] == ids
        timings = [r.seconds for r in b.runner.records]
        print(f"command seconds: max {max(timings):.3f}, mean {sum(timings) / len(timings):.3f}")
    finally:
        n = len(b.runner.records)
        b.cancel(ids)
        assert len(b.runner.records) - n == 1             # one scancel for all
