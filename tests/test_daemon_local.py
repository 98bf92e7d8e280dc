"""The daemon end to end with the local backends: real processes, real files."""

import os
import signal

import pytest

from batchman.core import states as S

from e2e_helpers import daemon, daemon_run, env_for, job_starts, make_experiment, wait_for

pytestmark = pytest.mark.slow


def states(e):
    return {t.run: t.state for t in e.store.read().tasks}


def test_runs_complete_within_the_concurrency_limit_and_the_daemon_exits(tmp_path):
    e = make_experiment(tmp_path, range(1, 9), segments=2, **{"batch.local_slots": 2, "staging.local_delay": 0.05})
    r = daemon_run(tmp_path, "verbose", env=env_for(tmp_path, SLEEP=0.5))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing left to track" in r.stdout
    assert set(states(e).values()) == {S.COMPLETED}
    # at most 2 analyses at once, from their own start/end stamps
    events = []
    for line in open(tmp_path / "jobs.log"):
        task, att, pid, what, t = line.split()
        events.append((float(t), 1 if what == "start" else -1))
    running = peak = 0
    for _, d in sorted(events):
        running += d
        peak = max(peak, running)
    assert peak == 2
    st = e.store.read()
    assert st.daemons == []                                  # unregistered on exit
    assert all(not os.path.exists(os.path.join(tmp_path, "cache", f"run_{r}.dat.0")) for r in range(1, 9))  # released
    assert all(t.analysed == 2 and t.exit_code == 0 for t in st.tasks)


def test_failing_job_is_failed_with_exit_code_and_its_files_kept(tmp_path):
    e = make_experiment(tmp_path, [1, 2])
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path, FAIL_RUNS="2"))
    assert r.returncode == 0, r.stdout
    t = {t.run: t for t in e.store.read().tasks}
    assert t[1].state == S.COMPLETED and t[2].state == S.FAILED and t[2].exit_code == 3
    assert os.path.exists(tmp_path / "cache" / "run_2.dat.0")     # release_failed_files is off


def test_auto_restart_with_cap(tmp_path):
    e = make_experiment(tmp_path, [5], **{"policies.auto_restart_failed": True, "policies.max_auto_restarts": 2})
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path, FAIL_RUNS="5"))
    assert r.returncode == 0
    t = e.store.read().tasks[0]
    assert t.state == S.FAILED and t.auto_restarts == 2 and t.attempt == 3 and len(t.past) == 2
    assert job_starts(tmp_path) == {("5.analysis", 1): 1, ("5.analysis", 2): 1, ("5.analysis", 3): 1}


def test_missing_job_command_stages_nothing_says_so_once_and_goes_on_once_it_is_there(tmp_path):
    # Issue 16: the daemon kept staging data for runs it could not submit. Now nothing is
    # staged for them, the daemon says so once (not every iteration), each task says why,
    # and once the command is there the runs go through.
    e = make_experiment(tmp_path, [1, 2, 3], **{"batch.command": "./no-such-analysis {run} {files}",
                                              "staging.local_delay": 0.05})
    r = daemon_run(tmp_path, "verbose")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing left to track" in r.stdout
    # a daemon kept running (--forever) says it once, not every iteration
    d = daemon(tmp_path, "verbose", "--forever")
    try:
        wait_for(lambda: any(x.iterations >= 4 for x in e.store.read().daemons), 60, what="4 iterations")
    finally:
        d.terminate()
        out, _ = d.communicate(timeout=30)
    said = [ln for ln in out.splitlines() if "no data is staged" in ln]
    assert len(said) == 1 and "no-such-analysis does not exist" in said[0] and "3 waiting run(s)" in said[0], out
    assert out.count("iteration done") >= 4
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.UNSTAGED}
    assert all("not staged: the job command" in t.reason and "no-such-analysis" in t.reason for t in st.tasks)
    assert not os.path.isdir(tmp_path / "cache") or os.listdir(tmp_path / "cache") == []    # nothing staged
    os.symlink("analyze", tmp_path / "no-such-analysis")
    r = daemon_run(tmp_path, "verbose", env=env_for(tmp_path, SLEEP=0.05))
    assert r.returncode == 0, r.stdout + r.stderr
    assert {t.state for t in e.store.read().tasks} == {S.COMPLETED}


