"""Recovery from nothing: the status file and its backup lost mid-production (issue 10)."""

import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from batchman.core import states as S
from batchman.cli.commands import main

from e2e_helpers import daemon, daemon_run, env_for, job_starts, make_experiment, wait_for

pytestmark = pytest.mark.slow


def test_recover_mid_production_every_run_completes_exactly_once(tmp_path):
    runs = list(range(1, 201))
    # No pacing (batch.submit_rate, staging.request_rate: added after this test, at 2/s they set its
    # pace, 85 s): every run goes at once, as when the test was written.
    e = make_experiment(tmp_path, runs, segments=1, **{"batch.local_slots": 2, "batch.max_submit_per_iteration": 0,
                                                       "staging.max_requests_per_iteration": 0,
                                                       "batch.submit_rate": 0.0, "staging.request_rate": 0.0})
    env = env_for(tmp_path, SLEEP=0.05)
    d = daemon(tmp_path, "loop", env=env)
    wait_for(lambda: sum(t.state == S.COMPLETED for t in e.store.read().tasks) >= 40, 120)
    d.send_signal(signal.SIGKILL)
    d.communicate()
    for p in ("status.json", "status.json.bak"):
        os.unlink(tmp_path / p)
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "recover"])
    assert r.exit_code == 0, r.output
    assert "recovered 200 task(s)" in r.output and "not recovered:" in r.output
    r = daemon_run(tmp_path, "loop", env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    st = e.store.read()
    assert sorted(t.run for t in st.tasks) == runs
    assert {t.state for t in st.tasks} == {S.COMPLETED}
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in runs}


def test_recover_refuses_a_readable_file(tmp_path):
    make_experiment(tmp_path, [1])
    daemon_run(tmp_path, "quietone")
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "recover"])
    assert r.exit_code == 1 and "nothing to recover" in r.output


def test_sigkill_during_recover_leaves_the_originals_untouched(tmp_path):
    e = make_experiment(tmp_path, [1, 2])
    daemon_run(tmp_path, "loop", env=env_for(tmp_path, SLEEP=0.05))
    daemon_run(tmp_path, "quietone")
    (tmp_path / "status.json").write_bytes(b'{"schema": 1, "tas')       # unreadable
    before = {p: (tmp_path / p).read_bytes() for p in ("status.json", "status.json.bak")}
    r = subprocess.run([sys.executable, "-m", "batchman.cli", "-C", str(tmp_path), "recover"],
                       env={**os.environ, "BATCHMAN_CRASH_AT": "recover-before-write"}, capture_output=True)
    assert r.returncode == -signal.SIGKILL
    assert {p: (tmp_path / p).read_bytes() for p in before} == before
    assert not e.store.is_locked()
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "recover"])
    assert r.exit_code == 0, r.output
    assert {t.run for t in e.store.read().tasks} == {1, 2}
    kept = sorted(tmp_path.glob("status.json.unreadable-*"))
    assert kept and kept[0].read_bytes() == before["status.json"]
