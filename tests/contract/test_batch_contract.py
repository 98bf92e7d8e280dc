"""The contract every batch backend keeps (issue 9), run against each of them alike.

The ``batch`` fixture (conftest.py) is parametrized over local, slurm, gridengine and lsf; each
case below states one promise of ``BatchBackend`` (batchman/backends/base.py) in terms any backend
can be held to. A backend is done when every case passes against it. Every wait polls with a
deadline; nothing sleeps a fixed time. Jobs last about a second.

Run one backend with ``-k``, e.g. ``pytest tests/contract -k gridengine``.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from batchman.backends.base import ABSENT, FINISHED, QUEUED, RUNNING, BackendUnavailable

from clusterhelp import poll, read_when

pytestmark = pytest.mark.timeout(150)

finished = lambda i: i.state == FINISHED                 # noqa: E731
running = lambda i: i.state == RUNNING                   # noqa: E731
gone = lambda i: i.state in (FINISHED, ABSENT)           # noqa: E731
alive = (QUEUED, RUNNING)


def read_log(path: str, want: str, timeout: float = 10.0) -> str:
    """A job's log file once it holds ``want`` (nodes may write it a moment after the end)."""
    return read_when(path, lambda text: want in text, timeout)


def processes_with_argv(argv: list[str]) -> list[int]:
    """Pids of live processes whose command line is exactly ``argv``."""
    want = b"\0".join(a.encode() for a in argv) + b"\0"
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read() != want:
                    continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            if stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X"):
                pids.append(int(entry))
        except (OSError, ValueError):
            pass
    return pids


# ------------------------------------------------------------------------------- lifecycle
def test_submit_with_name_resources_and_logs_runs_to_exit_0(batch):
    """submit with the task's name, resources and log paths; queued -> running -> finished, 0."""
    kw = dict(time_limit=120, memory_mb=400)
    cpus_echo = ""
    if batch.cpus_var:
        kw["cpus"] = 2
        cpus_echo = f" cpus=${{{batch.cpus_var}}}"
    spec = batch.spec(f'echo "value=$BM_VALUE pwd=$(pwd){cpus_echo}"; echo to-stderr >&2; sleep 1', "ok",
                      env={"BM_VALUE": "a,b c"}, **kw)
    job_id = batch.backend.submit(spec)
    assert job_id
    info, seen = batch.wait(spec.name, job_id, finished, every=0.1)
    assert seen[0] in alive and RUNNING in seen, seen
    assert (info.name, info.job_id, info.exit_code, info.failure) == (spec.name, job_id, 0, "")
    want = f"value=a,b c pwd={spec.workdir}" + (" cpus=2" if batch.cpus_var else "")
    assert read_log(spec.stdout, want).splitlines()[0] == want
    assert read_log(spec.stderr, "to-stderr").strip() == "to-stderr"


def test_failing_job_finishes_with_its_exit_code(batch):
    spec = batch.spec("echo failing >&2; exit 3", "exit3")
    job_id = batch.backend.submit(spec)
    info, _ = batch.wait(spec.name, job_id, finished)
    assert (info.job_id, info.exit_code, info.failure) == (job_id, 3, "exit-nonzero")
    assert "failing" in read_log(spec.stderr, "failing")


@pytest.mark.slow
def test_job_over_its_time_limit_is_a_timeout(batch):
    spec = batch.spec("echo start; sleep 300", "slow", **batch.timeout_kw)
    job_id = batch.backend.submit(spec)
    batch.wait(spec.name, job_id, running, timeout=60, every=0.1)
    batch.push_over_limit(job_id)
    info, _ = batch.wait(spec.name, job_id, finished, timeout=90, every=0.5)
    assert (info.job_id, info.failure) == (job_id, "timeout"), info


@pytest.mark.slow
def test_cancel_running_job_kills_its_processes(batch):
    token = f"61.{uuid.uuid4().int % 10**9}"          # a sleep nobody else runs
    spec = batch.spec(f"echo started; exec sleep {token}", "victim")
    job_id = batch.backend.submit(spec)
    batch.wait(spec.name, job_id, running, every=0.1)
    poll("job process started", lambda: processes_with_argv(["sleep", token]), 20, 0.1)
    batch.backend.cancel([job_id])
    info, _ = batch.wait(spec.name, job_id, gone, timeout=60)
    if info.state == FINISHED:
        assert info.failure == "cancelled", info
    poll("job process gone after cancel", lambda: not processes_with_argv(["sleep", token]), 20, 0.1,
         show=lambda: processes_with_argv(["sleep", token]))
    batch.backend.cancel([job_id])                   # already over: not an error
    batch.backend.cancel([])


