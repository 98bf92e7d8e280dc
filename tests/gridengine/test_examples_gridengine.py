"""examples/alcap-production on the real Grid Engine, from `batchman init --example` to every run
completed: only the runs of one dataset are added, alcapana then rootana on its output, at most
batch.max_jobs jobs at once, the expected outputs there, the fetched MIDAS files released."""

from __future__ import annotations

import os
import re

import pytest
from click.testing import CliRunner

from batchman.core import states as S
from batchman.cli.commands import main as cli

from e2e_helpers import daemon_run, env_with_batchman, example_experiment

pytestmark = [pytest.mark.gridengine, pytest.mark.slow, pytest.mark.timeout(280)]


def add_and_run(backend, e, root, *add_args):
    """`batchman add --file runs.txt ADD_ARGS`, then the daemon until nothing is left; our jobs
    still in Grid Engine afterwards are cancelled."""
    prefix = f"bm.{e.store.read().store_id}."
    try:
        r = CliRunner().invoke(cli, ["-C", str(root), "add", "--file", str(root / "runs.txt"), *add_args])
        assert r.exit_code == 0, r.output
        d = daemon_run(root, "--delay", "0.3", env=env_with_batchman(os.environ), timeout=240)
        assert d.returncode == 0, d.stdout[-3000:] + d.stderr
    finally:
        left = [j.job_id for j in backend.list_ours(prefix)]
        if left:
            backend.cancel(left)


def test_alcap_production_dataset_al100_alcapana_then_rootana_to_completed(backend, tmp_path):
    e = example_experiment(tmp_path, "alcap-production")
    add_and_run(backend, e, tmp_path, "--dataset", "Al100")
    tasks = {(t.run, t.job): t for t in e.store.read().tasks}
    assert sorted(tasks) == [(r, j) for r in (2119, 2120, 2121) for j in ("alcapana", "rootana")]
    assert {t.state for t in tasks.values()} == {S.COMPLETED}, [(k, t.state, t.reason) for k, t in tasks.items()]
    # a job id, or with batch.arrays (on by default) an array element's <array id>.<task>
    assert all(t.meta.get("dataset") == "Al100" and re.fullmatch(r"\d+(\.\d+)?", t.job_id) for t in tasks.values())
    for run in (2119, 2120, 2121):
        tree = tmp_path / f"out/alcapana_v1/tree{run:05d}.root"
        hist = tmp_path / f"out/rootana_v1/hist{run:05d}.root"
        assert "200 events" in tree.read_text()
        assert str(tree) in hist.read_text() and "TME_Generator" in hist.read_text()   # rootana read alcapana's tree
        assert tasks[(run, "rootana")].inputs == (str(tree),)
    assert list((tmp_path / "midas").glob("run*.mid")) == []          # fetched files released
    # never more than batch.max_jobs (2) of ours in the batch system: from the journal's transitions
    live = set()
    peak = 0
    for h in e.store.history():
        (live.add if h["to"] in (S.SUBMITTED, S.QUEUED, S.RUNNING) else live.discard)(h["task"])
        peak = max(peak, len(live))
    assert 1 <= peak <= 2