def test_job_keeps_running_across_a_daemon_restart_and_its_exit_is_collected(tmp_path):
    e = make_experiment(tmp_path, [1])
    go = tmp_path / "go"                   # the job runs until then (it slept 3 s)
    env = env_for(tmp_path, GO=go, SLEEP=0.1)
    d = daemon(tmp_path, "loop", env=env)
    try:
        wait_for(lambda: states(e)[1] == S.RUNNING, 30)
        d.send_signal(signal.SIGKILL)
        d.wait()
    finally:
        go.write_text("go\n")
    # the job ends while no daemon runs: its wrapper writes the exit marker
    wait_for(lambda: list(tmp_path.glob(".batchman/attempts/*/exit")), 30, what="the job's exit marker",
             show=lambda: job_starts(tmp_path))
    assert states(e)[1] == S.RUNNING
    r = daemon_run(tmp_path, "loop", env=env)
    assert r.returncode == 0
    t = e.store.read().tasks[0]
    assert t.state == S.COMPLETED and t.exit_code == 0
    assert job_starts(tmp_path) == {("1.analysis", 1): 1}


def test_sigterm_ends_the_daemon_cleanly(tmp_path):
    e = make_experiment(tmp_path, [1, 2])
    d = daemon(tmp_path, "loop", "--forever", env=env_for(tmp_path, SLEEP=0.2))
    wait_for(lambda: set(states(e).values()) == {S.COMPLETED}, 60)
    d.send_signal(signal.SIGTERM)
    out, _ = d.communicate(timeout=30)
    assert d.returncode == 0, out
    assert not e.store.is_locked()
    assert e.store.read().daemons == []


def test_kill_and_restart_of_a_running_job(tmp_path):
    e = make_experiment(tmp_path, [1])
    env = env_for(tmp_path, SLEEP=30)
    d = daemon(tmp_path, "loop", "--forever", env=env)
    try:
        wait_for(lambda: states(e)[1] == S.RUNNING, 30)
        from batchman import actions
        actions.queue_request(e.store, {"1.analysis"}, "kill")
        wait_for(lambda: states(e)[1] == S.ABORTED, 30)
        t = e.store.read().tasks[0]
        assert t.killed_in == S.RUNNING
        # the job's process is gone
        pid = int(open(tmp_path / ".batchman" / "attempts" / t.job_name / "local.pid").read())
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", 15)
        assert not os.path.exists(tmp_path / "cache" / "run_1.dat.0")   # released
    finally:
        d.send_signal(signal.SIGTERM)
        d.communicate(timeout=30)


def test_oneshot_prints_what_it_did_and_quietone_is_silent(tmp_path):
    make_experiment(tmp_path, [1])
    r = daemon_run(tmp_path, "oneshot")
    assert "1 analysis: new -> unstaged" in r.stdout and "iteration done" in r.stdout
    r = daemon_run(tmp_path, "quietone")
    assert r.stdout == "" and r.returncode == 0


def test_corrupt_status_file_stops_the_daemon_with_a_pointer_to_the_backup(tmp_path):
    make_experiment(tmp_path, [1])
    daemon_run(tmp_path, "quietone")
    (tmp_path / "status.json").write_text("{not json")
    r = daemon_run(tmp_path, "oneshot")
    assert r.returncode == 1 and "status.json.bak" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "status.json").read_text() == "{not json"


