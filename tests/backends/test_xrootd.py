"""XrootdStaging: argv builders and the xrdfs session parser on literal text, then the backend
against a real xrootd server (tests/doubles/xrootd_site.py). Skipped with one line when xrootd is
not installed, except under CI (then it fails)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchman.backends.base import BackendUnavailable, Runner, StagingView
from batchman.backends.staging.xrootd import (
    XrootdStaging, parse_request_id, parse_stat_batch, prepare_argvs, stat_script,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "doubles"))
from xrootd_site import XrootdSite, require  # noqa: E402

SESSION = """\
[127.0.0.1:1094] / > stat /data/a
Path:   /data/a
Flags:  28 (Other|Offline|IsReadable)
[127.0.0.1:1094] / > stat /data/gone
[127.0.0.1:1094] / > stat /data/b
Path:   /data/b
Flags:  16 (IsReadable)
[127.0.0.1:1094] / > stat /data/c
[127.0.0.1:1094] / > Goodbye.
"""
ERRORS = "[ERROR] Server responded with an error: [3011] Unable to locate /data/gone; no such file or directory\n"


def test_the_session_parser_tells_online_offline_missing_and_unknown():
    assert parse_stat_batch(SESSION, ERRORS) == {"/data/a": "offline", "/data/gone": "missing",
                                                 "/data/b": "online", "/data/c": "unknown"}
    assert stat_script(["/x", "/y"]) == "stat /x\nstat /y\nexit\n"
    assert parse_request_id("52667f000001:277289e9.6b0fc226:1\n") == "52667f000001:277289e9.6b0fc226:1"
    assert parse_request_id("") == ""


def test_prepare_is_batched():
    argvs = prepare_argvs("xrdfs", "root://h", ["-s"], [f"/p{i}" for i in range(5)], max_files=2)
    assert [a[4:] for a in argvs] == [["/p0", "/p1"], ["/p2", "/p3"], ["/p4"]]
    assert argvs[0][:4] == ["xrdfs", "root://h", "prepare", "-s"]


@pytest.fixture
def site():
    require()
    s = XrootdSite(delay=0.2)
    for i in range(4):
        Path(s.tape, f"run_1.dat.{i}").write_text(f"segment {i}\n")
    s.start()
    yield s
    s.stop()


def make(site, tmp_path, runner=None):
    return XrootdStaging(runner or Runner(timeout=30), site.url, stub_root=site.tape, cache_root=site.disk,
                         path_prefix="/data", ids_file=str(tmp_path / "ids.json"))


def test_stage_pending_then_present_one_process_per_query_then_released(site, tmp_path):
    runner = Runner(timeout=30)
    b = make(site, tmp_path, runner)
    files = [os.path.join(site.tape, f"run_1.dat.{i}") for i in range(4)]
    assert b.query(files).pending == set() and not runner.records   # not asked for: not even asked
    b.request(files)
    assert len(runner.records) == 1
    v = make(site, tmp_path).query(files)              # a new process knows what was asked
    assert v.pending and not v.failed
    t0 = time.monotonic()
    while (v := b.query(files)).present != set(files):
        assert time.monotonic() - t0 < 15, v
        time.sleep(0.1)
    assert all(Path(b.cache_path(f)).read_text() == f"segment {f[-1]}\n" for f in files)
    n = len(runner.records)
    b.query(files)
    assert len(runner.records) == n + 1
    b.release(files)
    t0 = time.monotonic()
    while any(Path(b.cache_path(f)).exists() for f in files):     # the server evicts in the background
        assert time.monotonic() - t0 < 5, "not evicted"
        time.sleep(0.05)
    assert any(line.startswith("evict") for line in site.prep_log())


def test_a_file_the_server_does_not_have_fails_and_a_dead_server_is_unavailable(site, tmp_path):
    b = make(site, tmp_path, Runner(timeout=3))
    ghost = os.path.join(site.tape, "run_9.dat.0")
    b.request([ghost])
    v = b.query([ghost])
    assert ghost in v.failed and "no such file" in v.failed[ghost]
    assert b.check() == []                                   # batchman check: the server answers
    site.stop()
    with pytest.raises(BackendUnavailable):
        b.query([ghost])
    problems = b.check()                  # (each call waits out the runner's 3 s against the dead server)
    assert problems and problems[0].startswith("staging.xrootd_url: ")


def test_cancel_aborts_the_request_and_evicts(site, tmp_path):
    site_files = [os.path.join(site.tape, f"run_1.dat.{i}") for i in range(4)]
    b = make(site, tmp_path)
    b.request(site_files)
    b.cancel(site_files)
    time.sleep(1.0)
    assert any(line.startswith("cancel") for line in site.prep_log())
    assert not all(Path(b.cache_path(f)).exists() for f in site_files)


def test_a_file_without_an_answer_stays_pending_not_awol(tmp_path):
    import subprocess

    class Canned(Runner):
        def __call__(self, argv, *, input=None, timeout=None, check=False):
            self.records.append(argv)
            out = "" if "prepare" in argv else SESSION
            return subprocess.CompletedProcess(argv, 0, out, ERRORS)

    b = XrootdStaging(Canned(), "root://h", stub_root="/s", path_prefix="/data", ids_file=str(tmp_path / "ids"))
    files = ["/s/a", "/s/gone", "/s/b", "/s/c"]
    b.request(files)
    v = b.query(files)
    assert v.present == {"/s/b"} and v.pending == {"/s/a", "/s/c"} and set(v.failed) == {"/s/gone"}


@pytest.mark.slow
def test_staging_through_xrootds_own_frm_manager_cmsd_and_frm_xfrd(tmp_path):
    require()
    site = XrootdSite(delay=3.0, frm=True)         # slow: prepare through the manager takes ~2 s
    try:
        files = []
        for i in range(3):
            Path(site.tape, f"run_2.dat.{i}").write_text(f"frm {i}\n")
            files.append(os.path.join(site.tape, f"run_2.dat.{i}"))
        site.start()
        b = make(site, tmp_path)
        b.request(files)
        assert b.query(files).pending, "frm_xfrd copies one after the other: the last is still on tape"
        t0 = time.monotonic()
        while (v := b.query(files)).present != set(files):
            assert time.monotonic() - t0 < 30, v
            time.sleep(0.2)
        assert [Path(b.cache_path(f)).read_text() for f in files] == [f"frm {i}\n" for i in range(3)]
        assert sorted(line.split()[1] for line in site.prep_log()) == [f"/data/run_2.dat.{i}" for i in range(3)]
        b.release(files)               # the FRM ignores prepare -e (frm_purged evicts by policy): no error
        assert b.query(files) == StagingView()
    finally:
        site.stop()


def test_the_test_server_starts_on_other_ports_when_its_port_is_taken_before_it_binds(monkeypatch):
    """The test site's start once failed under load: a free port picked, then taken by another
    process before xrootd bound it. The site tries other ports instead."""
    require()
    import xrootd_site
    with socket.socket() as taken:              # as the local port of a connection is
        taken.bind(("127.0.0.1", 0))
        first = [taken.getsockname()[1]]
        real = xrootd_site._free_port
        monkeypatch.setattr(xrootd_site, "_free_port", lambda *a: first.pop() if first else real(*a))
        s = XrootdSite().start()
        try:
            assert s.port != taken.getsockname()[1]
            assert subprocess.run(["xrdfs", s.url, "query", "config", "version"], capture_output=True,
                                  timeout=30).returncode == 0
        finally:
            s.stop()
