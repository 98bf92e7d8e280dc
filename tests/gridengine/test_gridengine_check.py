"""`batchman check` on the real Grid Engine names a queue that does not exist (issue 16)."""

import os

import pytest
from click.testing import CliRunner

from batchman.backends import base
from batchman.cli.commands import main

from e2e_helpers import write_config

pytestmark = pytest.mark.gridengine


def test_check_names_a_misspelled_queue_with_those_that_exist(gridengine_cluster, tmp_path, monkeypatch):
    os.makedirs(tmp_path / "raw")
    write_config(tmp_path, **{"batch.backend": "gridengine", "batch.queue": "al.q", "batch.command": "/bin/true"})
    calls = []
    real = base.Runner.__call__
    monkeypatch.setattr(base.Runner, "__call__", lambda self, argv, **kw: calls.append(argv) or real(self, argv, **kw))
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "check"])
    assert r.exit_code == 1
    assert "batch.queue: queue 'al.q' does not exist in the batch system (did you mean 'all.q'?)" in r.output
    assert "it has: " in r.output and "all.q" in r.output.split("it has: ")[1]
    assert calls == [["qconf", "-sql"]]                                        # asked once
    write_config(tmp_path, **{"batch.backend": "gridengine", "batch.queue": "all.q@localhost",
                              "batch.command": "/bin/true"})
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "check"])
    assert r.exit_code == 0, r.output
