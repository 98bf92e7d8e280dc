"""Tape staging end to end: real daemon processes (``oneshot`` after ``oneshot``), the local batch
backend, and the jcache test double (tests/doubles/jcache) on PATH as the tape library; the
``command`` backend with small shell scripts as the site's commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchman import actions
from batchman import params as P
from batchman.core import states as S
from batchman.backends.staging.space import used_fraction

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from e2e_helpers import daemon_run, env_for, make_experiment, write_config  # noqa: E402

pytestmark = pytest.mark.slow

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"
USER = "tester"


def jcache_cfg(**kw):
    cfg = {"staging.backend": "jcache", "staging.stub_dir": "raw", "staging.cache_dir": "cache",
           "staging.user": USER, "staging.awol_grace": 1.0, "batch.local_slots": 2}
    cfg.update(kw)
    return cfg


def jenv(root, **extra):
    root = str(root)
    env = env_for(root)
    env = {k: v for k, v in env.items() if not k.startswith("JCACHE_DOUBLE_")}   # faults: per test only
    env["PATH"] = f"{DOUBLES}{os.pathsep}{env['PATH']}"
    env.update(JCACHE_DOUBLE_DIR=os.path.join(root, "jstate"), JCACHE_DOUBLE_MSS=os.path.join(root, "raw"),
               JCACHE_DOUBLE_CACHE=os.path.join(root, "cache"), JCACHE_DOUBLE_USER=USER)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def oneshot(root, env):
    r = daemon_run(root, "oneshot", env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r.stdout


def tasks(e):
    return {t.run: t for t in e.store.read().tasks}


def calls(root, cmd=None):
    log = Path(root) / "jstate" / "calls.log"
    if not log.exists():
        return []
    argvs = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    return [a for a in argvs if cmd is None or a[:1] == [cmd]]


def jstate(root):
    path = Path(root) / "jstate" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"requests": {}, "pins": {}}


def pinned(root):
    """Files the double holds for us: requested and not released."""
    return {s for s, users in jstate(root)["pins"].items() if USER in users}


def until(e, root, env, pred, limit=60, check=None):
    for _ in range(limit):
        oneshot(root, env)
        if check:
            check()
        if pred(tasks(e)):
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached after {limit} iterations: {[(t.run, t.state, t.reason) for t in tasks(e).values()]}")


def all_in(*states_):
    return lambda ts: all(t.state in states_ for t in ts.values())


def add_big_run(root, run, nseg):
    for s in range(nseg):
        (Path(root) / "raw" / f"run_{run}.dat.{s}").write_text("x\n")


# ------------------------------------------------------------------------------------------------
def test_staging_limit_holds_at_every_iteration_and_a_big_run_still_goes(tmp_path):
    limit = 4
    e = make_experiment(tmp_path, range(1, 6), segments=2, **jcache_cfg(**{"staging.limit": limit}))
    add_big_run(tmp_path, 9, 6)                       # more segments than the limit
    actions.add_runs(e.store, [9])
    env = jenv(tmp_path, SLEEP=0.3, JCACHE_DOUBLE_DELAY=0.1)
    seen_big_alone = []

    def check():
        ts = tasks(e).values()
        holders = [t for t in ts if t.state in S.HOLDS_CACHE]
        held = sum(len(t.segments) for t in holders)
        if any(t.run == 9 for t in holders):
            assert [t.run for t in holders] == [9], "the big run shares the cache"
            seen_big_alone.append(held)
        else:
            assert held <= limit, [(t.run, t.state) for t in holders]
        assert len(pinned(tmp_path)) <= max(limit, 6)

    until(e, tmp_path, env, all_in(S.COMPLETED), limit=120, check=check)
    assert seen_big_alone, "the run bigger than the limit was never staged"
    assert pinned(tmp_path) == set()                  # everything released at the end
    # one pendingRequest per iteration at most, requests batched per iteration
    assert all(len(a) > 2 for a in calls(tmp_path, "get"))


def test_lost_request_is_awol_and_failed_request_is_error_naming_the_file(tmp_path):
    e = make_experiment(tmp_path, [1, 2, 3], segments=2, **jcache_cfg())
    lost = str(tmp_path / "raw" / "run_2.dat.1")
    bad = str(tmp_path / "raw" / "run_3.dat.0")
    env = jenv(tmp_path, SLEEP=0.2, JCACHE_DOUBLE_DELAY=0.2, JCACHE_DOUBLE_LOSE=lost, JCACHE_DOUBLE_FAIL=bad)
    until(e, tmp_path, env, lambda ts: ts[1].state == S.COMPLETED and ts[2].state == S.ERROR
          and ts[3].state == S.ERROR, limit=80)
    ts = tasks(e)
    assert "AWOL" in ts[2].error and lost in ts[2].error
    assert "staging failed" in ts[3].error and bad in ts[3].error


def test_segment_deleted_from_the_cache_before_the_job_ran_is_requested_again(tmp_path):
    e = make_experiment(tmp_path, [1, 2], segments=2, **jcache_cfg(**{"batch.max_jobs": 1}))
    # run 1's job holds the one job slot until the go file is there (it slept 2.5 s, and so did
    # run 2's after it), so run 2 waits staged while its segment is deleted
    go = tmp_path / "go"
    env = jenv(tmp_path, GO=go, SLEEP=0.1)
    try:
        until(e, tmp_path, env, lambda ts: ts[1].state in (S.SUBMITTED, S.QUEUED, S.RUNNING) and ts[2].state == S.STAGED)
        victim = tmp_path / "cache" / "run_2.dat.1"
        assert victim.exists()
        gets_before = [a for a in calls(tmp_path, "get") if str(tmp_path / "raw" / "run_2.dat.1") in a]
        victim.unlink()
        out = oneshot(tmp_path, env)
    finally:
        go.write_text("go\n")
    t2 = tasks(e)[2]
    assert t2.state in (S.STAGING, S.STAGED) and "vanished" in out
    gets_after = [a for a in calls(tmp_path, "get") if str(tmp_path / "raw" / "run_2.dat.1") in a]
    assert len(gets_after) == len(gets_before) + 1
    until(e, tmp_path, env, all_in(S.COMPLETED))
    assert tasks(e)[2].analysed == 2


def test_release_on_completion_kept_on_failure(tmp_path):
    e = make_experiment(tmp_path, [1, 2], segments=2, **jcache_cfg())
    env = jenv(tmp_path, SLEEP=0.1, FAIL_RUNS="2")
    until(e, tmp_path, env, lambda ts: ts[1].state == S.COMPLETED and ts[2].state == S.FAILED)
    unpinned = {f for a in calls(tmp_path, "unpin") for f in a[1:]}
    r = tmp_path / "raw"
    assert unpinned == {str(r / "run_1.dat.0"), str(r / "run_1.dat.1")}
    assert pinned(tmp_path) == {str(r / "run_2.dat.0"), str(r / "run_2.dat.1")}


def test_release_failed_files_releases_a_failed_run(tmp_path):
    e = make_experiment(tmp_path, [2], segments=2, **jcache_cfg(**{"policies.release_failed_files": True}))
    env = jenv(tmp_path, SLEEP=0.1, FAIL_RUNS="2")
    until(e, tmp_path, env, all_in(S.FAILED))
    assert pinned(tmp_path) == set()
    assert {f for a in calls(tmp_path, "unpin") for f in a[1:]} == {str(tmp_path / "raw" / f"run_2.dat.{i}") for i in (0, 1)}


def test_kill_and_purge_cancel_outstanding_requests_and_release(tmp_path):
    e = make_experiment(tmp_path, [1, 2], segments=2, **jcache_cfg())
    env = jenv(tmp_path, JCACHE_DOUBLE_DELAY=60)      # a slow tape: the requests stay outstanding
    until(e, tmp_path, env, all_in(S.STAGING))
    rids = {rid for rid, r in jstate(tmp_path)["requests"].items() if r["status"] in ("pending", "running")}
    assert rids
    actions.queue_request(e.store, {"1.analysis"}, "kill")
    actions.queue_request(e.store, {"2.analysis"}, "purge")
    oneshot(tmp_path, env)
    oneshot(tmp_path, env)
    ts = tasks(e)
    assert ts[1].state == S.ABORTED and 2 not in ts
    st = jstate(tmp_path)
    assert all(st["requests"][rid]["status"] == "cancelled" for rid in rids)
    assert {a[1] for a in calls(tmp_path, "cancel")} == rids
    assert pinned(tmp_path) == set()
    unpinned = {f for a in calls(tmp_path, "unpin") for f in a[1:]}
    assert unpinned == {str(tmp_path / "raw" / f"run_{r}.dat.{i}") for r in (1, 2) for i in (0, 1)}


def test_priority_changes_the_staging_order(tmp_path):
    e = make_experiment(tmp_path, [1, 2, 3, 4], segments=2, **jcache_cfg(**{"staging.limit": 2}))
    env = jenv(tmp_path, JCACHE_DOUBLE_DELAY=60)
    r = subprocess.run([sys.executable, "-m", "batchman.cli", "-C", str(tmp_path), "priority", "3", "10"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    oneshot(tmp_path, env)
    oneshot(tmp_path, env)
    (get,) = calls(tmp_path, "get")
    assert get[1:] == [str(tmp_path / "raw" / f"run_3.dat.{i}") for i in (0, 1)]
    assert tasks(e)[3].state == S.STAGING and tasks(e)[1].state == S.UNSTAGED


def test_disk_space_limit_stops_new_requests_while_the_cache_filesystem_is_too_full(tmp_path):
    (tmp_path / "cache").mkdir()
    used = used_fraction(str(tmp_path / "cache"))
    assert used > 1e-6, "the test needs a filesystem with something on it"
    cfg = jcache_cfg(**{"staging.max_cache_fraction": min(used / 2, 1e-6)})
    e = make_experiment(tmp_path, [1, 2], segments=2, **cfg)
    env = jenv(tmp_path, SLEEP=0.1)
    for _ in range(3):
        out = oneshot(tmp_path, env)
    assert "no new staging requests" in out
    assert calls(tmp_path, "get") == []
    assert all(t.state == S.UNSTAGED for t in tasks(e).values())
    assert "full" in " ".join(e.store.read().last_iteration.errors)
    # room again (a limit above the real usage): staging goes on
    cfg["staging.max_cache_fraction"] = 0.999999
    write_config(tmp_path, **{**{"daemon.delay": 0.2, "daemon.submit_grace": 20.0}, **cfg})
    until(e, tmp_path, env, all_in(S.COMPLETED))
    assert calls(tmp_path, "get")


SITE_REQUEST = """#!/bin/sh
# site request: queue the files
for f in "$@"; do echo "$f" >> "$SITE/queue"; done
echo "request $#" >> "$SITE/log"
"""
SITE_QUERY = """#!/bin/sh
# site query: a queued file is copied on the first poll that sees it, present on the next
echo "query $#" >> "$SITE/log"
for f in "$@"; do
  c="$CACHE/$(basename "$f")"
  if [ -f "$c" ]; then echo "PRESENT $c"
  elif grep -qxF "$f" "$SITE/queue" 2>/dev/null; then cp "$f" "$c"; echo "PENDING $f"
  fi
