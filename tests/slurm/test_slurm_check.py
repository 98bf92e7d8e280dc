"""`batchman check` on the real SLURM cluster names a partition that does not exist (issue 16)."""

import os

import pytest
from click.testing import CliRunner

from batchman.backends import base
from batchman.cli.commands import main

from e2e_helpers import write_config

pytestmark = pytest.mark.slurm


def _check(cluster, root, monkeypatch, queue):
    for k, v in cluster.env.items():
        monkeypatch.setenv(k, v)
    os.makedirs(root / "raw", exist_ok=True)
    write_config(root, **{"batch.backend": "slurm", "batch.queue": queue, "batch.command": "/bin/true"})
    calls = []
    real = base.Runner.__call__
    monkeypatch.setattr(base.Runner, "__call__", lambda self, argv, **kw: calls.append(argv) or real(self, argv, **kw))
    r = CliRunner().invoke(main, ["-C", str(root), "check"])
    return r, calls


def test_check_names_a_misspelled_partition_with_those_that_exist(cluster, tmp_path, monkeypatch):
    r, calls = _check(cluster, tmp_path, monkeypatch, "shrot")
    assert r.exit_code == 1
    assert "batch.queue: partition 'shrot' does not exist in the batch system (did you mean 'short'?)" in r.output
    assert "it has: debug, short" in r.output
    assert [c[:3] for c in calls] == [["scontrol", "show", "partition"]]      # asked once


def test_check_passes_an_existing_partition(cluster, tmp_path, monkeypatch):
    r, _ = _check(cluster, tmp_path, monkeypatch, "short")
    assert r.exit_code == 0, r.output
    assert "partition(s): debug, short" in r.output
