"""Issue 18: between full scans the daemon reads only the marker files of the jobs whose done
file is there or whose end the batch system reports; a full scan (a daemon's first round, and
every FULL_SCAN_EVERY s) still finds an end whose done file was lost."""

import os

import pytest

from batchman.backends.base import BatchBase
from batchman.core import states as S
from batchman.core.model import Task
from batchman.core.observed import ABSENT, FINISHED, QUEUED, RUNNING, JobInfo, StagingView
from batchman.daemon import jobscript
from batchman.daemon import observe as O
from batchman.daemon.pacing import Pacing
from batchman.daemon.work import IterationReport

from e2e_helpers import make_experiment

ME = "host:1"


class Batch(BatchBase):
    """Says what ``says`` holds for each asked job (running when not named); remembers the asks."""
    name = "fake"

    def __init__(self):
        self.says: dict[str, str] = {}
        self.asked: list[dict] = []

    def query(self, jobs, arrays=None):
        self.asked.append(dict(jobs))
        return {n: JobInfo(n, i or "7", self.says.get(n, RUNNING), exit_code=0 if self.says.get(n) == FINISHED else None)
                for n, i in jobs.items()}

    def submit(self, spec):
        raise AssertionError("no submission here")

    def list_ours(self, prefix):
        return []           # no job under our name pattern beyond the tasks' own

    def cancel(self, ids):
        pass


class Staging:
    def query(self, files):
        return StagingView()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    e = make_experiment(tmp_path, [])
    clock = [1000.0]
    batch = Batch()
    ob = O.Observer(e.params, e.paths, batch, Staging(), Pacing(0.0, 60.0), lambda: clock[0])
    status = e.store.read()
    status.tasks = [Task(run=r, state=S.RUNNING, job_name=f"bm.s.{r}.analysis.1", job_id=str(r), attempt=1)
                    for r in range(1, 6)]
    opened = []
    real = jobscript.read_exit
    monkeypatch.setattr(jobscript, "read_exit", lambda d: opened.append(os.path.basename(d)) or real(d))
    return e, ob, batch, status, clock, opened


def ended(e, name, code=0):
    d = e.paths.attempt_dir(name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "exit"), "w") as f:
        f.write(f"{code}\n")


def look(ob, status, clock, done=(), dt=10.0):
    clock[0] += dt
    return ob.observe(status, ME, False, None, IterationReport(), set(done))


def test_first_round_reads_the_done_ones_and_those_the_batch_system_no_longer_lists(setup):
    """(Until issue 18's oneshot work a first round read every job's markers before asking: one
    open per job, 300,000 at 1,000,000 tasks. A job that ended while still listed, its done
    file lost, is now judged when the listing drops it, as in any later round.)"""
    e, ob, batch, status, clock, opened = setup
    ended(e, "bm.s.1.analysis.1")                    # its done file was lost, still listed
    ended(e, "bm.s.2.analysis.1", 3)                 # its done file was lost, gone from the queue
    ended(e, "bm.s.3.analysis.1")
    batch.says["bm.s.2.analysis.1"] = ABSENT
    obs = look(ob, status, clock, done=["bm.s.3.analysis.1"])
    assert sorted(opened) == ["bm.s.2.analysis.1", "bm.s.3.analysis.1"]
    assert obs.markers["bm.s.2.analysis.1"].exit_code == 3 and obs.markers["bm.s.3.analysis.1"].exit_code == 0
    assert set(batch.asked[-1]) == {f"bm.s.{r}.analysis.1" for r in (1, 2, 4, 5)}
    opened.clear()
    status.tasks[1].state = status.tasks[2].state = S.COMPLETED     # as the daemon records them
    ended(e, "bm.s.4.analysis.1")
    obs = look(ob, status, clock, done=["bm.s.4.analysis.1"])
    assert opened == ["bm.s.4.analysis.1"]           # one open, not one per job
    assert obs.markers["bm.s.4.analysis.1"].exit_code == 0 and set(batch.asked[-1]) == {
        "bm.s.1.analysis.1", "bm.s.5.analysis.1"}
    batch.says["bm.s.1.analysis.1"] = FINISHED       # the listing dropped it at last
    obs = look(ob, status, clock)
    assert obs.markers["bm.s.1.analysis.1"].exit_code == 0


def test_first_round_reads_every_marker_when_the_batch_system_does_not_answer(setup):
    from batchman.backends.base import BackendUnavailable
    e, ob, batch, status, clock, opened = setup
    ended(e, "bm.s.1.analysis.1")                    # its done file was lost
    batch.query = lambda jobs, arrays=None: (_ for _ in ()).throw(BackendUnavailable("squeue: timed out"))
    obs = look(ob, status, clock)
    assert len(opened) == 5 and obs.markers["bm.s.1.analysis.1"].exit_code == 0


