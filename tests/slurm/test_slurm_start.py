"""contrib/slurm/start.sh starts the daemons from a directory of the cluster's own, and restarts
a slurmd left running in a removed directory: there every job step printed "slurmstepd: error:
Unable to get current working directory" into the job's stderr (a helper had started the cluster
from a worktree removed afterwards, and CI's SLURM tests failed on it)."""

from __future__ import annotations

import os
import shutil
import subprocess

from clusterhelp import REPO, slurm_outage, slurm_start, slurm_wait_answers


def _cwd(cluster, name: str) -> str:
    pid = (cluster.dir / "run" / f"{name}.pid").read_text().strip()
    return os.readlink(f"/proc/{pid}/cwd")


def _start_sh(cluster, cwd) -> str:
    flags = ["--with-slurmdbd"] if cluster.accounting == "slurmdbd" else []
    cp = subprocess.run(["bash", str(REPO / "contrib/slurm/start.sh"), *flags], cwd=cwd, capture_output=True,
                        text=True, env={**os.environ, **cluster.env}, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp.stdout


def test_daemons_run_in_the_clusters_directory_not_the_callers(cluster, tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    with slurm_outage(cluster.env, ("slurmd",)):
        _start_sh(cluster, checkout)        # called from a checkout that may be removed later
        assert _cwd(cluster, "slurmd") == str(cluster.dir / "run")


def test_a_slurmd_left_in_a_removed_directory_is_restarted(cluster, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    conf = cluster.env["SLURM_CONF"]
    with slurm_outage(cluster.env, ("slurmd",)):
        # as start.sh used to start it: from the caller's directory, here one removed afterwards
        p = subprocess.Popen(["setsid", "slurmd", "-D", "-f", conf], cwd=gone, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **cluster.env})
        (cluster.dir / "run" / "slurmd.pid").write_text(f"{p.pid}\n")
        shutil.rmtree(gone)
        assert _cwd(cluster, "slurmd").endswith(" (deleted)")
        out = _start_sh(cluster, tmp_path)
        assert "slurmd runs in a removed directory: restarting it" in out
        assert p.wait(timeout=30) is not None            # the old one stopped
        assert _cwd(cluster, "slurmd") == str(cluster.dir / "run")
    slurm_wait_answers(cluster.env)
    slurm_start(cluster.env, cluster.accounting == "slurmdbd")