def test_unknown_job_is_listed_and_adopted(tmp_path):
    """A job of ours that the status file lost (e.g. restored from an old backup) is found and taken in."""
    from click.testing import CliRunner
    from batchman.cli.commands import main
    e = make_experiment(tmp_path, [1, 2])
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path, SLEEP=0.2))
    assert r.returncode == 0
    st = e.store.read()
    # start a job under our name pattern that the file does not know: run 3, attempt 1
    from batchman.backends.batch.local import LocalBatch
    from batchman.backends.base import JobSpec
    name = f"bm.{st.store_id}.3.analysis.1"
    script = tmp_path / "lost.sh"
    script.write_text("sleep 30\n")
    lb = LocalBatch(str(tmp_path / ".batchman" / "attempts"))
    jid = lb.submit(JobSpec(name=name, script=str(script), workdir=str(tmp_path), stdout=str(tmp_path / "o"),
                            stderr=str(tmp_path / "e"), attempt_dir=str(tmp_path / ".batchman" / "attempts" / name)))
    try:
        wait_for(lambda: lb.query({name: jid})[name].state in ("queued", "running"), 10)
        r = daemon_run(tmp_path, "oneshot")
        assert f"unknown job {name}" in r.stdout
        out = CliRunner().invoke(main, ["-C", str(tmp_path), "list", "--unknown"]).output
        assert name in out
        out = CliRunner().invoke(main, ["-C", str(tmp_path), "adopt", name]).output
        assert "adopted 1 job(s)" in out
        t = {t.run: t for t in e.store.read().tasks}[3]
        assert t.state == S.SUBMITTED and t.job_id == jid and e.store.read().unknown == []
        # the daemon follows it like any other: kill it
        CliRunner().invoke(main, ["-C", str(tmp_path), "kill", "3"])
        daemon_run(tmp_path, "loop")
        assert {t.run: t for t in e.store.read().tasks}[3].state == S.ABORTED
    finally:
        lb.cancel([jid])


def test_purge_of_many_tasks_passes_the_shrink_guard_and_releases(tmp_path):
    e = make_experiment(tmp_path, range(1, 31), segments=1, **{"batch.local_slots": 4})
    assert daemon_run(tmp_path, "loop", env=env_for(tmp_path, SLEEP=0.05, FAIL_RUNS="1 2")).returncode == 0
    from batchman import actions
    assert actions.queue_request(e.store, {t.key for t in e.store.read().tasks}, "purge") == 30
    r = daemon_run(tmp_path, "oneshot")
    assert r.returncode == 0, r.stdout + r.stderr
    assert e.store.read().tasks == []
    assert not any((tmp_path / "cache").glob("run_*"))     # the failed runs' kept files were released


def test_pause_hold_skip_from_the_command_line(tmp_path):
    from click.testing import CliRunner
    from batchman.cli.commands import main
    e = make_experiment(tmp_path, [1, 2, 3, 4])

    def cli(*a):
        r = CliRunner().invoke(main, ["-C", str(tmp_path), *a])
        assert r.exit_code == 0, r.output
        return r.output
    assert "paused" in cli("pause")
    assert "PAUSED" in cli("list")
    for _ in range(3):
        daemon_run(tmp_path, "quietone")
    assert {t.state for t in e.store.read().tasks} <= {S.NEW, S.UNSTAGED}    # nothing staged or submitted
    cli("resume")
    cli("hold", "2")
    cli("skip", "3", "--reason", "HV trip")
    assert "[held]" in cli("list")
    r = daemon_run(tmp_path, "loop", timeout=60)
    assert "nothing left to track" in r.stdout        # a held task waits for a person, not the daemon
    st = {t.run: t for t in e.store.read().tasks}
    assert st[1].state == S.COMPLETED and st[4].state == S.COMPLETED
    assert st[3].state == S.SKIPPED and "HV trip" in cli("show", "3")
    assert st[2].state in (S.NEW, S.UNSTAGED) and st[2].held
    cli("release", "2")
    daemon_run(tmp_path, "loop")
    assert {t.run: t.state for t in e.store.read().tasks}[2] == S.COMPLETED


def test_a_daemon_leaving_with_no_job_in_flight_clears_the_unreachable_banner(tmp_path):
    from batchman.backends.factory import make_batch, make_staging
    from batchman.daemon.engine import Engine
    e = make_experiment(tmp_path, [1])
    assert daemon_run(tmp_path, "loop").returncode == 0
    with e.store.transaction("t") as st:
        st.batch_unreachable_since, st.batch_next_try, st.batch_last_error = 1.0, 2.0, "squeue: timed out"
    Engine(e.params, e.store, make_batch(e.params), make_staging(e.params)).unregister()
    st = e.store.read()
    assert st.batch_unreachable_since is None and st.batch_next_try is None
    assert st.batch_last_error == "squeue: timed out"      # kept on record
