"""The LSF backend against the LSF test double put first on PATH (see conftest.py)."""

from __future__ import annotations

import time

import pytest

from batchman.backends.base import (
    ABSENT,
    FINISHED,
    QUEUED,
    RUNNING,
    BackendUnavailable,
    Rejected,
    Runner,
)
from batchman.backends.batch.lsf import LsfBackend


def finished(*names):
    return lambda r: all(r[n].state == FINISHED for n in names)


def test_submit_pend_run_done(lsf, backend, make_spec, wait_for):
    lsf.setenv("LSF_DOUBLE_SLOTS", 1)
    a = make_spec("bm.s.1.a.1", "sleep 1.5\ntouch ran-a")
    b = make_spec("bm.s.1.b.1", 'echo "$BM_TOKEN $BM_COMMA" > env.txt\npwd > cwd.txt',
                  env={"BM_TOKEN": "t0ken", "BM_COMMA": "x,y"}, time_limit=600, memory_mb=100, cpus=1,
                  queue="normal", account="alcap")
    ida, idb = backend.submit(a), backend.submit(b)
    assert ida.isdigit() and int(idb) > int(ida)
    jobs = {a.name: ida, b.name: idb}

    r = wait_for(backend, jobs, lambda r: r[a.name].state == RUNNING)
    assert r[b.name].state == QUEUED and r[b.name].native_state == "PEND"
    assert r[b.name].reason           # LSF's pending reason, for people
    assert r[a.name].node

    r = wait_for(backend, jobs, finished(a.name, b.name))
    for n in jobs:
        assert (r[n].exit_code, r[n].failure, r[n].native_state) == (0, "", "DONE")
    bdir = lsf.dir.parent / b.name
    assert (bdir / "env.txt").read_text().strip() == "t0ken x,y"
    assert (bdir / "cwd.txt").read_text().strip() == str(bdir)
    assert (lsf.dir.parent / a.name / "ran-a").exists()
    argv = lsf.calls("bsub")[1]["argv"]
    assert argv[argv.index("-W") + 1] == "10" and argv[argv.index("-M") + 1] == "100MB"
    assert argv[argv.index("-P") + 1] == "alcap" and argv[argv.index("-q") + 1] == "normal"


def test_env_that_bsub_env_cannot_carry_goes_on_stdin(lsf, backend, make_spec, wait_for):
    s = make_spec("bm.s.2.a.1", 'printf "%s" "$BM_Q" > q.txt', env={"BM_Q": "it's \"$quoted\"\nx"})
    jid = backend.submit(s)
    wait_for(backend, {s.name: jid}, finished(s.name))
    assert (lsf.dir.parent / s.name / "q.txt").read_text() == "it's \"$quoted\"\nx"


def test_exit_code_3(lsf, backend, make_spec, wait_for):
    s = make_spec("bm.s.3.a.1", "echo failing >&2\nexit 3")
    jid = backend.submit(s)
    r = wait_for(backend, {s.name: jid}, finished(s.name))[s.name]
    assert (r.state, r.native_state, r.exit_code, r.failure) == (FINISHED, "EXIT", 3, "exit-nonzero")
    assert "failing" in (lsf.dir.parent / s.name / "err.log").read_text()


def test_run_limit_kill_is_timeout(lsf, backend, make_spec, wait_for):
    s = make_spec("bm.s.4.a.1", "sleep 30", time_limit=60)    # one "minute" = 1 s here
    jid = backend.submit(s)
    r = wait_for(backend, {s.name: jid}, finished(s.name))[s.name]
    assert (r.failure, r.exit_code) == ("timeout", 140)
    assert r.reason.startswith("TERM_RUNLIMIT")


