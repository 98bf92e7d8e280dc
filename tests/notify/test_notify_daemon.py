"""A real daemon run (local backend) tells a webhook and a mailbox on loopback: a failure
spike, a stall and the end of the production, one message per start and end; nothing is
resent by a later daemon, and the webhook's secret appears nowhere a person reads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from e2e_helpers import daemon, daemon_run, env_for, make_experiment, wait_for

pytestmark = pytest.mark.slow

ANALYSIS = r"""#!/bin/bash
for r in $FAIL_RUNS; do [ "$1" = "$r" ] && { echo "bad calibration" >&2; exit 3; }; done
if [ "$1" = "$LONG_RUN" ]; then until [ -f "$GO" ]; do sleep 0.1; done; else sleep 1.5; fi
n=0; for f in $BATCHMAN_FILES; do [ -f "$f" ] && n=$((n+1)); done
echo "segments_analysed = $n" > "$BATCHMAN_STATS_FILE"
"""
SECRET = "hookS3CRET"


def kinds(titles: list[str]) -> list[str]:
    """What each message was about, from its title."""
    out = []
    for t in titles:
        if "attempts exited non-zero" in t:
            out.append("failures start")
        elif "resolved: exit-nonzero failures" in t:
            out.append("failures end")
        elif "no task changed state" in t:
            out.append("stalled start")
        elif "resolved: tasks change state again" in t:
            out.append("stalled end")
        elif "retries exhausted" in t:
            out.append("exhausted")
        elif "production finished" in t:
            out.append("finished")
        else:
            out.append(f"other: {t}")
    return sorted(out)


def test_a_daemon_run_tells_each_start_and_end_once(tmp_path, webhook, smtp):
    # The good runs take 1.5 s and the bad ones fail at once, so the first attempts to end are the
    # 4 failures (the spike starts) whatever the machine's load; once the daemon carried runs from
    # new to submitted in one iteration, 0.3 s runs could end with them and the spike never start.
    root = tmp_path / "exp"
    runs = list(range(1, 30))
    make_experiment(root, runs, segments=1, **{
        "batch.local_slots": 8, "notify.targets": [webhook.url(SECRET), smtp.url()],
        "notify.stall_minutes": 0.05, "notify.failure_rate": 0.3, "notify.failure_min_attempts": 4,
        "notify.digest_after": 10, "notify.timeout": 5.0})
    (root / "analyze").write_text(ANALYSIS)
    # run 29 runs until the stall it makes (every other run at its end) has been told, then ends
    # it (it slept 9 s for that, ~4 s more than the stall took to be told)
    go = root / "go"
    env = env_for(root, FAIL_RUNS="1 2 3 4", LONG_RUN="29", GO=go)
    d = daemon(root, "verbose", env=env)
    try:
        wait_for(lambda: any("no task changed state" in t for t in webhook.titles()), 120,
                 what="the stall told", show=webhook.titles)
    finally:
        go.write_text("go\n")
        out = d.communicate(timeout=180)[0]               # (stdout and stderr together)
    assert d.returncode == 0, out

    expected = sorted(["failures start", "failures end", "stalled start", "stalled end", "finished"] + ["exhausted"] * 4)
    assert kinds(webhook.wait(9, timeout=10) and webhook.titles()) == expected
    assert kinds(smtp.subjects()) == expected
    finished = next(p for p in webhook.posts if "production finished" in p["title"])
    assert "25 completed, 4 failed" in finished["message"] and "status.html" in finished["message"]
    spike = next(p for p in webhook.posts if "attempts exited non-zero" in p["title"])
    assert " of the last " in spike["message"]

    # a second daemon finds nothing to tell again
    r2 = daemon_run(root, "oneshot", env=env)
    assert r2.returncode == 0
    assert len(webhook.posts) == 9 and len(smtp.mails) == 9

    # the secret is in batchman.yaml and nowhere a person reads
    check = subprocess.run([sys.executable, "-m", "batchman.cli.commands", "-C", str(root), "check"],
                           capture_output=True, text=True)
    shown = subprocess.run([sys.executable, "-m", "batchman.cli.commands", "-C", str(root), "notify"],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and "bm:****@127.0.0.1" in shown.stdout and "sent" in shown.stdout
    for text in (out, r2.stdout, check.stdout, check.stderr, shown.stdout,
                 (root / "status.html").read_text(), (root / "status.json.alerts.json").read_text()):
        assert SECRET not in text


def test_notify_test_sends_to_every_target_and_fails_for_a_dead_one(tmp_path, webhook, smtp):
    root = tmp_path / "exp"
    make_experiment(root, [1], **{"notify.targets": [webhook.url(SECRET), smtp.url()]})
    cmd = [sys.executable, "-m", "batchman.cli.commands", "-C", str(root), "notify", "--test"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("sent") == 2 and SECRET not in r.stdout
    assert ["test message" in t for t in webhook.titles()] == [True] and len(smtp.mails) == 1
    cfg = yaml.safe_load((root / "batchman.yaml").read_text())
    cfg["notify"]["targets"].append("json://127.0.0.1:9/nobody")
    (root / "batchman.yaml").write_text(yaml.safe_dump(cfg))
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1 and "FAILED" in r.stdout and "1 of 3 target(s)" in r.stderr


def test_watch_daemon_exits_non_zero_and_tells_once_when_no_daemon_works(tmp_path, webhook):
    root = tmp_path / "exp"
    make_experiment(root, [1, 2], **{"notify.targets": [webhook.url()], "daemon.stale_after": 1.0})
    cmd = [sys.executable, "-m", "batchman.cli.commands", "-C", str(root), "watch-daemon"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 1 and second.returncode == 1
    assert "no daemon is alive" in first.stderr
    assert len(webhook.posts) == 1 and "no daemon is alive" in webhook.posts[0]["title"]
    r = daemon_run(root, "loop", env=env_for(root))               # a daemon does the work
    assert r.returncode == 0
    assert any("a daemon is alive again" in t for t in webhook.wait(3, timeout=10) and webhook.titles())
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and "nothing pending" in done.stdout


def test_bad_notify_parameters_name_the_key(tmp_path):
    from batchman import params as P
    with pytest.raises(P.ParamError) as e:
        P.validate({"notify": {"targets": ["nosuch://u:pw@host"], "failure_rate": 2},
                    "metrics": {"textfile": "metrics.txt"}}, str(tmp_path))
    text = str(e.value)
    assert "notify.targets[0]: nosuch://..." in text and "pw@" not in text
    assert "notify.failure_rate" in text and "metrics.textfile" in text
    assert os.listdir(tmp_path) == []


def test_watch_daemon_tells_of_a_full_disk_it_cannot_record(tmp_path, webhook, monkeypatch):
    """Where the status file is, the disk is full: the daemon there waits for room (its
    heartbeat goes stale) and the watchdog could not save its alert file: it ended with the
    error and told nobody. It now tells the targets at each check, the full disk named."""
    import errno

    from click.testing import CliRunner

    from batchman.cli.commands import main
    from batchman.notify import outbox
    root = tmp_path / "exp"
    make_experiment(root, [1, 2], **{"notify.targets": [webhook.url()], "daemon.stale_after": 1.0})

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(outbox, "atomic_write", full)
    for n in (1, 2):                             # each check tells again: nothing could be recorded
        r = CliRunner().invoke(main, ["-C", str(root), "watch-daemon"])
        assert r.exit_code == 1, r.output
        assert "work is pending but no daemon is alive" in r.stderr
        assert f"No space left on device: cannot write in {root}; free space there" in r.stderr
        assert len(webhook.wait(n, timeout=10)) == n
    post = webhook.posts[0]
    assert "no daemon is alive" in post["title"] and "No space left on device" in post["title"]
    assert "comes again at each check until there is room" in post["message"]
