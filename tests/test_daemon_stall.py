"""A daemon whose round cannot be written waits and starts afresh (daemon/stall.py): a full disk,
on a real filesystem that fills up (a tmpfs of 2 MB in a mount namespace of the test's own:
tests/full_disk_scenario.py), and the status file's lock held past daemon.lock_timeout by
another process. Before, the daemon ended ("Error: No space left on device", "... is locked by
...") and the production stood still until a person came back."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from e2e_helpers import daemon, job_starts, make_experiment, read_until

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))


def namespaced() -> list[str]:
    """``unshare`` with a mount namespace of our own (a user namespace too: no root needed where
    the kernel allows it); skipped where neither works, except in CI."""
    why = "no unshare command (util-linux)"
    if shutil.which("unshare"):
        for cmd in (["unshare", "-rm"], ["unshare", "-m"]):
            r = subprocess.run([*cmd, "mount", "-t", "tmpfs", "none", "/mnt"], capture_output=True, text=True)
            if r.returncode == 0:
                return cmd
            why = f"{' '.join(cmd)}: {r.stderr.strip()}"
    if os.environ.get("CI"):
        pytest.fail(f"cannot make a small disk to fill: {why}")
    pytest.skip(f"cannot make a small disk to fill: {why}")


def test_a_daemon_waits_out_a_full_disk_and_goes_on_without_a_second_submission(tmp_path):
    r = subprocess.run([*namespaced(), sys.executable, os.path.join(HERE, "full_disk_scenario.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    found = json.loads(r.stdout.splitlines()[-1])
    out = found["output"]
    # a oneshot and a command end with the error, where and what to do: exit code 1, the file unchanged
    full = f"Error: No space left on device: cannot write in {tmp_path / 'disk'}; free space there\n"
    assert found["oneshot"] == [1, full] and found["hold"] == [1, full] and found["oneshot_changed_nothing"]
    # the daemon said what happened and where, waited longer each time, and never ended
    assert "No space left on device: cannot write in " + str(tmp_path / "disk") + "; free space there" in out
    assert "The daemon starts afresh in 1 s." in out and "The daemon starts afresh in 2 s." in out
    assert found["alive_while_full"], out
    assert "Traceback" not in out
    # once the space was back it carried on to the end, each job started once
    assert found["returncode"] == 0 and "nothing left to track" in out, out
    assert found["states"] == ["completed"], out
    assert found["starts"] == [f"{r}.analysis#1x1" for r in (1, 2, 3, 4)], out


def test_a_daemon_waits_out_a_lock_held_too_long(tmp_path):
    e = make_experiment(tmp_path, [1, 2], segments=1, **{"daemon.lock_timeout": 0.3})
    out: list[str] = []
    with e.store.locked("a stuck process"):
        d = daemon(tmp_path, "verbose")
        read_until(d, out, lambda s: s.count("starts afresh") >= 2, "the daemon starting afresh twice")
        assert d.poll() is None
    rest, _ = d.communicate(timeout=120)
    text = "".join(out) + rest
    assert f"the status file {e.store.path} is locked by a stuck process (pid {os.getpid()} on " in text
    assert "The daemon starts afresh in 1 s." in text and "Traceback" not in text
    assert d.returncode == 0 and "nothing left to track" in text, text
    assert {t.state for t in e.store.read().tasks} == {"completed"}
    assert job_starts(tmp_path) == {("1.analysis", 1): 1, ("2.analysis", 1): 1}
