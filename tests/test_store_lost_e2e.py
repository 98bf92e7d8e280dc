"""Issue 15.2 with real processes: status.json and its backup deleted under a running daemon."""

import glob
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from batchman.cli.commands import main
from batchman.core import states as S
from batchman.store.lock import Lock

from e2e_helpers import daemon_run, env_for, job_starts, make_experiment, wait_for

pytestmark = pytest.mark.slow


def test_status_and_backup_deleted_under_a_running_daemon(tmp_path):
    runs = list(range(1, 7))
    e = make_experiment(tmp_path, runs, segments=1, **{"batch.local_slots": 2})
    # The jobs run until the go file is there, written once this daemon is gone: they are in
    # the batch system while the files are deleted, and then end at once (the local backend keeps
    # all six with the first daemon's environment: with SLEEP=3, the last daemon waited ~9 s).
    go = tmp_path / "go"
    env = env_for(tmp_path, GO=go, SLEEP=0.1)
    d = subprocess.Popen([sys.executable, "-m", "batchman.daemon", "-C", str(tmp_path), "loop"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: sum(t.state in S.IN_BATCH for t in e.store.read().tasks) >= 2, 60)
        sid = e.store.read().store_id
        # Under the lock: the daemon writes only while it holds it, so it is not between its
        # "is the file still there" and its rename (a file deleted in that instant is rewritten
        # whole from the daemon's memory, which loses nothing but is not the case tested here).
        with Lock(str(tmp_path / "status.json"), 30).held("test"):
            os.unlink(tmp_path / "status.json")
            os.unlink(tmp_path / "status.json.bak")
        out, err = d.communicate(timeout=60)
    finally:
        d.kill()
        go.write_text("go\n")
    assert d.returncode not in (0, None), out + err
    assert "batchman recover" in err and "missing" in err and "Traceback" not in err
    assert not (tmp_path / "status.json").exists()             # no new file, no new store id
    notes = glob.glob(str(tmp_path / "status.json.daemon-*.txt"))
    lasts = glob.glob(str(tmp_path / "status.json.daemon-*.last"))
    assert len(notes) == 1 and "batchman recover" in open(notes[0]).read()
    assert len(lasts) == 1 and lasts[0] in err
    # a command other than recover does not take the missing file as "no tasks"
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "add", "99"])
    assert r.exit_code != 0 and "batchman recover" in r.output
    assert not (tmp_path / "status.json").exists()
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "recover"])            # no --force needed
    assert r.exit_code == 0, r.output
    assert "recovered 6 task(s)" in r.output and lasts[0] in r.output
    st = e.store.read()
    assert st.store_id == sid and sorted(t.run for t in st.tasks) == runs
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path, SLEEP=0.1), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {t.state for t in e.store.read().tasks} == {S.COMPLETED}
    assert all(n == 1 for n in job_starts(tmp_path).values())
