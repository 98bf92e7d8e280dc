"""The Grid Engine backend against the real one-node cluster (contrib/gridengine/start.sh).

Every test polls with a deadline (``wait_for``), never sleeps a fixed time. Job names carry a
per-test random prefix: the accounting file keeps every earlier run's jobs, and job ids may
repeat after an unclean qmaster restart.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from batchman.backends.base import (
    ABSENT, FINISHED, QUEUED, RUNNING, BackendUnavailable, JobInfo, Rejected, Runner,
)
from batchman.backends.batch.gridengine import GridEngineBackend

from clusterhelp import poll, wait_job

pytestmark = pytest.mark.gridengine


def wait_for(backend: GridEngineBackend, name: str, job_id: str, states: set[str],
             timeout: float = 30.0) -> tuple[JobInfo, list[str]]:
    """Query until the job is in one of ``states``; return its info and the states seen on the way."""
    return wait_job(backend, name, job_id, lambda i: i.state in states, timeout, every=0.2,
                    label=f"not yet {sorted(states)}")


def text(path: str) -> str:
    return Path(path).read_text() if os.path.exists(path) else ""


def test_job_runs_to_exit_0_with_its_environment(backend, make_spec):
    spec = make_spec("ok", 'echo "RUN=$RUN FILES=$FILES NOTE=$NOTE PWD=$PWD"; echo to-err >&2',
                     env={"RUN": "123", "FILES": "a.dat,b.dat", "NOTE": "two words"},
                     time_limit=120, memory_mb=500)
    job_id = backend.submit(spec)
    assert job_id.isdigit()
    info, seen = wait_for(backend, spec.name, job_id, {FINISHED})
    assert seen[0] in (QUEUED, RUNNING)
    assert (info.job_id, info.exit_code, info.failure) == (job_id, 0, "")
    assert info.node and info.node in (socket.gethostname(), "localhost")
    assert text(spec.stdout) == f"RUN=123 FILES=a.dat,b.dat NOTE=two words PWD={spec.workdir}\n"
    assert text(spec.stderr) == "to-err\n"


def test_cpus_use_the_parallel_environment(backend, make_spec):
    spec = make_spec("pe", 'echo "NSLOTS=$NSLOTS"', cpus=2, memory_mb=400)
    job_id = backend.submit(spec)
    info, _ = wait_for(backend, spec.name, job_id, {FINISHED})
    assert (info.exit_code, text(spec.stdout)) == (0, "NSLOTS=2\n")


def test_exit_3(backend, make_spec):
    spec = make_spec("exit3", "echo failing >&2; exit 3")
    job_id = backend.submit(spec)
    info, _ = wait_for(backend, spec.name, job_id, {FINISHED})
    assert (info.exit_code, info.failure, info.reason) == (3, "exit-nonzero", "exit status 3")
    assert text(spec.stderr) == "failing\n"


def test_over_time_limit(backend, make_spec):
    spec = make_spec("slow", "sleep 60", time_limit=2)
    job_id = backend.submit(spec)
    info, seen = wait_for(backend, spec.name, job_id, {FINISHED}, timeout=40)
    assert RUNNING in seen
    assert (info.failure, info.exit_code) == ("timeout", 137)
    assert "h_rt" in info.reason


def test_cancel_running_job(backend, make_spec):
    spec = make_spec("victim", "sleep 60")
    job_id = backend.submit(spec)
    wait_for(backend, spec.name, job_id, {RUNNING})
    backend.cancel([job_id])
    info, _ = wait_for(backend, spec.name, job_id, {FINISHED})
    assert info.failure == "cancelled"
    backend.cancel([job_id])                      # already gone: not an error


def test_cancel_queued_job_never_reaches_accounting(backend, make_spec):
    spec = make_spec("held", "true", extra_args=["-h"])          # held: stays queued
    job_id = backend.submit(spec)
    info, _ = wait_for(backend, spec.name, job_id, {QUEUED})
    assert (info.native_state, info.reason) == ("hqw", "held")
    backend.cancel([job_id])
    backend.accounting_lag = 0                    # do not wait for a record that never comes
    info, _ = wait_for(backend, spec.name, job_id, {ABSENT, FINISHED})
    assert info.state == ABSENT


def test_error_state_shows_the_reason(backend, make_spec, tmp_path):
    spec = make_spec("badwd", "true", workdir=str(tmp_path / "does-not-exist"))
    job_id = backend.submit(spec)
    info, _ = wait_job(backend, spec.name, job_id, lambda i: i.native_state == "Eqw", 30, 0.2,
                       label="never in Eqw")
    assert info.state == QUEUED
    assert "can't chdir to" in info.reason and "does-not-exist" in info.reason
    backend.cancel([job_id])
    info, _ = wait_for(backend, spec.name, job_id, {FINISHED})
    assert (info.failure, info.exit_code) == ("could-not-start", None)
    assert "changing into working directory" in info.reason


def test_find_by_name_after_forgetting_the_id(backend, make_spec):
    running = make_spec("adopt-running", "sleep 60")
    running_id = backend.submit(running)
    done = make_spec("adopt-done", "exit 4")
    done_id = backend.submit(done)
    wait_for(backend, running.name, running_id, {RUNNING})
    wait_for(backend, done.name, done_id, {FINISHED})

    forgetful = GridEngineBackend(Runner(timeout=30))          # a restarted daemon: no memory
    got = forgetful.query({running.name: "", done.name: "", running.name + "x": ""})
    assert (got[running.name].state, got[running.name].job_id) == (RUNNING, running_id)
    assert (got[done.name].state, got[done.name].job_id, got[done.name].exit_code) == (FINISHED, done_id, 4)
    assert got[running.name + "x"].state == ABSENT


def test_list_ours(backend, make_spec, prefix):
    ids = {backend.submit(make_spec(f"list{i}", "sleep 60")): prefix + f"list{i}" for i in range(3)}
    listed = backend.list_ours(prefix)
    assert {j.job_id: j.name for j in listed} == ids
    assert all(j.state in (QUEUED, RUNNING) for j in listed)
    assert backend.list_ours(prefix + "nothing") == []


@pytest.mark.parametrize("kw, message", [
    (dict(extra_args=["-l", "nonsense_resource=1"]), 'unknown resource "nonsense_resource"'),
    (dict(queue="nosuch.q"), 'unknown queue "nosuch.q"'),
    (dict(account="noproject"), 'project "noproject" does not exist'),
])
def test_rejected(backend, make_spec, kw, message):
    with pytest.raises(Rejected, match=message):
        backend.submit(make_spec("rejected", "true", **kw))


def test_unreachable_qmaster(make_spec, gridengine_cluster):
    # Clients honour SGE_QMASTER_PORT: a port nobody listens on is an unreachable qmaster,
    # without touching the running cluster.
    down = GridEngineBackend(Runner(timeout=30, env={"SGE_QMASTER_PORT": "1"}))
    with pytest.raises(BackendUnavailable, match="commlib error"):
        down.query({"bm.x": "1"})
    with pytest.raises(BackendUnavailable, match="qmaster"):
        down.submit(make_spec("unreachable", "true"))
    with pytest.raises(BackendUnavailable):
        down.list_ours("bm.")
    with pytest.raises(BackendUnavailable):
        down.cancel(["1"])
    assert subprocess.run(["qconf", "-sh"], capture_output=True).returncode == 0


def test_details(backend, make_spec):
    spec = make_spec("details", "sleep 60")
    job_id = backend.submit(spec)
    assert f"job_name:                   {spec.name}" in backend.details(job_id)
    wait_for(backend, spec.name, job_id, {RUNNING})
    backend.cancel([job_id])
    wait_for(backend, spec.name, job_id, {FINISHED})
    assert f"jobname      {spec.name}" in backend.details(job_id)     # from qacct once gone


def test_query_of_20_jobs_runs_at_most_2_commands(backend, runner, make_spec):
    jobs = {}
    for i in range(20):
        spec = make_spec(f"many{i:02d}", f"exit {i % 3}")
        jobs[spec.name] = backend.submit(spec)
    got = {}

    def all_finished():
        before = len(runner.records)
        got.update(backend.query(jobs))
        assert len(runner.records) - before <= 2, [r.argv for r in runner.records[before:]]
        return all(i.state == FINISHED for i in got.values())

    poll("all 20 jobs finished", all_finished, 90, 0.5,
         show=lambda: {n: (i.state, i.exit_code) for n, i in got.items() if i.state != FINISHED})
    assert {n: (i.state, i.exit_code) for n, i in got.items()} == \
        {n: (FINISHED, int(n[-2:]) % 3) for n in jobs}
