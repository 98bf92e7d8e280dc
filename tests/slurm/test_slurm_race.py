"""Issue 15.1 on the real SLURM cluster: two live daemons never submit one attempt twice.

The interleaving of tests/test_race.py (hooks at the crash points, in-process daemons),
with sbatch/squeue for real. Counted twice: the ledger each job appends to, and the jobs
of this experiment's name that slurmctld knows.
"""

import time

import pytest

from batchman.core import states as S

from e2e_helpers import job_starts
from race_helpers import issue_interleaving
from test_slurm_daemon import cleanup, env, our_jobs, slurm_experiment  # noqa: F401 -- cleanup is a fixture

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.mark.parametrize("b1_alive", [True, False], ids=["B1-alive", "B1-dead"])
def test_two_daemons_never_submit_one_attempt_twice_on_slurm(cluster, tmp_path, cleanup, monkeypatch, b1_alive):
    e = slurm_experiment(cluster, tmp_path, [1], **{"daemon.html_file": ""})
    cleanup[1].append(e)
    for k, v in env(cluster, tmp_path, SLEEP=1).items():
        monkeypatch.setenv(k, v)
    t = issue_interleaving(e, b1_alive, timeout=120)
    assert t.state == S.COMPLETED, t.reason
    assert t.attempt == 1
    time.sleep(2)           # a second job, if any, has started by now
    names = [n for n, _, _ in our_jobs(cluster, e)]
    assert names.count(t.job_name) == 1, names          # slurmctld knows one job of that attempt
    assert job_starts(tmp_path) == {("1.analysis", 1): 1}
