"""Staging beyond JLab end to end: real daemon processes (``oneshot`` after ``oneshot``) and the local
batch backend, staging from the Tape REST double (HTTPS on loopback) or from a real xrootd server;
``batchman check`` against both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchman import actions
from batchman.core import states as S

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "doubles"))
from e2e_helpers import daemon_run, env_for, make_experiment, write_config  # noqa: E402
from taperest_server import TapeRestDouble  # noqa: E402
from xrootd_site import XrootdSite, require  # noqa: E402

pytestmark = pytest.mark.slow


def oneshot(root, env):
    r = daemon_run(root, "oneshot", env=env, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r.stdout


def tasks(e):
    return {t.run: t for t in e.store.read().tasks}


def until(e, root, env, pred, limit=60, check=None):
    for _ in range(limit):
        oneshot(root, env)
        if check:
            check()
        ts = tasks(e)
        if pred(ts):
            return ts
    raise AssertionError(f"not reached after {limit} iterations: {[(t.run, t.state, t.error) for t in tasks(e).values()]}")


def bm(root, *args):
    return subprocess.run([sys.executable, "-m", "batchman.cli", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=60, env=env_for(root))


# ------------------------------------------------------------------------------------------------
# tape-rest

@pytest.fixture
def tape_site(tmp_path, tls):
    (tmp_path / "pool").mkdir()
    d = TapeRestDouble(str(tmp_path / "raw"), str(tmp_path / "pool"), tls, delay=0.05)
    d.tls = tls
    d.start()
    yield d
    d.stop()


def tape_cfg(site, **kw):
    cfg = {"staging.backend": "tape-rest", "staging.tape_rest_url": site.url, "staging.remote_prefix": "/",
           "staging.ca_dir": site.tls["ca_dir"], "staging.stub_dir": "raw", "staging.cache_dir": "pool",
           "staging.awol_grace": 1.0, "batch.local_slots": 2}
    cfg.update(kw)
    return cfg


def test_tape_rest_runs_complete_a_lost_file_fails_its_run_and_everything_is_released(tmp_path, tape_site):
    (tmp_path / "raw").mkdir()
    tape_site.lost.add("/run_3.dat.1")
    e = make_experiment(tmp_path, [1, 2, 3], segments=2, **tape_cfg(tape_site))
    env = env_for(tmp_path, SLEEP=0.1)
    ts = until(e, tmp_path, env, lambda ts: ts[1].state == S.COMPLETED and ts[2].state == S.COMPLETED
               and ts[3].state == S.ERROR)
    assert "LOST" in ts[3].error and "run_3.dat.1" in ts[3].error
    stage_posts = tape_site.calls("POST", "/api/v1/tape/stage")
    assert 1 <= len([c for c in stage_posts if c[1].rstrip("/").endswith("/stage")]) <= 2   # bulk, not per file
    assert all(n == 0 for p, n in tape_site.pins.items() if not p.startswith("/run_3")), tape_site.pins


def test_tape_rest_a_lost_request_is_awol(tmp_path, tape_site):
    (tmp_path / "raw").mkdir()
    tape_site.delay = 30.0                               # nothing finishes: the request is then lost
    e = make_experiment(tmp_path, [1], segments=2, **tape_cfg(tape_site))
    env = env_for(tmp_path)
    until(e, tmp_path, env, lambda ts: ts[1].state == S.STAGING, limit=5)
    tape_site.lose_requests()
    time.sleep(1.1)
    ts = until(e, tmp_path, env, lambda ts: ts[1].state == S.ERROR, limit=10)
    assert "AWOL" in ts[1].error


def test_tape_rest_kill_and_purge_cancel_the_requests_and_release_the_pins(tmp_path, tape_site):
    (tmp_path / "raw").mkdir()
    tape_site.delay = 60.0                               # a slow tape: the requests stay outstanding
    e = make_experiment(tmp_path, [1, 2], segments=2, **tape_cfg(tape_site))
    env = env_for(tmp_path)
    until(e, tmp_path, env, lambda ts: all(t.state == S.STAGING for t in ts.values()), limit=5)
    assert set(tape_site.pins) == {f"/run_{r}.dat.{i}" for r in (1, 2) for i in (0, 1)}
    actions.queue_request(e.store, {"1.analysis"}, "kill")
    actions.queue_request(e.store, {"2.analysis"}, "purge")
    oneshot(tmp_path, env)
    oneshot(tmp_path, env)
    ts = tasks(e)
    assert ts[1].state == S.ABORTED and 2 not in ts
    assert tape_site.calls("POST") and any(p.endswith("/cancel") for m, p in tape_site.calls("POST"))
    assert tape_site.pins == {}
    assert tape_site.calls("DELETE") and tape_site.requests == {}     # no request left on the server


def test_check_validates_url_credentials_and_discovery(tmp_path, tape_site):
    (tmp_path / "raw").mkdir()
    (tmp_path / "analyze").write_text("#!/bin/sh\n")
    (tmp_path / "analyze").chmod(0o755)
    write_config(tmp_path, **tape_cfg(tape_site))
    r = bm(tmp_path, "check")
    assert r.returncode == 0, r.stdout + r.stderr
    write_config(tmp_path, **tape_cfg(tape_site, **{"staging.token_file": str(tmp_path / "no-token")}))
    r = bm(tmp_path, "check")
    assert r.returncode != 0 and "staging.token_file" in r.stderr and "no-token" in r.stderr, r.stderr
    write_config(tmp_path, **tape_cfg(tape_site, **{"staging.ca_dir": ""}))      # system CAs: not ours
    r = bm(tmp_path, "check")
    assert r.returncode != 0 and "staging.tape_rest_url: discovery does not answer" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    write_config(tmp_path, **tape_cfg(tape_site))
    cfg = tmp_path / "batchman.yaml"
    cfg.write_text(cfg.read_text().replace(tape_site.url, "ftp://x"))
    r = bm(tmp_path, "check")
    assert r.returncode != 0 and "staging.tape_rest_url" in r.stderr and "https://host" in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------------
# xrootd

@pytest.fixture(params=["prepare-plugin", "frm"])
def xrd(request):
    require()
    site = XrootdSite(delay=0.002, frm=request.param == "frm")
    yield site
    site.stop()


def test_xrootd_300_segments_of_100_runs_with_the_staging_limit_held_then_released(xrd):
    root = Path(xrd.base) / "exp"                       # readable by the xrootd user (not under tmp_path)
    root.mkdir()
    os.chmod(root, 0o755)
    limit = 60
    e = make_experiment(root, [], segments=0, **{
        "staging.backend": "xrootd", "staging.xrootd_url": xrd.url, "staging.remote_prefix": "/data",
        "staging.stub_dir": xrd.tape, "staging.cache_dir": xrd.disk, "staging.limit": limit,
        "staging.max_requests_per_iteration": 0, "batch.local_slots": 8, "batch.max_jobs": 20})
    for run in range(1, 101):
        for seg in range(3):
            Path(xrd.tape, f"run_{run}.dat.{seg}").write_text(f"{run} {seg}\n")
    xrd.start()
    actions.add_runs(e.store, list(range(1, 101)))
    env = env_for(root, SLEEP=0)
    peak = []

    def check():
        held = sum(len(t.segments) for t in tasks(e).values() if t.state in S.HOLDS_CACHE)
        assert held <= limit, held
        peak.append(held)

    t0 = time.monotonic()
    until(e, root, env, lambda ts: all(t.state == S.COMPLETED for t in ts.values()), limit=200, check=check)
    assert max(peak) > limit // 2, "the limit was never approached: the test shows nothing"
    staged = {p for line in xrd.prep_log() if line.startswith("stage") for p in line.split() if p.startswith("/data/")}
    assert staged == {f"/data/run_{r}.dat.{s}" for r in range(1, 101) for s in range(3)}, \
        "every segment went through the server's stage command"
    assert json.loads((root / ".batchman" / "xrootd-requests.json").read_text()) == {}, "not all released"
    if not xrd.frm:                   # the FRM ignores prepare -e: its frm_purged evicts by policy
        end = time.monotonic() + 10
        while any(Path(xrd.disk).iterdir()) and time.monotonic() < end:
            time.sleep(0.1)
        assert not any(Path(xrd.disk).iterdir()), "segments left on the server's disk: not released"
    assert time.monotonic() - t0 < 60, "the 300-segment staging took over a minute"
