"""util/procs.pid_alive: a process started a moment ago is alive and ours, though its command line
is not set up yet (the local batch system's runner was answered "lost" so: a flaky contract test,
test_submit_with_name_resources_and_logs_runs_to_exit_0[local], in CI)."""

import os
import subprocess
import sys
import time

from batchman.util import procs


def test_a_process_just_started_is_alive_with_its_command_line():
    for _ in range(30):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)", "--marker-of-this-test"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, close_fds=True)
        try:
            assert procs.pid_alive(p.pid, "--marker-of-this-test")      # (its cmdline read at once: often empty)
        finally:
            p.kill()
            p.wait()


def test_a_process_is_not_ours_without_the_needle_and_a_zombie_is_not_alive():
    assert procs.pid_alive(os.getpid()) and not procs.pid_alive(os.getpid(), "no such needle in pytest's line")
    p = subprocess.Popen(["true"])
    time.sleep(0.3)                       # ended, not reaped: a zombie
    try:
        assert not procs.pid_alive(p.pid) and not procs.pid_alive(p.pid, "true")
    finally:
        p.wait()


def test_a_kernel_thread_is_not_waited_for():
    t = time.monotonic()
    assert not procs.pid_alive(2, "anything")         # kthreadd: an empty command line for ever
    assert time.monotonic() - t < procs.EXEC_WAIT / 2
