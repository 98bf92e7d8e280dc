"""The daemon's steps on their own: the pacing (pure, ``now`` passed in), the one rule for a
live daemon (and the status line that uses it), and how acting reacts to a typed submission
outcome (a timed-out submission is looked up by name, an unreachable controller backs off)."""

import os
import random
import socket

import pytest

from batchman.backends.base import BackendUnavailable, BatchBase, Submitted, Unreachable
from batchman.core import decide as D
from batchman.core.liveness import daemon_alive
from batchman.core.model import Daemon, Status
from batchman.daemon.act import Actor
from batchman.daemon.pacing import Pacing, backoff_delay
from batchman.daemon.work import IterationReport, Work
from batchman.page.render import daemon_line


# ---- pacing -------------------------------------------------------------------------------
@pytest.mark.parametrize("failures, interval, cap, jitter, delay", [
    (1, 1.0, 600.0, 1.0, 5.0),       # base at least 5 s
    (3, 10.0, 600.0, 1.0, 40.0),     # doubles
    (3, 10.0, 600.0, 0.75, 30.0),
    (20, 10.0, 600.0, 1.25, 600.0),  # capped
])
def test_backoff_delay(failures, interval, cap, jitter, delay):
    assert backoff_delay(failures, interval, cap, jitter) == delay


def test_pacing_waits_the_interval_then_backs_off_and_recovers():
    p = Pacing(min_interval=10.0, backoff_cap=600.0, rng=random.Random(1))
    assert p.may_query(0.0) and p.next_try() is None
    p.answered(100.0)
    assert not p.may_query(105.0) and p.may_query(110.0) and not p.backing_off(105.0)
    p.failed(110.0, "down")
    p.failed(111.0, "down")
    assert p.failures == 2 and 111.0 + 15.0 <= p.next_query <= 111.0 + 25.0 and p.backing_off(112.0)
    assert p.next_try() == p.next_query and p.last_error == "down"
    p.answered(200.0)
    assert p.failures == 0 and p.next_try() is None


# ---- when a daemon is alive ---------------------------------------------------------------
def d(host="h1", pid=5, heartbeat=100.0):
    return Daemon(id=f"{host}:{pid}", host=host, pid=pid, started=0.0, heartbeat=heartbeat)


@pytest.mark.parametrize("daemon, here, pid_alive, alive", [
    (d(heartbeat=100.0), "", None, True),
    (d(heartbeat=30.0), "", None, False),                    # stale heartbeat
    (d(heartbeat=40.0), "", None, True),                     # exactly stale_after old: still alive
    (d(host="h1"), "h1", lambda pid: False, False),          # on this host, process gone
    (d(host="h2"), "h1", lambda pid: False, True),           # elsewhere: the heartbeat decides
    (d(host="h1"), "h1", lambda pid: True, True),
])
def test_daemon_alive(daemon, here, pid_alive, alive):
    assert daemon_alive(daemon, 100.0, 60.0, here, pid_alive) is alive


def test_the_status_line_calls_a_killed_local_daemon_stale_at_once():
    """The stricter of the two old rules: a SIGKILLed daemon on this host leaves a fresh
    heartbeat, but its process is gone (the page used to call it healthy until stale_after)."""
    import subprocess
    p = subprocess.Popen(["true"])
    p.wait()
    here = socket.gethostname()
    st = Status(daemons=[d(host=here, pid=p.pid, heartbeat=99.0)])
    line, ok = daemon_line(st, 100.0, 60.0)
    assert not ok and "STALE" in line
    st = Status(daemons=[d(host=here, pid=os.getpid(), heartbeat=99.0)])
    assert daemon_line(st, 100.0, 60.0)[1]


