"""Job arrays on the real one-node Grid Engine (issue 14): a real ``batchman-daemon`` with
``batch.arrays`` on, as tests/slurm/test_slurm_arrays.py on SLURM. Runs of one job definition
ready in one iteration go as ONE ``qsub -t 1-N``; each run keeps its own log, state, kill
(``qdel <id>.<i+1>``) and retry; a daemon killed before or after the array's qsub is followed
by one that finds the array by its name and never submits it twice. qsub and qdel are counted
by shims put first on the daemon's PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchman.cli.commands import main as cli_main
from batchman.core import states as S

from clusterhelp import poll
from e2e_helpers import ANALYSIS, daemon, daemon_run, env_for, job_starts, make_experiment

pytestmark = [pytest.mark.gridengine, pytest.mark.slow, pytest.mark.timeout(240)]

# the test analysis, and a line of its own on stdout and stderr (the task's logs must hold
# its own, not another element's); fails once (attempt 1) for the run in $FAIL_ONCE
LOUD = ANALYSIS.replace("sleep \"${SLEEP:-0.3}\"", """echo "stdout of $BATCHMAN_TASK"; echo "stderr of $BATCHMAN_TASK" >&2
[ "$1" = "${FAIL_ONCE:-}" ] && [ "$BATCHMAN_ATTEMPT" = 1 ] && { echo "failing once on purpose" >&2; exit 3; }
sleep "${SLEEP:-0.3}\"""")


def experiment(root: Path, runs, **over):
    os.chmod(root, 0o755)
    cfg = {"batch.backend": "gridengine", "batch.arrays": True, "staging.stub_dir": "raw", "staging.cache_dir": "raw",
           "batch.command_timeout": 10.0, "daemon.delay": 0.2, "daemon.submit_grace": 60.0, **over}
    e = make_experiment(root, runs, segments=1, **cfg)
    (root / "analyze").write_text(LOUD)
    return e


def denv(root: Path, **extra) -> dict:
    """The daemon's environment: qsub and qdel shims first on PATH note their arguments in
    <root>/calls, then run the real ones."""
    d = root / "shims"
    if not d.exists():
        d.mkdir()
        for prog in ("qsub", "qdel"):
            real = shutil.which(prog)
            assert real, f"{prog} not on PATH"
            (d / prog).write_text(f'#!/bin/bash\necho "{prog} $*" >> {root}/calls\nexec {real} "$@"\n')
            (d / prog).chmod(0o755)
    env = env_for(root, **extra)
    env["PATH"] = f"{d}:{env['PATH']}"
    return env


def calls(root: Path, prog: str) -> list[list[str]]:
    try:
        lines = (root / "calls").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [ln.split()[1:] for ln in lines if ln.split()[0] == prog]


def cli(root, *args) -> str:
    r = CliRunner().invoke(cli_main, ["-C", str(root), *args])
    assert r.exit_code == 0, r.output
    return r.output


def tasks(e) -> dict:
    return {t.run: t for t in e.store.read().tasks}


def states(e) -> dict:
    return {t.run: (t.state, t.job_id) for t in e.store.read().tasks}


def queued(e) -> list[tuple[str, str]]:
    """(name, job id) of this experiment's jobs in qstat (an array job: once per row)."""
    from batchman.backends.base import Runner
    from batchman.backends.batch.gridengine import GridEngineBackend
    rows = GridEngineBackend(Runner(timeout=30)).list_ours(f"bm.{e.store.read().store_id}.")
    return [(r.name, r.job_id) for r in rows]


@pytest.fixture
def cleanup(gridengine_cluster):
    """Daemons started by the test are stopped and its jobs deleted, whatever happens."""
    procs: list[subprocess.Popen] = []
    exps: list = []
    yield procs, exps
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
    for e in exps:
        left = sorted({i.split(".")[0] for _, i in queued(e)})
        if left:
            subprocess.run(["qdel", *left], capture_output=True, timeout=30)


