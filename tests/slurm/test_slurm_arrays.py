"""Job arrays on the real one-node SLURM cluster (issue 14): a real ``batchman-daemon`` with
``batch.arrays`` on. Runs of one job definition ready in one iteration go as ONE sbatch
``--array``; each run keeps its own log, state, kill (``scancel <id>_<i>``) and retry; a daemon
killed between the array's sbatch and its record is followed by one that adopts every element
(found through the array's name and index), never submitting any twice. sbatch and scancel
are counted by shims put first on the daemon's PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from batchman.core import states as S

from clusterhelp import poll
from e2e_helpers import ANALYSIS, daemon, daemon_run, job_starts

from test_slurm_daemon import (  # noqa: F401 -- cleanup is a fixture
    best_mode, cleanup, cli, engine_blind_to_finished, env, mode_or_skip, our_jobs, slurm_experiment, states,
    stop_daemon, tasks,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(240)]

# the test analysis, and a line of its own on stdout and stderr (the task's logs must hold
# its own, not another element's); fails once (attempt 1) for the run in $FAIL_ONCE
LOUD = ANALYSIS.replace("sleep \"${SLEEP:-0.3}\"", """echo "stdout of $BATCHMAN_TASK"; echo "stderr of $BATCHMAN_TASK" >&2
[ "$1" = "${FAIL_ONCE:-}" ] && [ "$BATCHMAN_ATTEMPT" = 1 ] && { echo "failing once on purpose" >&2; exit 3; }
sleep "${SLEEP:-0.3}\"""")


def shims(root: Path) -> Path:
    """sbatch and scancel that note their arguments in <root>/calls, then run the real ones."""
    d = root / "shims"
    d.mkdir()
    for prog in ("sbatch", "scancel"):
        real = shutil.which(prog)
        assert real, f"{prog} not on PATH"
        p = d / prog
        p.write_text(f'#!/bin/bash\necho "{prog} $*" >> {root}/calls\nexec {real} "$@"\n')
        p.chmod(0o755)
    return d


def calls(root: Path, prog: str) -> list[list[str]]:
    try:
        lines = (root / "calls").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [l.split()[1:] for l in lines if l.split()[0] == prog]


def array_experiment(cluster, root: Path, runs, **over):
    e = slurm_experiment(cluster, root, runs, **{"batch.arrays": True, **over})
    (root / "analyze").write_text(LOUD)
    return e


def denv(cluster, root: Path, **extra) -> dict:
    d = env(cluster, root, **extra)
    d["PATH"] = f"{shims(root) if not (root / 'shims').exists() else root / 'shims'}:{d['PATH']}"
    return d


def element_states(cluster, e) -> dict[str, str]:
    """SLURM's state of each of our jobs, one row per array element (``squeue -r``)."""
    prefix = f"bm.{e.store.read().store_id}."
    cp = cluster.run("squeue", "--noheader", "--states=all", "--array", "--format=%j|%i|%T")
    assert cp.returncode == 0, cp.stderr
    return {i: s for n, i, s in (l.split("|") for l in cp.stdout.splitlines()) if n.startswith(prefix)}


def test_arrays_need_slurmdbd_with_jobcomp_runs_go_one_by_one(cluster, tmp_path, cleanup):
    e = array_experiment(cluster, tmp_path, [1, 2, 3], mode="jobcomp")
    cleanup[1].append(e)
    r = daemon_run(tmp_path, "verbose", env=denv(cluster, tmp_path, SLEEP=0.2), timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert {t.state for t in e.store.read().tasks} == {S.COMPLETED}
    sb = calls(tmp_path, "sbatch")
    assert len(sb) == 3 and not any(a.startswith("--array") for c in sb for a in c), sb


def array_of(e) -> tuple[str, dict[int, str]]:
    """The one array id of the tasks' job ids, and index -> run."""
    ids = {t.run: t.job_id for t in tasks(e).values()}
    bases = {i.split("_")[0] for i in ids.values()}
    assert len(bases) == 1 and all("_" in i for i in ids.values()), ids
    return bases.pop(), {int(i.split("_")[1]): r for r, i in ids.items()}


def test_six_runs_one_sbatch_each_run_its_own_element_and_logs(cluster, tmp_path, cleanup):
    runs = range(1, 7)
    e = array_experiment(cluster, tmp_path, runs, mode=mode_or_skip(cluster, "slurmdbd"))
    cleanup[1].append(e)
    r = daemon_run(tmp_path, "verbose", env=denv(cluster, tmp_path, SLEEP=0.5), timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    sb = calls(tmp_path, "sbatch")
    assert len(sb) == 1 and "--array=0-5" in sb[0], sb
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.run, t.state, t.reason) for t in st.tasks]
    aid, by_index = array_of(e)
    assert sorted(by_index) == list(range(6))
    for t in st.tasks:
        assert t.array_index is not None and t.job_id == f"{aid}_{t.array_index}" and t.intent is None
        assert (t.exit_code, t.analysed, t.attempt) == (0, 1, 1)
        logs = tmp_path / "logs"
        assert (logs / f"{t.run}.analysis.1.out").read_text() == f"stdout of {t.run}.analysis\n"
        assert (logs / f"{t.run}.analysis.1.err").read_text() == f"stderr of {t.run}.analysis\n"
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in runs}
    assert "unknown job" not in r.stdout        # the elements are known under their tasks' names
    one = next(t for t in st.tasks if t.run == 1)
    assert f"batch job {one.job_id} " in cli(tmp_path, "show", "1") and \
        f"element {one.array_index} of job array {one.array_name}" in cli(tmp_path, "show", "1")
    # SLURM has one array of six elements under the array's name, and nothing else of ours
    jobs = our_jobs(cluster, e)
    assert sorted(i for _, i, _ in jobs) == sorted(t.job_id for t in st.tasks)
    assert {n for n, _, _ in jobs} == {st.tasks[0].array_name}