def test_bkill_running_and_pending_is_cancelled(lsf, backend, make_spec, wait_for):
    lsf.setenv("LSF_DOUBLE_SLOTS", 1)
    run = make_spec("bm.s.5.a.1", "sleep 30")
    pend = make_spec("bm.s.5.b.1", "sleep 30")
    jobs = {run.name: backend.submit(run), pend.name: backend.submit(pend)}
    wait_for(backend, jobs, lambda r: r[run.name].state == RUNNING)
    backend.cancel(list(jobs.values()))
    r = wait_for(backend, jobs, finished(run.name, pend.name))
    for n in jobs:
        assert r[n].failure == "cancelled" and r[n].reason.startswith("TERM_OWNER")
    backend.cancel(list(jobs.values()))      # already finished: not an error
    backend.cancel(["999999"])               # unknown: not an error
    backend.cancel([])


def test_held_job_is_queued(lsf, backend, make_spec):
    s = make_spec("bm.s.6.a.1", "true", extra_args=["-H"])
    jid = backend.submit(s)
    r = backend.query({s.name: jid})[s.name]
    assert (r.state, r.native_state) == (QUEUED, "PSUSP") and "held" in r.reason
    backend.cancel([jid])


def test_find_by_name_after_forgetting_id(lsf, backend, make_spec, wait_for):
    s = make_spec("bm.s.7.a.1", "sleep 0.3")
    jid = backend.submit(s)
    r = backend.query({s.name: "", "bm.s.7.never.1": ""})
    assert r[s.name].job_id == jid and r[s.name].state in (QUEUED, RUNNING, FINISHED)
    assert r["bm.s.7.never.1"].state == ABSENT
    r = wait_for(backend, {s.name: ""}, finished(s.name))
    assert r[s.name].job_id == jid and r[s.name].exit_code == 0


def test_list_ours(lsf, backend, make_spec):
    ours = [make_spec(f"bm.store.8.j{i}.1", "sleep 2") for i in range(2)]
    other = make_spec("someone-else", "sleep 2")
    ids = {backend.submit(s) for s in ours}
    backend.submit(other)
    found = backend.list_ours("bm.store.")
    assert {j.job_id for j in found} == ids
    assert all(j.name.startswith("bm.store.") for j in found)
    assert backend.list_ours("bm.nothing.") == []


def test_unknown_queue_is_rejected_with_lsf_message(lsf, backend, make_spec):
    with pytest.raises(Rejected, match="No such queue. Job not submitted"):
        backend.submit(make_spec("bm.s.9.a.1", "true", queue="nosuchq"))
    lsf.fault("bsub:reject")
    with pytest.raises(Rejected, match="No such queue"):
        backend.submit(make_spec("bm.s.9.b.1", "true"))


@pytest.mark.parametrize("mode", ["down", "noconnect"])
def test_unreachable_is_unavailable(lsf, backend, make_spec, mode, wait_for):
    s = make_spec("bm.s.10.a.1", "true")
    jid = backend.submit(s)
    lsf.fault(mode)
    for call in (lambda: backend.query({s.name: jid}), lambda: backend.submit(s),
                 lambda: backend.cancel([jid]), lambda: backend.list_ours("bm."),
                 lambda: backend.details(jid)):
        with pytest.raises(BackendUnavailable, match="LSF"):
            call()
    lsf.fault("")
    assert wait_for(backend, {s.name: jid}, finished(s.name))[s.name].exit_code == 0


def test_hang_past_runner_timeout_is_unavailable(lsf, make_spec):
    backend = LsfBackend(Runner(timeout=1))
    lsf.fault("bjobs:hang")
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match="timed out"):
        backend.query({"bm.s.11.a.1": "101"})
    assert time.monotonic() - t0 < 5
    lsf.fault("bjobs:slow=0.2")            # slow but within the timeout: answers
    patient = LsfBackend(Runner(timeout=10))   # the double's own start-up can take 1 s under load
    assert patient.query({"bm.s.11.a.1": "101"})["bm.s.11.a.1"].state == ABSENT