def array_of(e) -> tuple[str, dict[int, int]]:
    """The one array id of the tasks' job ids, and index -> run."""
    ids = {t.run: t.job_id for t in tasks(e).values()}
    bases = {i.split(".")[0] for i in ids.values()}
    assert len(bases) == 1 and all("." in i for i in ids.values()), ids
    return bases.pop(), {int(i.split(".")[1]) - 1: r for r, i in ids.items()}


def test_five_runs_one_qsub_each_run_its_own_element_and_logs(tmp_path, cleanup):
    runs = range(1, 6)
    e = experiment(tmp_path, runs)
    cleanup[1].append(e)
    r = daemon_run(tmp_path, "verbose", env=denv(tmp_path, SLEEP=0.5), timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    qsub = calls(tmp_path, "qsub")
    assert len(qsub) == 1 and qsub[0][qsub[0].index("-t") + 1] == "1-5", qsub
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.run, t.state, t.reason) for t in st.tasks]
    aid, by_index = array_of(e)
    assert sorted(by_index) == list(range(5))
    for t in st.tasks:
        assert t.array_index is not None and t.job_id == f"{aid}.{t.array_index + 1}" and t.intent is None
        assert (t.exit_code, t.analysed, t.attempt) == (0, 1, 1)
        logs = tmp_path / "logs"
        assert (logs / f"{t.run}.analysis.1.out").read_text() == f"stdout of {t.run}.analysis\n"
        assert (logs / f"{t.run}.analysis.1.err").read_text() == f"stderr of {t.run}.analysis\n"
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in runs}
    assert "unknown job" not in r.stdout        # the elements are known under their tasks' names
    one = tasks(e)[1]
    assert f"element {one.array_index} of job array {one.array_name}" in cli(tmp_path, "show", "1")
    # Grid Engine's accounting has one record per task, all under the array's name
    # (the daemon may end first: each job's done file says it ended, before the accounting flush)
    def acct(field):
        cp = subprocess.run(["qacct", "-j", aid], capture_output=True, text=True, timeout=30)
        return [ln.split()[1] for ln in cp.stdout.splitlines() if ln.startswith(field)]
    poll("every task in qacct", lambda: sorted(acct("taskid")) == ["1", "2", "3", "4", "5"], 60,
         show=lambda: acct("taskid"))
    assert set(acct("jobname")) == {st.tasks[0].array_name}


def test_kill_deletes_only_its_element_and_a_failing_element_is_retried_alone(tmp_path, cleanup):
    runs = [1, 2, 3, 4]
    e = experiment(tmp_path, runs, **{"policies.auto_restart_failed": True})
    cleanup[1].append(e)
    go = tmp_path / "go"                  # the jobs run until run 2 is killed (they slept 6 s)
    d = daemon(tmp_path, "verbose", env=denv(tmp_path, GO=go, SLEEP=0.3, FAIL_ONCE=3))
    cleanup[0].append(d)
    poll("the array submitted", lambda: all(t.job_id for t in tasks(e).values()), 60, show=lambda: states(e))
    aid, by_index = array_of(e)
    two = tasks(e)[2].job_id
    assert "kill queued for 1 task(s)" in cli(tmp_path, "kill", "2")
    poll("run 2 aborted", lambda: tasks(e)[2].state == S.ABORTED, 60, show=lambda: states(e))
    go.write_text("go\n")
    poll("every run at its end", lambda: all(t.state in S.TERMINAL for t in tasks(e).values())
         and tasks(e)[3].state == S.COMPLETED, 150, show=lambda: states(e))
    d.terminate()
    out, _ = d.communicate(timeout=60)
    t = tasks(e)
    assert {r: t[r].state for r in runs} == {1: S.COMPLETED, 2: S.ABORTED, 3: S.COMPLETED, 4: S.COMPLETED}, out[-3000:]
    assert calls(tmp_path, "qdel") == [[two]]                 # the kill: one qdel, of run 2's element alone
    # the failure: run 3's element failed; the retry went alone, as a plain job of its own
    three = next(i for i, r in by_index.items() if r == 3)
    assert [(p.n, p.job_id, p.exit_code) for p in t[3].past] == [(1, f"{aid}.{three + 1}", 3)]
    assert t[3].attempt == 2 and t[3].job_id.isdigit() and t[3].array_name == ""
    qsub = calls(tmp_path, "qsub")
    assert len(qsub) == 2 and "-t" in qsub[0] and "-t" not in qsub[1], qsub
    starts = job_starts(tmp_path)
    assert starts.pop(("2.analysis", 1), 0) <= 1         # killed queued or running
    assert starts == {("1.analysis", 1): 1, ("3.analysis", 1): 1, ("3.analysis", 2): 1, ("4.analysis", 1): 1}
    assert "failing once on purpose" in (tmp_path / "logs" / "3.analysis.1.err").read_text()