def test_kill_cancels_only_its_element_and_a_failing_element_is_retried_alone(cluster, tmp_path, cleanup):
    runs = [1, 2, 3, 4]
    e = array_experiment(cluster, tmp_path, runs, mode=mode_or_skip(cluster, "slurmdbd"),
                         **{"policies.auto_restart_failed": True})
    cleanup[1].append(e)
    go = tmp_path / "go"                  # the jobs run until run 2 is killed (they slept 4 s)
    d = daemon(tmp_path, "verbose", env=denv(cluster, tmp_path, GO=go, SLEEP=0.3, FAIL_ONCE=3))
    cleanup[0].append(d)
    poll("the array submitted", lambda: all(t.job_id for t in tasks(e).values()), 60, show=lambda: states(e))
    aid, by_index = array_of(e)
    two = tasks(e)[2].job_id
    assert "kill queued for 1 task(s)" in cli(tmp_path, "kill", "2")
    poll("run 2 aborted", lambda: states(e)[2] == S.ABORTED, 60, show=lambda: states(e))
    go.write_text("go\n")
    poll("every run at its end", lambda: all(s in S.TERMINAL for s in states(e).values())
         and tasks(e)[3].state == S.COMPLETED, 120, show=lambda: states(e))
    out = stop_daemon(d)
    t = tasks(e)
    assert {r: t[r].state for r in runs} == {1: S.COMPLETED, 2: S.ABORTED, 3: S.COMPLETED, 4: S.COMPLETED}, out[-3000:]
    # the kill: one scancel, of run 2's element alone
    assert calls(tmp_path, "scancel") == [[two]]
    slurm = element_states(cluster, e)
    # a running element ends CANCELLED; a pending one cancelled alone leaves no record at all
    # (SLURM drops its index from the array), which batchman takes for its end too
    assert slurm.get(two, "CANCELLED") == "CANCELLED", slurm
    assert {slurm[t[r].job_id] for r in (1, 4)} == {"COMPLETED"}
    # the failure: run 3's element failed; the retry went alone, as a plain job of its own
    three = next(i for i, r in by_index.items() if r == 3)
    assert [(p.n, p.job_id, p.exit_code) for p in t[3].past] == [(1, f"{aid}_{three}", 3)]
    assert t[3].attempt == 2 and "_" not in t[3].job_id and t[3].array_name == ""
    sb = calls(tmp_path, "sbatch")
    assert len(sb) == 2 and "--array=0-3" in sb[0] and not any(a.startswith("--array") for a in sb[1]), sb
    starts = job_starts(tmp_path)
    assert starts.pop(("2.analysis", 1), 0) <= 1         # killed queued or running
    assert starts == {("1.analysis", 1): 1, ("3.analysis", 1): 1, ("3.analysis", 2): 1, ("4.analysis", 1): 1}
    assert "failing once on purpose" in (tmp_path / "logs" / "3.analysis.1.err").read_text()


def test_sigkill_after_the_arrays_sbatch_next_daemon_adopts_every_element(cluster, tmp_path, cleanup):
    runs = [1, 2, 3, 4]
    e = array_experiment(cluster, tmp_path, runs, mode=mode_or_skip(cluster, "slurmdbd"))
    cleanup[1].append(e)
    r = daemon_run(tmp_path, "loop", env=denv(cluster, tmp_path, SLEEP=1, BATCHMAN_CRASH_AT="after-submit"), timeout=60)
    assert r.returncode == -9, r.stdout + r.stderr
    st = e.store.read()
    # the intent named the array and each task's index before the sbatch; no id was recorded
    assert [t.state for t in st.tasks] == [S.SUBMITTING] * 4
    assert all(t.job_id == "" and t.intent is not None for t in st.tasks)
    name = st.tasks[0].array_name
    assert name and {t.array_name for t in st.tasks} == {name}
    assert sorted(t.array_index for t in st.tasks) == [0, 1, 2, 3]
    assert len(calls(tmp_path, "sbatch")) == 1
    assert {n for n, _, _ in our_jobs(cluster, e)} == {name}
    index = {t.run: t.array_index for t in st.tasks}
    r = daemon_run(tmp_path, "verbose", env=denv(cluster, tmp_path, SLEEP=1), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.state, t.reason) for t in st.tasks]
    assert len(calls(tmp_path, "sbatch")) == 1                 # adopted: nothing submitted again
    aid, by_index = array_of(e)
    assert {t.run: t.job_id for t in st.tasks} == {run: f"{aid}_{i}" for run, i in index.items()}
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in runs}
    assert "as job array" not in r.stdout and "submitted bm." not in r.stdout