def test_query_of_20_jobs_runs_at_most_2_commands(lsf, runner, backend, make_spec):
    lsf.setenv("LSF_DOUBLE_SLOTS", 8)
    specs = [make_spec(f"bm.s.12.j{i:02d}.1", f"exit {i % 3}") for i in range(20)]
    jobs = {s.name: backend.submit(s) for s in specs[:10]}
    lsf.wait_all_finished()
    time.sleep(2.0)
    jobs.update({s.name: backend.submit(s) for s in specs[10:]})
    lsf.wait_all_finished()
    # the first ten fall out of bjobs' memory (CLEAN_PERIOD) and must come from bhist
    lsf.setenv("LSF_DOUBLE_CLEAN_PERIOD", 1.2)
    n_records, n_calls = len(runner.records), len(lsf.calls())
    r = backend.query(jobs)
    assert len(runner.records) - n_records <= 2
    assert len(lsf.calls()) - n_calls <= 2
    assert [c["cmd"] for c in lsf.calls()[n_calls:]] == ["bjobs", "bhist"]
    for i, s in enumerate(specs):
        assert r[s.name].state == FINISHED and r[s.name].job_id == jobs[s.name]
        assert r[s.name].exit_code == i % 3
        assert r[s.name].failure == ("" if i % 3 == 0 else "exit-nonzero")
    # while bjobs still knows them all: exactly one command
    lsf.setenv("LSF_DOUBLE_CLEAN_PERIOD", 3600)
    n_records = len(runner.records)
    backend.query(jobs)
    assert len(runner.records) - n_records == 1


def test_forgotten_by_bhist_too_is_absent(lsf, backend, make_spec):
    s = make_spec("bm.s.13.a.1", "true")
    jid = backend.submit(s)
    lsf.wait_all_finished()
    time.sleep(0.3)
    lsf.setenv("LSF_DOUBLE_CLEAN_PERIOD", 0.1)
    lsf.setenv("LSF_DOUBLE_HISTORY_PERIOD", 0.1)
    r = backend.query({s.name: jid, "bm.s.13.x.1": "424242"})
    assert r[s.name].state == ABSENT and r["bm.s.13.x.1"].state == ABSENT


def test_plain_output_form(lsf, runner, make_spec, wait_for):
    backend = LsfBackend(runner, json_output=False)
    s = make_spec("bm.s.14.a.1", "exit 2")
    jid = backend.submit(s)
    r = wait_for(backend, {s.name: jid}, finished(s.name))[s.name]
    assert (r.exit_code, r.failure) == (2, "exit-nonzero")
    assert "-noheader" in runner.records[-1].argv


def test_details_uses_bjobs_l(lsf, backend, make_spec):
    s = make_spec("bm.s.15.a.1", "true")
    jid = backend.submit(s)
    text = backend.details(jid)
    assert f"Job <{jid}>" in text and s.name in text
    assert backend.details("999999").strip()       # unknown: LSF's message, not an exception


def test_double_never_signals_a_pid_it_did_not_start(lsf, backend, make_spec, wait_for):
    """A recorded pid/process group that now belongs to another process (pid reuse) is left alone:
    bkill, the run limit and the fixture's clean-up signal only verified processes of the job."""
    import os
    import subprocess
    s = make_spec("bm.s.16.a.1", "exec sleep 30.16")
    jid = backend.submit(s)
    wait_for(backend, {s.name: jid}, lambda r: r[s.name].state == RUNNING)
    decoy = subprocess.Popen(["sleep", "300"], start_new_session=True)   # its own group, pgid == pid
    try:
        with lsf.edit_state() as st:
            st["jobs"][jid].update(pid=decoy.pid, pgid=decoy.pid)         # as if the pid were reused
        backend.cancel([jid])
        r = wait_for(backend, {s.name: jid}, finished(s.name))[s.name]
        assert r.failure == "cancelled"
        lsf.cleanup()
        assert decoy.poll() is None, "the double killed a process it did not start"
        for p in (p for p in os.listdir("/proc") if p.isdigit()):         # the job's own sleep is gone
            try:
                cmdline = open(f"/proc/{p}/cmdline", "rb").read()
            except OSError:
                continue
            assert cmdline != b"sleep\x0030.16\x00", f"job process {p} survived bkill"
    finally:
        decoy.kill()
        decoy.wait()
