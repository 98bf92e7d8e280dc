"""`batchman` and `batchman-daemon` end on an error a person can act on in the same way
(batchman/said.py): one line naming what is wrong, exit code 1, no traceback."""

import subprocess
import sys

import click
import pytest

from batchman.backends.base import BackendError
from batchman.core.runspec import RunSpecError
from batchman.params import ParamError
from batchman.report import ReportError
from batchman.said import plain_errors
from batchman.store.errors import CorruptStatus, StoreError

from e2e_helpers import daemon_run, make_experiment


WHAT = "runs.txt line 3: '10x2-' is not a run or a range"


@pytest.mark.parametrize("error", [StoreError(WHAT), CorruptStatus(WHAT), RunSpecError(WHAT), ReportError(WHAT),
                                   BackendError(WHAT), ParamError([WHAT], "batchman.yaml")])
def test_our_errors_become_their_message(error):
    with pytest.raises(click.ClickException) as got:
        with plain_errors(lambda: False):
            raise error
    assert got.value.message == str(error) and WHAT in got.value.message
    assert got.value.exit_code == 1


def test_an_os_error_names_its_file():
    with pytest.raises(click.ClickException) as got:
        with plain_errors(lambda: False):
            open("/proc/no/such/file")
    assert got.value.message == "No such file or directory (/proc/no/such/file)"


def test_a_full_disk_says_where_the_status_file_is():
    """A write's ENOSPC names no file: the directory of the experiment's status file is named,
    where batchman writes (found filling a disk: 'Error: No space left on device', no more)."""
    for err, want in [(OSError(28, "No space left on device"),
                       "No space left on device: cannot write in /data/exp; free space there"),
                      (OSError(122, "Disk quota exceeded", "/data/exp/status.json.log"),
                       "Disk quota exceeded: cannot write /data/exp/status.json.log; free space there (or raise the quota)")]:
        with pytest.raises(click.ClickException) as got:
            with plain_errors(lambda: False, lambda: "/data/exp/status.json"):
                raise err
        assert got.value.message == want
    with pytest.raises(click.ClickException) as got:
        with plain_errors(lambda: False):           # (no experiment opened yet)
            raise OSError(28, "No space left on device")
    assert got.value.message == "No space left on device"


@pytest.mark.parametrize("error", [StoreError("locked"), FileNotFoundError(2, "gone", "x")])
def test_debug_shows_the_error_itself(error):
    with pytest.raises(type(error)):
        with plain_errors(lambda: True):
            raise error


def test_other_errors_are_not_ours_to_word():
    with pytest.raises(KeyError):
        with plain_errors(lambda: False):
            raise KeyError("a bug: its traceback is wanted")


def test_a_reader_gone_ends_quietly():
    code = ("import sys\nfrom batchman.said import plain_errors\n"
            "with plain_errors(lambda: False):\n    raise BrokenPipeError(32, 'Broken pipe')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_both_commands_say_the_same_line_for_an_unreadable_status_file(tmp_path):
    """The real commands, in processes of their own (the daemon's unregistering meets the same
    error after its round failed: still the one line)."""
    make_experiment(tmp_path, [1])
    (tmp_path / "status.json").unlink()
    (tmp_path / "status.json").mkdir()
    listed = subprocess.run([sys.executable, "-m", "batchman.cli", "-C", str(tmp_path), "list"],
                            capture_output=True, text=True)
    ran = daemon_run(tmp_path, "oneshot")
    want = f"Error: cannot read the status file {tmp_path / 'status.json'}: Is a directory\n"
    assert (listed.returncode, listed.stderr) == (1, want)
    assert (ran.returncode, ran.stderr) == (1, want)


def test_debug_shows_the_traceback_in_both_commands(tmp_path):
    """`batchman --debug` is known only once its group ran: asked when the error comes (the
    first shared handler asked before, and --debug showed no traceback)."""
    make_experiment(tmp_path, [1])
    (tmp_path / "status.json").unlink()
    (tmp_path / "status.json").mkdir()
    for argv in (["batchman.cli", "--debug", "-C", str(tmp_path), "list"],
                 ["batchman.daemon", "oneshot", "-C", str(tmp_path), "--debug"]):
        r = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True)
        assert r.returncode == 1 and "Traceback" in r.stderr and "CorruptStatus" in r.stderr, argv