done
"""
SITE_RELEASE = """#!/bin/sh
for f in "$@"; do rm -f "$CACHE/$(basename "$f")"; done
echo "release $#" >> "$SITE/log"
"""


def test_command_backend_with_site_scripts(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "cache").mkdir()
    for name, text in (("request", SITE_REQUEST), ("query", SITE_QUERY), ("release", SITE_RELEASE)):
        (site / f"{name}.sh").write_text(text)
        (site / f"{name}.sh").chmod(0o755)
    cfg = {"staging.backend": "command", "staging.request_cmd": f"{site}/request.sh {{files}}",
           "staging.query_cmd": f"{site}/query.sh {{files}}", "staging.release_cmd": f"{site}/release.sh {{files}}",
           "staging.cache_dir": "cache", "staging.limit": 4, "batch.local_slots": 2}
    e = make_experiment(tmp_path, [1, 2, 3], segments=2, **cfg)
    env = env_for(tmp_path, SITE=site, CACHE=tmp_path / "cache", SLEEP=0.1)
    until(e, tmp_path, env, all_in(S.COMPLETED))
    assert all(t.analysed == 2 for t in tasks(e).values())
    log = (site / "log").read_text().split("\n")
    assert "request 4" in log and "request 2" in log             # runs 1+2 together, then run 3
    assert not any(p.name.startswith("run_") for p in (tmp_path / "cache").iterdir())   # released


def test_command_backend_template_errors_name_the_key(tmp_path):
    with pytest.raises(P.ParamError) as ei:
        write_config(tmp_path, **{"staging.backend": "command", "staging.request_cmd": "stage {filez}"})
    text = str(ei.value)
    assert "staging.request_cmd: unknown placeholder {filez}" in text
    assert "staging.query_cmd: missing" in text