def test_first_round_not_due_to_ask_reads_every_marker(setup):
    e, ob, batch, status, clock, opened = setup
    ended(e, "bm.s.1.analysis.1")                    # its done file was lost
    ob.pacing.next_query = clock[0] + 3600.0        # (backing off, as another daemon's last failure says)
    obs = look(ob, status, clock)
    assert len(opened) == 5 and obs.markers["bm.s.1.analysis.1"].exit_code == 0 and batch.asked == []


@pytest.mark.parametrize("says", [FINISHED, ABSENT])
def test_an_end_the_batch_system_reports_without_a_done_file_is_read_after_the_query(setup, says):
    e, ob, batch, status, clock, opened = setup
    look(ob, status, clock)
    opened.clear()
    ended(e, "bm.s.3.analysis.1", 1)
    batch.says["bm.s.3.analysis.1"] = says
    obs = look(ob, status, clock)
    assert opened == ["bm.s.3.analysis.1"]
    assert obs.markers["bm.s.3.analysis.1"].exit_code == 1
    assert "bm.s.3.analysis.1" not in obs.jobs       # judged by its marker, as if not asked


def test_an_end_nobody_reports_is_found_by_the_next_full_scan(setup):
    e, ob, batch, status, clock, opened = setup
    look(ob, status, clock)
    ended(e, "bm.s.4.analysis.1")                    # still listed as running, no done file
    obs = look(ob, status, clock)
    assert "bm.s.4.analysis.1" not in obs.markers
    obs = look(ob, status, clock, dt=O.FULL_SCAN_EVERY)
    assert obs.markers["bm.s.4.analysis.1"].exit_code == 0


def test_jobs_just_submitted_have_their_markers_read_in_every_round(setup):
    e, ob, batch, status, clock, opened = setup
    status.tasks[4].state = S.SUBMITTED
    look(ob, status, clock)
    opened.clear()
    look(ob, status, clock)
    assert opened == ["bm.s.5.analysis.1"]


def test_not_due_to_ask_only_the_done_jobs_are_read_and_nothing_is_asked(setup):
    e, ob, batch, status, clock, opened = setup
    ob.pacing.min_interval = 3600.0
    look(ob, status, clock)
    opened.clear()
    asked = len(batch.asked)
    ended(e, "bm.s.2.analysis.1")
    obs = look(ob, status, clock, done=["bm.s.2.analysis.1"])
    assert opened == ["bm.s.2.analysis.1"] and len(batch.asked) == asked and "bm.s.2.analysis.1" in obs.markers


def test_queued_jobs_stay_asked_and_unread(setup):
    e, ob, batch, status, clock, opened = setup
    look(ob, status, clock)
    opened.clear()
    batch.says = {t.job_name: QUEUED for t in status.tasks}
    look(ob, status, clock)
    assert opened == [] and len(batch.asked[-1]) == 5


def test_counters_of_running_jobs_every_spools_interval_of_ended_jobs_at_once(setup):
    from batchman import report
    e, ob, batch, status, clock, opened = setup
    names = [t.job_name for t in status.tasks]
    for n in names[:2]:
        os.makedirs(e.paths.attempt_dir(n), exist_ok=True)
        report.append(e.paths.spool(n), {"events": 1})
    look(ob, status, clock)
    assert set(ob.read_counters(status)) == set(names[:2])        # the first round: every spool
    for n in names[:2]:
        report.append(e.paths.spool(n), {"events": 2})
    look(ob, status, clock, done=[names[1]])
    assert ob.read_counters(status) == {names[1]: {"events": 2}}   # only the job that ended
    look(ob, status, clock, dt=O.SPOOLS_EVERY)
    assert ob.read_counters(status) == {names[0]: {"events": 2}}   # every spool again (the other unchanged)


