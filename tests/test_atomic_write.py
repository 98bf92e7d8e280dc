"""batchman.util.files.atomic_write: old or new content after a SIGKILL, the mode rules, no temp left."""

import os
import signal
import subprocess
import sys
import time

import pytest

from batchman.util.files import atomic_write

OLD = b"old\n" * 1000
NEW = b"n" * (64 << 20)       # big enough that a kill lands mid-write


def test_replaces_content_and_keeps_a_backup(tmp_path):
    p = tmp_path / "f.json"
    atomic_write(str(p), b"one")
    atomic_write(str(p), "two", backup=str(p) + ".bak")
    assert p.read_bytes() == b"two"
    assert (tmp_path / "f.json.bak").read_bytes() == b"one"
    assert sorted(os.listdir(tmp_path)) == ["f.json", "f.json.bak"]


def test_new_file_follows_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(str(tmp_path / "page.html"), b"x")
        os.umask(0o077)
        atomic_write(str(tmp_path / "private"), b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "page.html").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600


def test_existing_file_keeps_its_mode(tmp_path):
    p = tmp_path / "batchman.yaml"
    p.write_bytes(b"a")
    os.chmod(p, 0o640)
    atomic_write(str(p), b"b")
    assert p.stat().st_mode & 0o777 == 0o640
    atomic_write(str(p), b"c", mode=0o755)
    assert p.stat().st_mode & 0o777 == 0o755


def test_an_exception_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "f"
    p.write_bytes(OLD)

    def boom(*a):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write(str(p), NEW[:10])
    assert p.read_bytes() == OLD
    assert os.listdir(tmp_path) == ["f"]


WRITER = """
import sys
from batchman.util.files import atomic_write
print("go", flush=True)
atomic_write(sys.argv[1], b"n" * (64 << 20), backup=sys.argv[1] + ".bak")
print("done", flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2])
def test_sigkill_mid_write_leaves_old_or_new_never_partial(tmp_path, delay):
    p = tmp_path / "status.json"
    p.write_bytes(OLD)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(p)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"go\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    data = p.read_bytes()
    assert data in (OLD, NEW), f"partial file of {len(data)} bytes"


def test_the_status_file_and_page_follow_the_umask(tmp_path):
    from batchman.core.model import Task
    from batchman.store import Store
    old = os.umask(0o022)
    try:
        s = Store(str(tmp_path / "status.json"), html=lambda st: "page", html_path=str(tmp_path / "p.html"))
        with s.transaction("t") as st:
            st.tasks.append(Task(run=1))
    finally:
        os.umask(old)
    assert (tmp_path / "status.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "p.html").stat().st_mode & 0o777 == 0o644
