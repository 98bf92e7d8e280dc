"""Issue 18: `batchman-daemon oneshot` at 1,000,000 tasks: what it does once, it does once
(the status file decoded once per process), and it leaves without freeing every task."""

import pytest

from batchman.core.model import Intent
from batchman.daemon import record as R
from batchman.daemon.work import Work

from test_engine_survey import engine  # noqa: F401 - a fixture: 10 tasks, the first running


@pytest.fixture
def loads(engine, monkeypatch):  # noqa: F811
    """The file decoded by the engine's store (not by the tests' check of every write)."""
    e, eng, _ = engine
    seen = []
    real = e.store._follow_file
    monkeypatch.setattr(e.store, "_follow_file", lambda sig: seen.append(sig) or real(sig))
    return seen


def test_no_new_unknown_job_reads_the_file_no_more_though_cleared_intents_wait(engine, loads):  # noqa: F811
    """A release done in the iteration clears its intent in this process's copy, to be written
    with the next write; looking for unknown jobs (none new) used to abort a transaction, which
    threw that copy away: the next write decoded the whole file again (8 s and twice the memory
    at 1,000,000 tasks)."""
    e, eng, _ = engine
    with e.store.transaction("test") as st:
        st.tasks[0].intent = Intent(actions=["release"], owner=eng.me, at=1.0)
    eng.run_once()
    loads.clear()
    t = e.store.read().index()["1.analysis"]
    eng.cleared = {"1.analysis": Work.of(t, ["release"])}  # as Engine._record_results leaves it
    R.apply_cleared(e.store.read(), eng.cleared, eng.me)
    assert eng.update_unknown() == []
    eng.unregister()
    assert loads == []
    assert e.store.read().index()["1.analysis"].intent is None
    assert eng.me not in {d.id for d in e.store.read().daemons}


@pytest.mark.parametrize("mode", ["oneshot", "quietone"])
def test_one_iteration_ends_the_process_at_once_with_everything_written(tmp_path, mode):
    """Freeing a million tasks one by one took 1.5 s of oneshot's 20: it leaves with os._exit
    (no atexit hook runs) once its report is out and the file, the log and the page are written."""
    import subprocess
    import sys
    from e2e_helpers import env_for, make_experiment
    e = make_experiment(tmp_path, [1, 2])
    code = ("import atexit; atexit.register(lambda: print('freed as usual', flush=True)); "
            "from batchman.daemon.main import main; main(['-C', %r, %r])" % (str(tmp_path), mode))
    r = subprocess.run([sys.executable, "-c", code], env=env_for(tmp_path), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "freed as usual" not in r.stdout
    assert ("iteration done" in r.stdout) == (mode == "oneshot")
    st = e.store.read()
    assert st.daemons == [] and {t.state for t in st.tasks} == {"staging"}
    with open(e.store.html_path, encoding="utf-8") as f:
        assert f"batchman generation {st.generation} " in f.readline()


def test_unknown_jobs_are_those_no_task_has_as_its_current_attempt():
    """Found through the index (a listing of a few jobs no longer builds a set of every task's
    job name: 0.4 s and 50 MB at the end of oneshot at 1,000,000 tasks)."""
    from batchman.backends.base import RUNNING, JobInfo
    from batchman.core.model import Status, Task
    from batchman.daemon.unknown import keep_unknown, scan

    class Listing:
        capabilities = type("C", (), {"listing_reuse": False})()

        def list_ours(self, prefix):
            return [JobInfo(n, str(i), RUNNING) for i, n in enumerate(names)]

    tasks = [Task(run=1, job_name="bm.s1.1.analysis.2", attempt=2), Task(run=2, job="reco", seg=3, attempt=1,
                                                                         job_name="bm.s1.2.reco.3.1")]
    names = ["bm.s1.1.analysis.2", "bm.s1.1.analysis.1", "bm.s1.2.reco.3.1", "bm.s1.2.reco.4.1", "bm.s1.9.x.1",
             "someone-else"]
    st = Status(store_id="s1", tasks=tasks)
    found = scan(st, Listing(), True, lambda: 5.0)
    assert [u.name for u in found] == ["bm.s1.1.analysis.1", "bm.s1.2.reco.4.1", "bm.s1.9.x.1"]
    tasks.append(Task(run=9, job="x", attempt=1, job_name="bm.s1.9.x.1"))     # taken in since
    assert [u.name for u in keep_unknown(st, found)[0]] == ["bm.s1.1.analysis.1", "bm.s1.2.reco.4.1"]


def test_one_iteration_renders_the_page_once_of_its_last_write(tmp_path, monkeypatch):
    """The page of the iteration's write was replaced a moment later by the one of the daemon's
    unregistering: at 1,000,000 tasks a render (~0.4 s) nobody could read."""
    from click.testing import CliRunner
    from batchman.daemon.main import main
    from batchman.page.live import LivePage
    from e2e_helpers import make_experiment
    e = make_experiment(tmp_path, [1, 2])
    rendered = []
    real = LivePage.__call__
    monkeypatch.setattr(LivePage, "__call__", lambda self, st, changed=None, **kw: rendered.append(st.generation)
                        or real(self, st, changed, **kw))
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "oneshot"])
    assert r.exit_code == 0, r.output
    st = e.store.read()
    assert rendered == [st.generation] and st.daemons == []
    with open(e.store.html_path, encoding="utf-8") as f:
        assert f"batchman generation {st.generation} " in f.readline()


