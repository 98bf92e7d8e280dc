"""A round that could not be written (a full disk or quota, a lock held too long): what the
daemon decides (daemon/stall.py), and the command line of the process that takes its place."""

import errno
import os
import sys

import pytest

from batchman.daemon import stall
from batchman.daemon.main import _argv, main
from batchman.store.errors import CorruptStatus, LockTimeout, NoSpace, StatusLost, StoreError, in_words


def full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("failures, delay, wait", [
    (1, 60.0, 60.0), (2, 60.0, 120.0), (3, 60.0, 240.0), (4, 60.0, 480.0), (5, 60.0, 600.0), (40, 60.0, 600.0),
    (1, 0.2, 1.0), (3, 0.2, 4.0),              # at least a second
    (1, 900.0, 900.0), (3, 900.0, 900.0),      # a daemon slower than WAIT_MAX keeps its own pace
])
def test_the_wait_doubles_from_the_delay_up_to_ten_minutes(failures, delay, wait):
    assert stall.wait_before_again(full(), failures, delay) == wait


@pytest.mark.parametrize("err", [full(), OSError(errno.EDQUOT, "Disk quota exceeded"), NoSpace("the store's words"),
                                 LockTimeout("lock held for 30 s by vm:17 (batchman kill)")])
def test_a_full_disk_or_quota_and_a_lock_held_too_long_are_waited_out(err):
    assert stall.wait_before_again(err, 1, 60.0) == 60.0


@pytest.mark.parametrize("err", [OSError(errno.EACCES, "Permission denied"), OSError(errno.EROFS, "Read-only"),
                                 OSError(errno.EIO, "Input/output error"), StatusLost("deleted"),
                                 CorruptStatus("not JSON"), StoreError("other"), ValueError("a bug")])
def test_errors_a_person_must_act_on_end_the_daemon(err):
    assert stall.wait_before_again(err, 1, 60.0) is None


def test_the_message_names_the_file_or_the_status_files_directory():
    named = OSError(errno.ENOSPC, "No space left on device", "/data/exp/status.json.tmp")
    assert in_words(named, "/data/exp/status.json") == \
        "No space left on device: cannot write /data/exp/status.json.tmp; free space there"
    assert in_words(full(), "/data/exp/status.json") == \
        "No space left on device: cannot write in /data/exp; free space there"
    quota = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert in_words(quota, "/w/status.json").endswith("free space there (or raise the quota)")
    assert in_words(LockTimeout("held by vm:17"), "/w/status.json") == "held by vm:17"
    assert in_words(NoSpace("the store's words"), "/w/status.json") == "the store's words"


def test_the_count_of_failed_starts_is_taken_from_the_environment_once(monkeypatch):
    monkeypatch.setenv(stall.FAILURES, "3")
    assert stall.failures_before() == 3
    assert stall.FAILURES not in os.environ          # (the jobs it submits do not inherit it)
    assert stall.failures_before() == 0
    monkeypatch.setenv(stall.FAILURES, "x")
    assert stall.failures_before() == 0


def test_the_wait_ends_early_on_a_signal():
    slept = []
    stop: list = []

    def sleep(s):
        slept.append(s)
        if len(slept) == 3:
            stop.append(15)
    assert stall.wait(60.0, stop, sleep) is False
    assert len(slept) == 3
    assert stall.wait(0.05, [], lambda s: None) is True


@pytest.mark.parametrize("args", [
    ["loop"], ["verbose", "-C", "/data/exp", "--forever", "--delay", "0.5"],
    ["loop", "--no-new-starts", "--dataset", "spring", "--dataset", "fall", "--where", "target=LH2", "--debug"],
])
def test_the_process_that_takes_over_gets_the_same_command_line(args):
    ctx = main.make_context("batchman-daemon", list(args))
    p = ctx.params
    again = _argv(p["mode"], p["directory"], p["forever"], p["delay"], p["no_new_starts"], p["datasets"],
                  p["wheres"], p["debug"])
    assert main.make_context("batchman-daemon", again).params == p


def test_the_daemon_started_by_its_script_is_started_again_by_it(tmp_path):
    script = tmp_path / "batchman-daemon"
    script.write_text("#!/usr/bin/env python3\n")
    assert stall.program(str(script)) == [sys.executable, str(script)]
    for other in ("-c", str(tmp_path / "__main__.py"), ""):
        assert stall.program(other) == [sys.executable, "-m", "batchman.daemon"]


def test_no_room_to_fold_the_change_log_is_said_and_tried_again_later(tmp_path, monkeypatch):
    """A disk with room for a round's line, not for a new copy of a big status file: the daemon
    goes on with its rounds (it does not start afresh for it) and folds the log later."""
    from batchman import actions
    from batchman.daemon import engine as engine_mod
    from batchman.store import snapshot
    from batchman.store import store as store_mod
    from e2e_helpers import make_experiment
    from test_engine_survey import Batch, Staging
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    monkeypatch.setattr(store_mod, "COMPACT_MIN", 0)
    e = make_experiment(tmp_path, [1, 2])
    said, now = [], [1000.0]
    eng = engine_mod.Engine(e.params, e.store, Batch(), Staging(), mode="test", clock=lambda: now[0], say=said.append)
    actions.add_runs(e.store, [3])                   # a line in the change log: folding is due
    tries = []
    real = snapshot.write_temp

    def full(path, status):
        tries.append(path)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(snapshot, "write_temp", full)
    assert e.store.compact_due()
    assert eng.compact_store() is False and len(tries) == 1
    assert said == [f"the change log is not folded into the status file: No space left on device: cannot write in "
                    f"{tmp_path}; free space there; the rounds go on, folding is tried again in 10 minutes"]
    now[0] += 599
    assert eng.compact_store() is False and len(tries) == 1          # not before ten minutes
    assert [t.run for t in e.store.read().tasks] == [1, 2, 3]        # (the file and its log, read again)
    monkeypatch.setattr(snapshot, "write_temp", real)
    now[0] += 2
    assert eng.compact_store() is True and not e.store.compact_due()
    assert [t.run for t in e.store.read().tasks] == [1, 2, 3] and len(said) == 1
