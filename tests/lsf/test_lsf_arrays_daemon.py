"""The daemon with ``batch.arrays`` on the LSF backend, against the LSF test double: runs ready
together go as ONE ``bsub -J "name[1-N]"``; each keeps its own log, state, kill (``bkill
"<id>[<i>]"``) and retry; a daemon killed after the bsub is followed by one that adopts every
element, never submitting twice; ``batch.arrays: false`` submits one job per run."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from batchman.cli.commands import main as cli_main
from batchman.core import states as S

from clusterhelp import poll
from e2e_helpers import ANALYSIS, daemon, daemon_run, env_for, job_starts, make_experiment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LOUD = ANALYSIS.replace("sleep \"${SLEEP:-0.3}\"", """echo "stdout of $BATCHMAN_TASK"; echo "stderr of $BATCHMAN_TASK" >&2
[ "$1" = "${FAIL_ONCE:-}" ] && [ "$BATCHMAN_ATTEMPT" = 1 ] && { echo "failing once on purpose" >&2; exit 3; }
sleep "${SLEEP:-0.3}\"""")


def experiment(root, runs, **over):
    os.chmod(root, 0o755)
    cfg = {"batch.backend": "lsf", "batch.arrays": True, "staging.stub_dir": "raw", "staging.cache_dir": "raw",
           "batch.command_timeout": 10.0, "daemon.delay": 0.2, "daemon.submit_grace": 60.0, **over}
    e = make_experiment(root, runs, segments=1, **cfg)
    (root / "analyze").write_text(LOUD)
    return e


def bsubs(lsf) -> list[str]:
    """The -J of every bsub."""
    return [c["argv"][c["argv"].index("-J") + 1] for c in lsf.calls("bsub")]


def tasks(e) -> dict:
    return {t.run: t for t in e.store.read().tasks}


def cli(root, *args) -> str:
    r = CliRunner().invoke(cli_main, ["-C", str(root), *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_four_runs_one_bsub_each_run_its_own_element_and_logs(lsf, tmp_path):
    lsf.setenv("LSF_DOUBLE_SLOTS", 4)
    e = experiment(tmp_path, [1, 2, 3, 4])
    r = daemon_run(tmp_path, "verbose", env=env_for(tmp_path, SLEEP=0.3), timeout=150)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.run, t.state, t.reason) for t in st.tasks]
    assert bsubs(lsf) == [f"{st.tasks[0].array_name}[1-4]"]
    aid = st.tasks[0].job_id.split("[")[0]
    for t in st.tasks:
        assert t.job_id == f"{aid}[{t.array_index + 1}]" and (t.exit_code, t.attempt) == (0, 1)
        assert (tmp_path / "logs" / f"{t.run}.analysis.1.out").read_text().startswith(f"stdout of {t.run}.analysis\n")
        assert (tmp_path / "logs" / f"{t.run}.analysis.1.err").read_text() == f"stderr of {t.run}.analysis\n"
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in (1, 2, 3, 4)}
    assert "unknown job" not in r.stdout


def test_kill_one_element_and_retry_a_failed_one_alone(lsf, tmp_path):
    lsf.setenv("LSF_DOUBLE_SLOTS", 4)
    e = experiment(tmp_path, [1, 2, 3, 4], **{"policies.auto_restart_failed": True})
    go = tmp_path / "go"                  # the jobs run until run 2 is killed (they slept 4 s)
    d = daemon(tmp_path, "verbose", env=env_for(tmp_path, GO=go, SLEEP=0.3, FAIL_ONCE=3))
    try:
        poll("the array submitted", lambda: all(t.job_id for t in tasks(e).values()), 60)
        two = tasks(e)[2].job_id
        assert "kill queued for 1 task(s)" in cli(tmp_path, "kill", "2")
        poll("run 2 aborted", lambda: tasks(e)[2].state == S.ABORTED, 60)
        go.write_text("go\n")
        poll("every run at its end", lambda: all(t.state in S.TERMINAL for t in tasks(e).values())
             and tasks(e)[3].state == S.COMPLETED, 90, show=lambda: {r: t.state for r, t in tasks(e).items()})
    finally:
        go.write_text("go\n")
        d.terminate()
        out, _ = d.communicate(timeout=60)
    t = tasks(e)
    assert {r: t[r].state for r in t} == {1: S.COMPLETED, 2: S.ABORTED, 3: S.COMPLETED, 4: S.COMPLETED}, out[-3000:]
    assert [c["argv"] for c in lsf.calls("bkill")] == [[two]]
    assert [p.exit_code for p in t[3].past] == [3] and "[" in t[3].past[0].job_id
    assert t[3].attempt == 2 and t[3].job_id.isdigit() and t[3].array_name == ""
    names = bsubs(lsf)
    assert len(names) == 2 and names[0].endswith("[1-4]") and "[" not in names[1]


def test_sigkill_after_the_bsub_next_daemon_adopts_every_element(lsf, tmp_path):
    lsf.setenv("LSF_DOUBLE_SLOTS", 4)
    e = experiment(tmp_path, [1, 2, 3])
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path, SLEEP=1, BATCHMAN_CRASH_AT="after-submit"), timeout=60)
    assert r.returncode == -9, r.stdout + r.stderr
    st = e.store.read()
    assert all(t.state == S.SUBMITTING and t.job_id == "" and t.array_name for t in st.tasks)
    r = daemon_run(tmp_path, "verbose", env=env_for(tmp_path, SLEEP=1), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    st = e.store.read()
    assert {t.state for t in st.tasks} == {S.COMPLETED}, [(t.state, t.reason) for t in st.tasks]
    assert len(lsf.calls("bsub")) == 1                          # adopted: never submitted again
    assert {t.job_id.split("[")[1] for t in st.tasks} == {f"{t.array_index + 1}]" for t in st.tasks}
    assert job_starts(tmp_path) == {(f"{x}.analysis", 1): 1 for x in (1, 2, 3)}


def test_arrays_off_submits_one_job_per_run(lsf, tmp_path):
    lsf.setenv("LSF_DOUBLE_SLOTS", 4)
    e = experiment(tmp_path, [1, 2, 3], **{"batch.arrays": False})
    r = daemon_run(tmp_path, "verbose", env=env_for(tmp_path, SLEEP=0.2), timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert {t.state for t in e.store.read().tasks} == {S.COMPLETED}
    assert len(bsubs(lsf)) == 3 and not any("[" in n for n in bsubs(lsf))
