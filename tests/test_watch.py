"""daemon.watch + the job script's done file: real job scripts run by bash, one listing per check."""

import os
import signal
import subprocess
import time

import pytest

from batchman.daemon import jobscript
from batchman.daemon.watch import DoneWatcher


def make_job(tmp_path, name: str, shell: str, done: bool = True, workdir: str | None = None) -> str:
    """Write the real job script for attempt ``name`` running ``bash -c shell``; return its path."""
    adir = str(tmp_path / "attempts" / name)
    text = jobscript.render(command=["bash", "-c", shell], args=[], env={"BATCHMAN_TASK": name},
                            attempt_dir=adir, workdir=workdir or str(tmp_path), title=name,
                            done_file=str(tmp_path / "done" / name) if done else "")
    path = os.path.join(adir, "job.sh")
    jobscript.write(path, text)
    return path


def run(path: str) -> int:
    return subprocess.run(["bash", path], capture_output=True, timeout=30).returncode


def test_finished_jobs_are_found_by_one_listing_each_check(tmp_path):
    w = DoneWatcher(str(tmp_path / "done"))
    assert w.check() == []                                   # no directory yet: nothing, no error
    for name, code in (("bm-1-a-1", 0), ("bm-2-a-1", 3)):
        assert run(make_job(tmp_path, name, f"exit {code}")) == code
    assert w.check() == ["bm-1-a-1", "bm-2-a-1"]
    assert w.check() == []                                   # compared with the last listing
    assert run(make_job(tmp_path, "bm-3-a-1", "true")) == 0
    assert w.check() == ["bm-3-a-1"]
    assert w.listings == 4
    # the done file comes after the exit marker: a reader woken by it finds the exit code
    assert jobscript.read_exit(str(tmp_path / "attempts" / "bm-2-a-1")) == 3
    assert os.path.getsize(tmp_path / "done" / "bm-2-a-1") == 0


def test_check_lists_and_never_stats(tmp_path, monkeypatch):
    for i in range(20):
        run(make_job(tmp_path, f"bm-{i}-a-1", "true"))
    w = DoneWatcher(str(tmp_path / "done"))
    calls = []
    real_listdir = os.listdir

    def listdir(p):
        calls.append(p)
        return real_listdir(p)

    def no_stat(*a, **k):
        raise AssertionError("stat called")

    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "stat", no_stat)
    monkeypatch.setattr(os, "lstat", no_stat)
    assert len(w.check()) == 20 and calls == [str(tmp_path / "done")]


def test_forget_removes_handled_files_and_a_restart_reports_the_rest(tmp_path):
    for n in ("bm-1-a-1", "bm-2-a-1"):
        run(make_job(tmp_path, n, "true"))
    w = DoneWatcher(str(tmp_path / "done"))
    assert w.check() == ["bm-1-a-1", "bm-2-a-1"]
    w.forget(["bm-1-a-1", "bm-9-gone-1"])                    # unknown names are fine
    assert sorted(os.listdir(tmp_path / "done")) == ["bm-2-a-1"]
    assert DoneWatcher(str(tmp_path / "done")).check() == ["bm-2-a-1"]   # a new daemon
    run(make_job(tmp_path, "bm-1-a-2", "true"))              # a retry: a new name
    assert w.check() == ["bm-1-a-2"]


def test_job_killed_by_term_and_job_that_cannot_start_also_leave_a_done_file(tmp_path):
    p = subprocess.Popen(["bash", make_job(tmp_path, "bm-5-a-1", "sleep 30")])
    adir = tmp_path / "attempts" / "bm-5-a-1"
    deadline = time.monotonic() + 10
    while not (adir / "started").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)                                           # the child is running
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 143
    assert run(make_job(tmp_path, "bm-6-a-1", "true", workdir=str(tmp_path / "missing"))) == 126
    assert DoneWatcher(str(tmp_path / "done")).check() == ["bm-5-a-1", "bm-6-a-1"]
    assert (adir / "killed").exists() and not (adir / "exit").exists()


def test_without_done_file_the_script_is_as_before(tmp_path):
    assert run(make_job(tmp_path, "bm-7-a-1", "exit 4", done=False)) == 4
    assert not (tmp_path / "done").exists()
    assert jobscript.read_exit(str(tmp_path / "attempts" / "bm-7-a-1")) == 4


def test_wait_returns_within_the_interval_of_a_job_end(tmp_path):
    w = DoneWatcher(str(tmp_path / "done"))
    w.ensure()
    p = subprocess.Popen(["bash", make_job(tmp_path, "bm-8-a-1", "sleep 0.5")])
    t0 = time.monotonic()
    got = w.wait(t0 + 20, interval=0.25)
    took = time.monotonic() - t0
    p.wait(timeout=10)
    assert got == ["bm-8-a-1"]
    assert 0.4 < took < 2.0, took
    assert w.listings <= took / 0.25 + 2                      # paced listings, not a busy loop


def test_wait_times_out_and_stops(tmp_path):
    w = DoneWatcher(str(tmp_path / "done"))
    t0 = time.monotonic()
    assert w.wait(t0 + 0.5, interval=0.1) == []
    assert 0.45 < time.monotonic() - t0 < 1.5
    t0 = time.monotonic()
    assert w.wait(t0 + 30, interval=0.1, stop=lambda: True) == []
    assert time.monotonic() - t0 < 0.5


# (interval, until, expected sleeps, expected listings) with a fake clock
@pytest.mark.parametrize("interval,until,sleeps,listings", [
    (1.0, 2.0, [0.2] * 10, 3),        # listings at 0, 1, 2; stop-flag ticks of 0.2 s between
    (0.0, 0.5, [0.2, 0.2, 0.1], 0),   # interval 0: no listing while waiting, just the sleep
])
def test_wait_paces_listings(tmp_path, monkeypatch, interval, until, sleeps, listings):
    import batchman.daemon.watch as W
    monkeypatch.setattr(W, "TICK", 0.2)
    t = [0.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 6))
        t[0] += s

    w = DoneWatcher(str(tmp_path / "nothing"))
    assert w.wait(until, interval, clock=lambda: t[0], sleep=sleep) == []
    assert ([s for s in slept if s > 1e-6], w.listings) == (sleeps, listings)   # float dust aside
