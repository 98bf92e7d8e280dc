"""Issue 15.1: two live daemons must never submit the same attempt twice.

The exact interleaving of the issue, driven in-process by hooks at the engine's crash
points (no sleeps decide the order):

1. daemon B0 records a submit intent for run 1 and dies;
2. daemon A observes: the job of that name is absent;
3. a new daemon B1 registers, takes over B0's stale intent and submits run 1;
4. A takes the lock before B1 has recorded the submission and re-plans on the new tasks
   with its old observations (B1 is not in its list of live daemons);
5. with B1 alive (it records its submission after A's turn) and with B1 dead (killed
   right after its submission).

Every real job execution appends a line to a ledger (the test analysis script's log):
one attempt, one execution.
"""

import os
import time

import pytest

from batchman.core import states as S

from e2e_helpers import job_starts, make_experiment
from race_helpers import issue_interleaving


@pytest.fixture
def exp(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LOG", str(tmp_path / "jobs.log"))   # the ledger each job appends to
    monkeypatch.setenv("SLEEP", "0.5")
    return make_experiment(tmp_path, [1], segments=1, **{"batch.local_slots": 2, "daemon.html_file": ""})


@pytest.mark.parametrize("b1_alive", [True, False], ids=["B1-alive", "B1-dead"])
def test_two_daemons_never_submit_one_attempt_twice(exp, b1_alive):
    t = issue_interleaving(exp, b1_alive)
    time.sleep(0.8)            # a second job, if any, has logged its start by now
    assert t.state == S.COMPLETED, t.reason
    assert t.attempt == 1
    assert job_starts(exp.root) == {("1.analysis", 1): 1}     # one attempt, one execution


def test_local_submission_of_an_existing_job_starts_nothing_and_keeps_its_files(tmp_path):
    """A second submission of one attempt (its name) answers the job that exists: the first
    job's pid/state/exit files stay, so it stays visible, and it runs once."""
    from batchman.backends.base import FINISHED, JobSpec
    from batchman.backends.batch.local import LocalBatch
    ledger = tmp_path / "ledger"
    script = tmp_path / "job.sh"
    script.write_text(f"echo ran >> {ledger}\nsleep 0.5\n")
    lb = LocalBatch(str(tmp_path / "attempts"), slots=2)
    spec = JobSpec(name="bm.x.1.analysis.1", script=str(script), workdir=str(tmp_path),
                   stdout=str(tmp_path / "o"), stderr=str(tmp_path / "e"), attempt_dir=str(tmp_path / "a"))
    first = lb.submit(spec)
    assert lb.submit(spec) == first                    # starting / queued / running: the same job
    end = time.monotonic() + 30
    while lb.query({spec.name: first})[spec.name].state != FINISHED and time.monotonic() < end:
        time.sleep(0.05)
    info = lb.query({spec.name: first})[spec.name]
    assert info.state == FINISHED and info.exit_code == 0
    assert lb.submit(spec) == first                    # over: still that job, its exit file kept
    time.sleep(0.8)
    assert lb.query({spec.name: first})[spec.name].exit_code == 0
    assert ledger.read_text().splitlines() == ["ran"]


@pytest.mark.parametrize("taken, submits", [(99.0, False), (100.0, False), (101.0, True), (None, True)])
def test_an_intent_newer_than_the_observations_is_left_for_the_next_round(taken, submits):
    """Another daemon's intent recorded at t=100, not in our list of live daemons, and its job
    observed absent: taken over only if we observed after it was recorded."""
    from batchman.core import decide as D
    from batchman.core.model import Intent, Task
    from batchman.core.observed import JobInfo
    t = Task(run=1, state=S.SUBMITTING, attempt=1, job_name="bm.x.1.analysis.1",
             intent=Intent(actions=["submit"], owner="h:2", at=100.0))
    obs = D.Observations(now=105.0, me="h:1", live_daemons=frozenset({"h:1"}), taken=taken,
                         jobs={t.job_name: JobInfo(t.job_name, "", "absent")})
    d = D.decide_task(t, obs, D.Policy(), D.Budget())
    assert (d is not None and D.SUBMIT in d.actions) is submits
    # a request (kill) waits the same way
    t.request = "kill"
    assert (D.decide_request(t, obs, D.Policy()) is None) is not submits


def test_recover_force_waits_for_running_daemons_and_keeps_what_people_asked(tmp_path):
    """Found by the randomized test: `recover --force` under a daemon that had recorded a submit
    intent put the task back as new, attempt 0, and the attempt ran twice; and it dropped a
    queued kill. Now it refuses while a daemon works, and keeps kills, holds and notes."""
    from click.testing import CliRunner
    from batchman import actions
    from batchman.cli.commands import main
    from race_helpers import engine
    e = make_experiment(tmp_path, [1, 2, 3], segments=1, **{"daemon.html_file": ""})
    a = engine(e, os.getpid())                 # a live daemon, registered by its first iteration
    a.run_once()
    assert actions.queue_request(e.store, {"1.analysis"}, "kill") == 1
    assert actions.hold(e.store, {"2.analysis"}) == 1
    before = (tmp_path / "status.json").read_bytes()
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "recover", "--force"])
    assert r.exit_code == 1 and f"daemon {a.me} is working on" in r.output and "Traceback" not in r.output
    assert (tmp_path / "status.json").read_bytes() == before
    a.unregister()                             # the daemon stopped
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "recover", "--force"])
    assert r.exit_code == 0, r.output
    t = {t.run: t for t in e.store.read().tasks}
    assert (t[1].request, t[2].held, t[3].request, t[3].held) == ("kill", True, "", False)


def test_a_kill_queued_while_the_daemon_observes_is_obeyed_before_submitting(exp):
    """Found by the randomized test: a kill queued between a daemon's observation and its write
    was merged into the tasks it had planned on, so the plan (submit) went ahead and the job ran."""
    from batchman import actions
    from race_helpers import engine, hooks, task
    a = engine(exp, os.getpid())
    queued = []
    armed = []

    def ready_to_submit(eng) -> bool:
        """Its data is on disk: the daemon's next plan submits it (issue 14 carries a task from
        staging to submitting in one iteration, so "staged" is never seen between two)."""
        t = task(eng)
        if t.state not in (S.STAGING, S.STAGED) or not t.segments:
            return False
        return eng.staging.query([s.path for s in t.segments]).present >= {s.path for s in t.segments}

    def kill_when_ready(eng):
        if armed and not queued:
            queued.append(actions.queue_request(exp.store, {"1.analysis"}, "kill"))
    with hooks() as at:
        at("after-observe", kill_when_ready)
        end = time.monotonic() + 60          # the local copy takes its time: iterations, not a count
        while time.monotonic() < end:
            if not armed and ready_to_submit(a):
                armed.append(1)              # the data was on disk before the next observation
            a.run_once()
            if task(a).state in S.TERMINAL:
                break
            time.sleep(0.05)
    assert queued == [1]
    t = task(a)
    assert (t.state, t.attempt) == (S.ABORTED, 0), t.reason
    assert job_starts(exp.root) == {}