@pytest.mark.parametrize("point, submitted", [("before-submit", 0), ("after-submit", 1)])
def test_sigkill_around_the_arrays_qsub_next_daemon_never_submits_it_twice(tmp_path, cleanup, point, submitted):
    runs = [1, 2, 3, 4]
    e = experiment(tmp_path, runs)
    cleanup[1].append(e)
    r = daemon_run(tmp_path, "loop", env=denv(tmp_path, SLEEP=1, BATCHMAN_CRASH_AT=point), timeout=60)
    assert r.returncode == -9, r.stdout + r.stderr
    st = e.store.read()
    # the intent named the array and each task's index before the qsub; no id was recorded
    assert [t.state for t in st.tasks] == [S.SUBMITTING] * 4
    assert all(t.job_id == "" and t.intent is not None for t in st.tasks)
    name = st.tasks[0].array_name
    assert name and {t.array_name for t in st.tasks} == {name}
    assert sorted(t.array_index for t in st.tasks) == [0, 1, 2, 3]
    assert len(calls(tmp_path, "qsub")) == submitted
    assert {n for n, _ in queued(e)} == ({name} if submitted else set())
    r = daemon_run(tmp_path, "verbose", env=denv(tmp_path, SLEEP=1), timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.state, t.reason) for t in st.tasks]
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in runs}
    qsub = calls(tmp_path, "qsub")
    if submitted:                                              # adopted: each element as indexed
        assert len(qsub) == 1
        aid, _ = array_of(e)
        assert {t.job_id for t in st.tasks} == {f"{aid}.{t.array_index + 1}" for t in st.tasks}
        assert "as job array" not in r.stdout
    else:                      # not found by its name: a resumed submission goes alone, once each
        assert len(qsub) == 4 and not any("-t" in c for c in qsub), qsub
        assert all(t.job_id.isdigit() and t.array_name == "" for t in st.tasks)


def test_recover_after_losing_the_status_file_knows_the_array(tmp_path, cleanup):
    runs = [1, 2, 3]
    e = experiment(tmp_path, runs)
    cleanup[1].append(e)
    go = tmp_path / "go"                  # the array's jobs run until recovered (they slept 3 s)
    r = daemon_run(tmp_path, "loop", env=denv(tmp_path, GO=go, SLEEP=0.3, BATCHMAN_CRASH_AT="after-submit"), timeout=60)
    assert r.returncode == -9, r.stdout + r.stderr
    for p in ("status.json", "status.json.bak"):
        os.unlink(tmp_path / p)
    out = cli(tmp_path, "recover")
    go.write_text("go\n")
    assert "recovered 3 task(s)" in out, out
    r = daemon_run(tmp_path, "verbose", env=denv(tmp_path, SLEEP=1), timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.state, t.reason) for t in st.tasks]
    assert len(calls(tmp_path, "qsub")) == 1
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in runs}
    assert all("." in t.job_id for t in st.tasks)


def test_arrays_off_submits_one_plain_job_per_run(tmp_path, cleanup):
    e = experiment(tmp_path, [1, 2, 3], **{"batch.arrays": False})
    cleanup[1].append(e)
    r = daemon_run(tmp_path, "verbose", env=denv(tmp_path, SLEEP=0.2), timeout=150)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert {t.state for t in e.store.read().tasks} == {S.COMPLETED}
    qsub = calls(tmp_path, "qsub")
    assert len(qsub) == 3 and not any("-t" in c for c in qsub), qsub
    assert all(t.job_id.isdigit() and t.array_name == "" for t in e.store.read().tasks)