def test_cancel_queued_job(batch):
    if batch.hold_args is None:
        pytest.skip(f"{batch.kind} cannot hold a job in the queue")
    spec = batch.held("held")
    job_id = batch.backend.submit(spec)
    info, _ = batch.wait(spec.name, job_id, lambda i: i.state == QUEUED)
    batch.backend.cancel([job_id])
    info, _ = batch.wait(spec.name, job_id, gone, timeout=30)
    if info.state == FINISHED:
        assert info.failure == "cancelled", info


# ------------------------------------------------------------------------------- finding jobs
def test_found_by_name_after_forgetting_the_id(batch):
    """A daemon that lost the id (crash between submit and recording it) finds the job by name."""
    spec = batch.spec("sleep 1", "adopt")
    job_id = batch.backend.submit(spec)
    forgetful = batch.fresh()                        # a restarted daemon: no memory at all
    info = forgetful.query({spec.name: ""})[spec.name]
    assert info.job_id == job_id and info.state in (*alive, FINISHED), info
    info, _ = batch.wait(spec.name, "", finished, backend=forgetful)
    assert (info.job_id, info.exit_code, info.failure) == (job_id, 0, "")
    never = batch.prefix + "never-submitted"
    assert forgetful.query({never: ""})[never].state == ABSENT


def test_list_ours_shows_foreign_jobs_under_our_prefix(batch):
    """Jobs under our name prefix that this daemon did not submit (another daemon's, a lost one)."""
    someone = batch.fresh()
    foreign = {someone.submit(s): s.name for s in (batch.held("foreign.1"), batch.held("foreign.2"))}
    someone.submit(batch.held("other.1"))
    listed = batch.backend.list_ours(batch.prefix + "foreign.")
    assert {j.job_id: j.name for j in listed} == foreign
    assert all(j.state in alive for j in listed), listed
    assert batch.backend.list_ours(batch.prefix + "nobody.") == []


# ------------------------------------------------------------------------------- faults and costs
def test_unreachable_is_transient_and_changes_nothing(batch):
    if batch.unreachable_na:
        pytest.skip(batch.unreachable_na)
    kept = batch.held("kept")
    kept_id = batch.backend.submit(kept)
    before = batch.wait(kept.name, kept_id, lambda i: i.state in alive)[0]
    new = batch.held("during-outage")
    with batch.unreachable() as down:
        for what, call in [("query", lambda: down.query({kept.name: kept_id, new.name: ""})),
                           ("submit", lambda: down.submit(new)),
                           ("list_ours", lambda: down.list_ours(batch.prefix)),
                           ("cancel", lambda: down.cancel([kept_id]))]:
            with pytest.raises(BackendUnavailable):
                call()
                pytest.fail(f"{batch.kind}: {what} did not raise BackendUnavailable")
    after = batch.backend.query({kept.name: kept_id, new.name: ""})
    assert (after[kept.name].job_id, after[kept.name].state) == (kept_id, before.state)
    assert after[new.name].state == ABSENT
    assert {j.job_id for j in batch.backend.list_ours(batch.prefix)} == {kept_id}


def test_query_of_many_jobs_runs_a_bounded_number_of_commands(batch, monkeypatch):
    """One queue query plus at most one accounting query, whatever the number of jobs."""
    specs = [batch.held(f"many.{k}") for k in range(10)]
    ids = [batch.backend.submit(s) for s in specs]
    asked = {s.name: i for s, i in zip(specs, ids)}
    ghosts = {f"{batch.prefix}ghost.{k}": "" for k in range(5)}
    ghosts.update({f"{batch.prefix}ghost.{k}": str(99999900 + k) for k in range(5, 10)})
    if batch.runner is None:
        # a backend without a runner must not run anything at all
        def no_commands(*a, **kw):
            raise AssertionError(f"{batch.kind}: query ran a command: {a}")
        monkeypatch.setattr(subprocess, "Popen", no_commands)
        monkeypatch.setattr(subprocess, "run", no_commands)
    for what, jobs in [("by id", asked), ("by name", dict.fromkeys(asked, "")),
                       ("with unknown ones", {**asked, **ghosts})]:
        n = batch.commands()
        got = batch.backend.query(jobs)
        ran = batch.commands() - n
        assert ran <= 2, f"{what}: {ran} commands: {[r.argv[:3] for r in batch.runner.records[n:]]}"
        if batch.runner is not None:
            assert ran >= 1
        assert set(got) == set(jobs)
        assert [got[s.name].job_id for s in specs] == ids
        assert all(got[s.name].state in alive for s in specs), \
            f"{what}: {[(got[s.name].state, got[s.name].native_state, got[s.name].reason) for s in specs]}"
        assert all(got[g].state == ABSENT for g in ghosts if g in jobs)
    monkeypatch.undo()
