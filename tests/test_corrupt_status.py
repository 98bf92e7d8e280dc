"""Issue 16.5 (CLI and store): a corrupt status file points to `batchman recover`, and recover
keeps a readable backup under a name that says it is readable."""

import os

import pytest
from click.testing import CliRunner

from batchman.cli.commands import main

from e2e_helpers import daemon_run, make_experiment

pytestmark = pytest.mark.slow


def _corrupt_with_a_good_backup(root):
    make_experiment(root, [1, 2])
    daemon_run(root, "quietone")
    daemon_run(root, "quietone")
    assert (root / "status.json.bak").exists()
    (root / "status.json").write_bytes(b'{"schema": 1, "tas')         # a torn copy by hand


def test_a_corrupt_status_file_names_batchman_recover(tmp_path):
    _corrupt_with_a_good_backup(tmp_path)
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "list"])
    assert r.exit_code == 1
    assert "is unreadable" in r.output and "`batchman recover`" in r.output and "cp " in r.output
    os.unlink(tmp_path / "status.json.bak")
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "list"])
    assert r.exit_code == 1 and "There is no backup copy: `batchman recover` rebuilds it" in r.output


def test_recover_keeps_a_readable_backup_as_readable_not_unreadable(tmp_path):
    _corrupt_with_a_good_backup(tmp_path)
    backup = (tmp_path / "status.json.bak").read_bytes()
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "recover"])
    assert r.exit_code == 0, r.output
    assert not list(tmp_path.glob("status.json.bak.unreadable-*"))
    kept = list(tmp_path.glob("status.json.bak.replaced-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == backup
    assert f"a readable copy this rebuild replaced is kept as {kept[0]}" in r.output
    assert len(list(tmp_path.glob("status.json.unreadable-*"))) == 1      # the torn file, for what it is