def test_recover_after_losing_the_status_file_knows_the_array(cluster, tmp_path, cleanup):
    runs = [1, 2, 3]
    e = array_experiment(cluster, tmp_path, runs, mode=mode_or_skip(cluster, "slurmdbd"))
    cleanup[1].append(e)
    r = daemon_run(tmp_path, "loop", env=denv(cluster, tmp_path, SLEEP=1, BATCHMAN_CRASH_AT="after-submit"), timeout=60)
    assert r.returncode == -9, r.stdout + r.stderr
    for p in ("status.json", "status.json.bak"):
        os.unlink(tmp_path / p)
    out = cli(tmp_path, "recover")
    assert "recovered 3 task(s)" in out, out
    r = daemon_run(tmp_path, "verbose", env=denv(cluster, tmp_path, SLEEP=1), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.state, t.reason) for t in st.tasks]
    assert len(calls(tmp_path, "sbatch")) == 1
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in runs}
    assert all("_" in t.job_id for t in st.tasks)


@pytest.mark.parametrize("mode", ["slurmdbd"])
def test_elements_gone_from_squeue_are_judged_from_accounting(cluster, tmp_path, cleanup, monkeypatch, mode):
    """As after a daemon away longer than MinJobAge: squeue no longer lists the finished
    elements, so their ends come from accounting (sacct by element id). The Engine runs
    in-process; squeue runs for real, its rows of finished jobs are dropped. Not with jobcomp:
    ``sacct -c`` (22.05) shows elements by their raw ids only (it does not read the ArrayJobId /
    ArrayTaskId of the completion log: "Unknown type ArrayJobId"), so there an element SLURM
    ended without an exit marker and that left squeue unseen counts as vanished."""
    mode_or_skip(cluster, mode)
    e = array_experiment(cluster, tmp_path, [1, 2, 3], mode=mode)
    cleanup[1].append(e)
    eng = engine_blind_to_finished(cluster, tmp_path, e, monkeypatch)
    batch = eng.batch

    def step_until(what, pred, timeout):
        def once():
            eng.run_once()
            return pred()
        poll(what, once, timeout, every=0.3, show=lambda: states(e))

    step_until("all submitted", lambda: all(t.job_id for t in tasks(e).values()), 60)
    aid, _ = array_of(e)
    assert sum(r.argv[0] == "sbatch" for r in batch.runner.records) == 1
    cp = cluster.run("scancel", aid)                          # the whole array, by hand
    assert cp.returncode == 0, cp.stderr
    step_until("all ended", lambda: all(s in S.TERMINAL for s in states(e).values()), 90)
    t = tasks(e)
    assert {(t[r].state, t[r].failure) for r in t} == {(S.FAILED, "cancelled")}, [(x.state, x.reason) for x in t.values()]
    sacct = [r.argv for r in batch.runner.records if r.argv[0] == "sacct"]
    assert sacct and all(("--completion" in a) == (mode == "jobcomp") for a in sacct)
    assert any(f"{aid}_" in " ".join(a) for a in sacct)       # asked by element id
    eng.unregister()


def test_array_sbatch_hanging_after_submitting_is_adopted_not_submitted_again(cluster, tmp_path, cleanup):
    """sbatch submits the array, then hangs past batch.command_timeout: the daemon does not
    know the id, finds the array by its name and adopts each element; one array in SLURM."""
    runs = [1, 2, 3, 4]
    e = array_experiment(cluster, tmp_path, runs, mode=mode_or_skip(cluster, "slurmdbd"), **{"batch.command_timeout": 3.0})
    cleanup[1].append(e)
    d = denv(cluster, tmp_path, SLEEP=0.5)
    hang = tmp_path / "hang"
    hang.mkdir()
    (hang / "sbatch").write_text(f'#!/bin/bash\n{tmp_path}/shims/sbatch "$@"; rc=$?\nsleep 60\nexit $rc\n')
    (hang / "sbatch").chmod(0o755)
    d["PATH"] = f"{hang}:{d['PATH']}"
    r = daemon_run(tmp_path, "verbose", env=d, timeout=150)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.run, t.state, t.reason) for t in st.tasks]
    assert "sbatch timed out" in r.stdout
    assert len(calls(tmp_path, "sbatch")) == 1                 # found by the array's name: never again
    aid, by_index = array_of(e)
    assert sorted(by_index) == [0, 1, 2, 3] and all(t.attempt == 1 for t in st.tasks)
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in runs}
    assert {n for n, _, _ in our_jobs(cluster, e)} == {st.tasks[0].array_name}