@pytest.mark.parametrize("mode", ["oneshot", "quietone"])
def test_one_iteration_leaves_the_cyclic_collector_off_to_the_end(tmp_path, mode):
    """Switched on again after the iteration, the collector walked everything it had made three
    times (~1.5 s of oneshot at 1,000,000 tasks) just before the process ended."""
    import subprocess
    import sys
    from e2e_helpers import env_for, make_experiment
    make_experiment(tmp_path, [1, 2])
    code = ("import gc; from batchman.util import procs; real = procs.leave_now; "
            "procs.leave_now = lambda code=0: (print('collector on:', gc.isenabled(), flush=True), real(code)); "
            "from batchman.daemon.main import main; main(['-C', %r, %r])" % (str(tmp_path), mode))
    r = subprocess.run([sys.executable, "-c", code], env=env_for(tmp_path), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "collector on: False" in r.stdout


def test_the_printed_report_names_the_file_of_a_segment_task(tmp_path):
    """A round that moved a run's file tasks printed '2120 reco: completed -> new' for each: which
    file, it did not say (199 alike lines for a run of 199 files). Each now says it as `batchman
    list --segments` does: reco[1]."""
    from e2e_helpers import daemon_run
    from test_jobs_e2e import bm, experiment
    from batchman.core.model import Task
    e = experiment(tmp_path, [], jobs={"reco": {"command": "true", "args": "{run} {segment}", "per": "segment"}})
    with e.store.transaction("test") as st:
        st.tasks = [Task(run=2120, job="reco", seg=s, state="completed", since=1.0) for s in (0, 1)]
    bm(tmp_path, "restart", "2120.reco.1")
    r = daemon_run(tmp_path, "oneshot", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "  2120 reco[1]: completed -> new (restarted on request)" in r.stdout, r.stdout
    assert "reco[0]" not in r.stdout and "2120 reco:" not in r.stdout


def test_a_oneshot_whose_reader_went_away_ends_quietly_with_its_round_written(tmp_path):
    """`batchman-daemon oneshot | head -1`: the round was written, then printing its report
    failed and it ended with 'Error: Broken pipe' and exit code 1 (`batchman list | head -1`
    ends quietly, exit code 0): the same now. The reader is gone before it starts here."""
    import os
    import subprocess
    import sys
    from e2e_helpers import env_for, make_experiment
    e = make_experiment(tmp_path, [1, 2, 3])
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "batchman.daemon", "-C", str(tmp_path), "oneshot"], stdout=w,
                           stderr=subprocess.PIPE, env=env_for(tmp_path), text=True, timeout=60)
    finally:
        os.close(w)
    assert (p.returncode, p.stderr) == (0, "")
    st = e.store.read()
    assert {t.state for t in st.tasks} == {"staging"} and st.daemons == []


def test_a_oneshot_with_work_left_is_not_a_missing_daemon_until_stale_after(tmp_path):
    """Rounds from cron (`batchman-daemon oneshot`): every command said 'no daemon running, N
    task(s) pending: start one' in red between two rounds, and `batchman watch-daemon` alerted.
    The last round counts as a heartbeat for daemon.stale_after."""
    import subprocess
    import sys
    import time

    from click.testing import CliRunner

    from batchman.cli.commands import main
    from e2e_helpers import daemon_run, env_for, make_experiment
    e = make_experiment(tmp_path, [1, 2], **{"daemon.stale_after": 3.0, "staging.local_delay": 60.0})
    assert daemon_run(tmp_path, "oneshot", env=env_for(tmp_path)).returncode == 0   # staging: work left
    st = e.store.read()
    assert st.daemons == [] and st.last_round is not None and time.time() - st.last_round < 3
    first = CliRunner().invoke(main, ["-C", str(tmp_path), "list"]).output.splitlines()[0]
    assert "[no daemon running since a round " in first and "(a oneshot), 2 task(s) pending]" in first
    watch = [sys.executable, "-m", "batchman.cli.commands", "-C", str(tmp_path), "watch-daemon"]
    r = subprocess.run(watch, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("no daemon running; a oneshot's round "), r.stdout + r.stderr
    time.sleep(max(0.0, st.last_round + 3.2 - time.time()))       # no round since: a daemon is missing now
    r = subprocess.run(watch, capture_output=True, text=True)
    assert r.returncode == 1 and "work is pending but no daemon is alive" in r.stderr
    first = CliRunner().invoke(main, ["-C", str(tmp_path), "list"]).output.splitlines()[0]
    assert "[no daemon running, 2 task(s) pending: start one with `batchman-daemon`]" in first


@pytest.mark.parametrize("mode, recorded", [("oneshot", True), ("quietone", True), ("loop", False), ("verbose", False)])
def test_only_a_oneshots_round_is_recorded_as_the_last_round(tmp_path, mode, recorded):
    """A looping daemon stopped with work pending is a daemon missing at once, not 'a oneshot'."""
    from batchman.daemon.engine import Engine
    from e2e_helpers import make_experiment
    from test_engine_survey import Batch, Staging
    e = make_experiment(tmp_path, [1])
    eng = Engine(e.params, e.store, Batch(), Staging(), mode=mode)
    eng.run_once()
    eng.unregister()
    assert (e.store.read().last_round is not None) == recorded