def test_many_jobs_the_batch_system_does_not_know_one_listing_finds_those_with_markers(setup, monkeypatch):
    """(Attempt directories wiped with the temp dir, or a benchmark's jobs that never had one:
    290,000 opens at 1,000,000 tasks.) Fewer jobs to look at than a quarter of the listing's
    entries: a look each, as before."""
    e, ob, batch, status, clock, opened = setup
    monkeypatch.setattr(O, "LIST_FROM", 2)
    ended(e, "bm.s.3.analysis.1", 2)
    batch.says = {t.job_name: ABSENT for t in status.tasks}
    obs = look(ob, status, clock)
    assert opened == ["bm.s.3.analysis.1"] and obs.markers["bm.s.3.analysis.1"].exit_code == 2
    looked = []
    real = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: looked.append(p) or real(p, *a, **k))
    ob.read_counters(status)
    assert [os.path.basename(os.path.dirname(p)) for p in looked] == ["bm.s.3.analysis.1"]   # the spools too
    monkeypatch.setattr(os, "stat", real)
    for i in range(30):                              # many other attempt directories
        os.makedirs(e.paths.attempt_dir(f"bm.s.9{i}.analysis.1"))
    opened.clear()
    look(ob, status, clock)
    assert len(opened) == 5



class Counted(list):
    """A list of tasks that counts the passes over it."""
    passes = 0

    def __iter__(self):
        self.passes += 1
        return super().__iter__()


def test_between_full_scans_the_ended_jobs_are_looked_up_not_searched_for(setup):
    """(Issue 18: _finished and read_counters each went over every live task, 430,000 at
    1,000,000 tasks, for the few jobs with news; observe keeps the tasks in the batch system by
    job name.)"""
    from batchman import report
    e, ob, batch, status, clock, opened = setup
    look(ob, status, clock)
    name = status.tasks[2].job_name
    ended(e, name, 1)
    report.append(e.paths.spool(name), {"events": 3, "segments_analysed": 2})
    tasks = Counted(status.tasks)
    clock[0] += 10.0
    obs = ob.observe(status, ME, False, None, IterationReport(), {name}, tasks)
    assert obs.markers[name].exit_code == 1 and obs.analysed == {name: 2}
    obs.analysed.clear()
    passes = tasks.passes
    ob._finished(tasks, obs)
    assert ob.read_counters(status, tasks) == {name: {"events": 3, "segments_analysed": 2}}
    assert obs.analysed == {name: 2} and tasks.passes == passes     # looked up: no pass over the tasks
    other = Counted(status.tasks)            # tasks other than those observed: picked from them
    assert ob.read_counters(status, other) == {} and other.passes == 1


def test_the_jobs_to_read_after_the_answer_are_those_it_does_not_list_as_queued_or_running():
    ask = {"a": "1", "b": "2", "c": "3", "d": "", "e": "5"}
    jobs = {"a": JobInfo("a", "1", RUNNING), "b": JobInfo("b", "2", FINISHED), "c": JobInfo("c", "3", QUEUED),
            "x": JobInfo("x", "9", FINISHED), "e": JobInfo("e", "5", ABSENT)}
    assert O._not_listed(ask, jobs) == ["b", "e", "d"]      # listed otherwise, then not named; not x: not asked
    assert O._not_listed(ask, None) == list(ask)


def test_the_spool_of_a_finished_job_without_an_attempt_directory_is_not_opened(setup, monkeypatch):
    """The attempts were listed this round (many jobs to look at after the answer): a finished
    job whose directory is not there has no spool to read its segments from (10,000 opens an
    iteration at 1,000,000 tasks in the benchmark, all failing)."""
    from batchman import report
    e, ob, batch, status, clock, opened = setup
    monkeypatch.setattr(O, "LIST_FROM", 2)
    look(ob, status, clock)
    batch.says = {t.job_name: FINISHED for t in status.tasks}
    name = status.tasks[1].job_name
    os.makedirs(e.paths.attempt_dir(name))
    report.append(e.paths.spool(name), {"segments_analysed": 3})
    spools = []
    real = report.read
    monkeypatch.setattr(report, "read", lambda p: spools.append(os.path.basename(os.path.dirname(p))) or real(p))
    obs = look(ob, status, clock)
    assert spools == [name] and obs.analysed == {name: 3}


def test_a_first_round_that_listed_the_attempts_looks_up_the_spools_of_the_jobs_with_a_directory(setup, monkeypatch):
    """(oneshot at 1,000,000 tasks: 10,000 jobs with a directory among 430,000 live tasks, each
    looked at by a pass over them all.)"""
    from batchman import report
    e, ob, batch, status, clock, opened = setup
    monkeypatch.setattr(O, "LIST_FROM", 2)
    batch.says = {t.job_name: ABSENT for t in status.tasks}
    name = status.tasks[3].job_name
    ended(e, name, 0)
    report.append(e.paths.spool(name), {"events": 4})
    tasks = Counted(status.tasks)
    clock[0] += 10.0
    ob.observe(status, ME, False, None, IterationReport(), set(), tasks)
    assert ob.dirs == {name}
    passes = tasks.passes
    assert ob.read_counters(status, tasks) == {name: {"events": 4}} and tasks.passes == passes