def test_a_stale_daemon_whose_process_lives_is_said_to_be_alive_and_not_writing():
    """A daemon waiting for room on a full disk (daemon/stall.py), or hung, beats no more while
    its process lives: the line says so, the person's clue to read its output."""
    here = socket.gethostname()
    st = Status(daemons=[d(host=here, pid=os.getpid(), heartbeat=0.0)])
    assert daemon_line(st, 100.0, 60.0) == (f"daemon pid {os.getpid()} on {here}, heartbeat 1m40s ago "
                                            f"(STALE; alive, not writing)", False)
    other = Status(daemons=[d(host="elsewhere", pid=os.getpid(), heartbeat=0.0)])   # (no process to look at)
    assert daemon_line(other, 100.0, 60.0)[0].endswith("heartbeat 1m40s ago (STALE)")


# ---- acting on submission outcomes --------------------------------------------------------
class Specs:
    def command_problem(self, job):
        return None

    def spec(self, w):
        return w.job_name


class Batch(BatchBase):
    name = "scripted"

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.asked = []

    def try_submit(self, spec):
        self.asked.append(spec)
        return self.outcomes.pop(0)


def work(n):
    return [Work(f"{i}/a", [D.SUBMIT], i, "a", 1, f"bm.x.{i}.a.1", "", []) for i in range(n)]


@pytest.mark.parametrize("timed_out, backs_off", [(True, False), (False, True)])
def test_an_unreachable_batch_system_stops_the_rounds_submissions(monkeypatch, timed_out, backs_off):
    monkeypatch.setattr("batchman.daemon.act.used_resources", lambda spec: {})
    pacing = Pacing(10.0, 600.0)
    batch = Batch([Submitted("1"), Unreachable("sbatch: no answer", timed_out)])
    from batchman.backends.staging.local import LocalStaging
    res = Actor(batch, LocalStaging("/nonexistent", "/nonexistent"), Specs(), pacing, lambda: 50.0).act(work(4), IterationReport())
    assert batch.asked == ["bm.x.0.a.1", "bm.x.1.a.1"]       # the third and fourth are not tried
    assert res["0/a"][D.SUBMIT] == Submitted("1")
    assert res["3/a"][D.SUBMIT] == Unreachable("not tried: sbatch: no answer", timed_out)
    assert (pacing.failures == 1) is backs_off


def test_a_staging_call_says_how_many_runs_its_files_are_of_not_how_many_tasks():
    """Three files of run 2120 and one of 2121, each its own task (per: segment): the report said
    'stage: 4 file(s) of 4 run(s)'; and a release counted a merge step that has no file of its
    own: 'release: 1 file(s) of 2 run(s)'."""
    ws = [Work(f"{run}.reco.{s}", [D.STAGE], run, "reco", 0, "", "", [f"/mss/run_{run}.dat.{s}"], seg=s)
          for run, s in ((2120, 0), (2120, 1), (2120, 2), (2121, 0))]
    ws.append(Work("2122.reco", [D.RELEASE], 2122, "reco", 1, "", "", ["/mss/run_2122.dat.0"]))
    asked, res, rep = [], {w.key: {} for w in ws}, IterationReport()
    Actor._files(ws, D.STAGE, asked.extend, res, rep)
    assert rep.actions == ["stage: 4 file(s) of 2 run(s)"]
    assert asked == [f for w in ws[:4] for f in w.files] and all(res[w.key][D.STAGE] for w in ws[:4])
    ws.append(Work("2123.merge", [D.RELEASE], 2123, "merge", 1, "", "", []))
    res["2123.merge"] = {}
    Actor._files(ws, D.RELEASE, asked.extend, res, rep)
    assert rep.actions[1:] == ["release: 1 file(s) of 1 run(s)"] and res["2123.merge"][D.RELEASE]
    ws[0].actions.append(D.CANCEL_STAGE)
    Actor._files(ws, D.CANCEL_STAGE, asked.extend, res, rep)
    assert rep.actions[2:] == ["cancel staging: 1 file(s) of 1 run(s)"]      # (not the action's name, cancel_stage)

    def down(files):
        raise BackendUnavailable("jcache: timed out")
    Actor._files(ws, D.CANCEL_STAGE, down, res, rep)
    assert rep.errors == ["cancel staging: jcache: timed out"] and res[ws[0].key][D.CANCEL_STAGE] is False
