"""`batchman-daemon oneshot` served by the daemon that runs (daemon/asks.py): at 1,000,000 tasks
a oneshot of its own reads every task again (~4 s, ~1.7 GB beside the daemon's 1.8 GB) and waits
on the daemon for the lock; the running daemon does the round in under a second."""

import os
import signal
import threading
import time

import pytest

from batchman.backends.base import FINISHED
from batchman.core import states as S
from batchman.daemon import asks as A
from batchman.daemon.loop import answer_of
from batchman.daemon.work import IterationReport

from e2e_helpers import daemon, daemon_run, env_for, make_experiment, wait_for


def _listener(i, host="h1"):
    return A.Listener(id=f"{host}:{i}", host=host, pid=i)


def test_listening_follows_the_rule_of_heartbeats():
    found = [(_listener(1), 1000.0), (_listener(2), 850.0), (_listener(3, "h2"), 990.0), (_listener(4), 999.0)]
    alive = {1, 3}                               # pids that exist on this host (h1)
    got = A.listening(found, 1000.0, 120.0, "h1", lambda pid: pid in alive)
    # 2: silent for 150 s; 4: on this host, its process is gone; 3: another host, fresh (no pid check)
    assert [ls.id for ls in got] == ["h1:1", "h2:3"]
    assert A.listening(found, 1000.0, 200.0, "h1", lambda pid: True) == [ls for ls, _ in found]


def _desk(tmp_path, i=1):
    d = A.Desk(str(tmp_path / "status.json.asks"), f"h1:{i}")
    d.open()
    return d


def test_an_ask_is_taken_by_one_daemon_and_answered_once(tmp_path):
    d1, d2 = _desk(tmp_path, 1), _desk(tmp_path, 2)
    assert sorted(ls.id for ls, _ in A.listeners(d1.directory)) == ["h1:1", "h1:2"]
    got = []
    alive = lambda: [ls for ls, _ in A.listeners(d1.directory)]      # noqa: E731
    t = threading.Thread(target=lambda: got.append(A.ask(d1.directory, 30, alive, said=got.append)))
    t.start()
    wait_for(lambda: any(n.endswith(".ask") for n in os.listdir(d1.directory)), 10)
    taken1, taken2 = d1.take(), d2.take()
    assert len(taken1) == 1 and taken2 == []
    rep = IterationReport(transitions=["1 analysis: new -> unstaged"], commands=2, seconds_own=0.25)
    from batchman.core.model import UnknownJob
    d1.answer(taken1, answer_of(rep, d1.me, [UnknownJob(name="bm.ab.9.x.1", job_id="77", state="RUNNING", seen=1.0)]))
    t.join(10)
    said, ans = got[0], got[1]
    assert said == "asking the daemons h1:1, h1:2 for a round now"
    assert ans.by == "h1:1" and ans.transitions == rep.transitions and ans.commands == 2
    assert [(u.name, u.job_id, u.state) for u in ans.unknown] == [("bm.ab.9.x.1", "77", "RUNNING")]
    assert sorted(os.listdir(d1.directory)) == ["h1:1.listen", "h1:2.listen"]     # nothing left behind
    d1.close()
    assert [ls.id for ls, _ in A.listeners(d1.directory)] == ["h1:2"]


def test_an_ask_nobody_takes_is_withdrawn_and_no_daemon_does_it_later(tmp_path):
    d = _desk(tmp_path)
    said = []
    t0 = time.monotonic()
    assert A.ask(d.directory, 0.3, lambda: [d.listener], said=said.append) is None
    assert 0.3 <= time.monotonic() - t0 < 5
    assert said[-1] == "no daemon took the round within 0.3 s: this process does it"
    assert d.take() == []


def test_no_listening_daemon_asks_nothing(tmp_path):
    said = []
    assert A.ask(str(tmp_path / "none"), 30, lambda: [], said=said.append) is None
    assert said == [] and not os.path.exists(tmp_path / "none")


def test_a_daemon_gone_after_taking_the_ask_is_not_waited_for(tmp_path):
    d = _desk(tmp_path)
    said, alive = [], [d.listener]
    clock = iter(range(1000)).__next__           # one second a look
    taken = []

    def sleep(_):
        if not taken:
            taken.extend(d.take())
        else:
            alive.clear()                        # the daemon died in the round

    assert A.ask(d.directory, 30, lambda: list(alive), clock=lambda: float(clock()), sleep=sleep,
                 said=said.append) is None
    assert taken and said[-1] == "the daemon ended before it answered: this process does the round"


def test_a_long_wait_says_so(tmp_path):
    d = _desk(tmp_path)
    said, t = [], [0.0]

    def sleep(_):
        t[0] += 4.0
        if t[0] == 8.0:
            taken.extend(d.take())
        if t[0] == 24.0:
            d.answer(taken, A.Answer(by=d.me))
    taken: list = []
    got = A.ask(d.directory, 30, lambda: [d.listener], clock=lambda: t[0], sleep=sleep, said=said.append)
    assert got is not None and got.by == d.me
    assert said == ["asking the daemon h1:1 for a round now", "waiting for the daemon's round (12 s; under way)"]
    said.clear()
    t[0] = 1.0                                   # (never taken: 4 s steps from 1)
    assert A.ask(d.directory, 15, lambda: [d.listener], clock=lambda: t[0], sleep=sleep, said=said.append) is None
    assert said[1:] == ["waiting for the daemon's round (12 s; not taken yet)",
                        "no daemon took the round within 15 s: this process does it"]


def test_what_dead_oneshots_and_daemons_left_goes_after_an_hour(tmp_path):
    d = _desk(tmp_path)
    for name in ("a.answer", "b.ask", "c.taken", "x.answer.1234.tmp", "fresh.answer", "h9:9.listen", "h8:8.listen"):
        (tmp_path / "status.json.asks" / name).write_text("")
    old = time.time() - 3700
    for name in ("a.answer", "b.ask", "c.taken", "x.answer.1234.tmp", "h9:9.listen"):
        os.utime(tmp_path / "status.json.asks" / name, (old, old))
    d.close()
    d.open()
    assert sorted(os.listdir(d.directory)) == ["fresh.answer", "h1:1.listen", "h8:8.listen"]


def test_oneshot_is_served_by_the_running_daemon_and_does_it_itself_without_one(tmp_path):
    """The user's way: `batchman-daemon --forever &` with a long delay, then `batchman-daemon
    oneshot`: the daemon's round (its count of rounds goes up, the oneshot never registers),
    printed by the oneshot; with --daemon-wait 0, or a daemon stopped (SIGSTOP), or none, the
    oneshot's own round."""
    e = make_experiment(tmp_path, [1, 2], **{"daemon.delay": 300.0})
    env = env_for(tmp_path, SLEEP=60)
    _running(tmp_path, e, env)
    d = daemon(tmp_path, "--forever", env=env)
    try:
        wait_for(lambda: e.store.read().daemons, 30, what="the daemon's first round")
        rounds = _quiet(e)                        # asleep for daemon.delay (300 s): only an ask wakes it
        r = daemon_run(tmp_path, "oneshot", env=env, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        me = e.store.read().daemons[0].id
        assert f"asking the daemon {me} for a round now" in r.stdout
        assert "iteration done: 0 change(s)" in r.stdout and f"(the round of the daemon {me};" in r.stdout
        st = e.store.read()
        assert [x.id for x in st.daemons] == [me] and st.daemons[0].iterations == rounds + 1
        assert os.listdir(tmp_path / "status.json.asks") == [f"{me}.listen"]

        r = daemon_run(tmp_path, "quietone", env=env, timeout=60)
        assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr

        r = daemon_run(tmp_path, "oneshot", "--daemon-wait", "0", env=env, timeout=60)
        assert r.returncode == 0 and "asking" not in r.stdout and "iteration done" in r.stdout

        _quiet(e)                                 # (not stopped in the round the last oneshot's write woke)
        d.send_signal(signal.SIGSTOP)             # alive, but not answering
        try:
            r = daemon_run(tmp_path, "oneshot", "--daemon-wait", "1", env=env, timeout=60)
        finally:
            d.send_signal(signal.SIGCONT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "no daemon took the round within 1 s: this process does it" in r.stdout
        assert "iteration done" in r.stdout and "(the round of the daemon" not in r.stdout
    finally:
        d.send_signal(signal.SIGTERM)
        out, _ = d.communicate(timeout=60)
    assert d.returncode == 0, out
    assert not os.path.exists(tmp_path / "status.json.asks" / f"{me}.listen")
    r = daemon_run(tmp_path, "oneshot", env=env, timeout=60)      # the daemon is gone: its own round
    assert r.returncode == 0 and "asking" not in r.stdout and "iteration done" in r.stdout


def _running(tmp_path, e, env) -> None:
    """Every job running (60 s jobs), brought there by a daemon of its own with a short delay,
    then stopped: a daemon asleep for daemon.delay (300 s) does not look at staging that ends
    after its next short look (a slow machine), and the test would wait for it."""
    d = daemon(tmp_path, "--forever", "--delay", "0.2", env=env)
    try:
        wait_for(lambda: {t.state for t in e.store.read().tasks} == {S.RUNNING}, 60, what="jobs running",
                 show=lambda: [(t.key, t.state) for t in e.store.read().tasks])
    finally:
        d.send_signal(signal.SIGTERM)
        d.communicate(timeout=60)


def _quiet(e, still=3.0):
    """The daemon's count of rounds once it stayed the same for ``still`` s (it woke 2 s after
    each round that changed something: daemon.watch_interval)."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < still:
        n = e.store.read().daemons[0].iterations
        if n != last:
            last, since = n, time.monotonic()
        time.sleep(0.2)
    return last


@pytest.mark.parametrize("flag", [["--no-new-starts"], ["--dataset", "x"]])
def test_a_restricted_daemon_does_not_listen(tmp_path, flag):
    """A daemon restricted to some runs would do a restricted round: it takes no ask."""
    e = make_experiment(tmp_path, [1], **{"daemon.delay": 300.0})
    d = daemon(tmp_path, "--forever", *flag, env=env_for(tmp_path, SLEEP=60))
    try:
        wait_for(lambda: e.store.read().daemons and e.store.read().daemons[0].iterations >= 1, 60)
        assert A.listeners(A.directory_of(e.store.path)) == []
    finally:
        d.send_signal(signal.SIGTERM)
        d.communicate(timeout=60)


@pytest.mark.parametrize("why, floor, every, answered, failures, now, want", [
    ("the loop's own delay is not waited for", 0.0, 600.0, 100.0, 0, 130.0, 130.0),
    ("the site's floor is", 60.0, 600.0, 100.0, 0, 130.0, 160.0),
    ("a floor already past: now", 60.0, 600.0, 100.0, 0, 200.0, 200.0),
    ("due anyway: unchanged", 60.0, 600.0, 100.0, 0, 800.0, 700.0),
    ("a back-off stays", 60.0, 600.0, 100.0, 2, 130.0, None),
])
def test_an_asked_round_asks_the_batch_system_as_soon_as_the_site_allows(why, floor, every, answered,
                                                                           failures, now, want):
    from batchman.daemon.pacing import Pacing
    p = Pacing(min_interval=floor, backoff_cap=3600.0, every=every)
    p.answered(answered)
    if failures:
        for _ in range(failures):
            p.failed(answered, "down")
    before = p.next_query
    p.hurry(now)
    assert p.next_query == (before if want is None else want), why
    assert p.may_query(now) == (p.next_query <= now)


def test_the_round_a_oneshot_asked_for_asks_the_batch_system_and_answers_it(tmp_path, monkeypatch):
    """In the daemon's loop (every 600 s) a round that takes an ask asks the batch system, as a
    oneshot of its own would (its first round always asks): a job that ended is in the answer,
    not left for the daemon's next query ten minutes on."""
    from batchman.daemon import loop as L
    from batchman.daemon.engine import Engine
    from test_engine_survey import Staging
    from test_observe_done import Batch
    e = make_experiment(tmp_path, [1, 2])
    with e.store.transaction("test") as st:
        for t in st.tasks:
            t.state, t.attempt, t.job_name, t.job_id = S.RUNNING, 1, f"bm.{st.store_id}.{t.run}.{t.job}.1", str(t.run)
            t.submitted_at = t.since = 1.0
    batch = Batch()
    eng = Engine(e.params, e.store, batch, Staging(), mode="test")
    desk = A.Desk(A.directory_of(e.store.path), eng.me)
    stop: list = []
    rounds: list = []
    run_once = eng.run_once

    def spied_round(*a, **k):
        rep = run_once(*a, **k)
        rounds.append(len(batch.asked))
        if len(rounds) == 2:                      # the round after the first, at once: no query due
            batch.says[st.tasks[0].job_name] = FINISHED
            (tmp_path / "status.json.asks" / "x.ask").write_text("")
        if len(rounds) == 3:
            stop.append("enough")
        return rep
    monkeypatch.setattr(eng, "run_once", spied_round)
    monkeypatch.setattr(L, "_sleep", lambda *a: set())
    L.loop(eng, 600.0, True, False, lambda text: None, stop, desk)
    assert rounds == [1, 1, 2]                    # asked in the first round, and in the asked one
    with open(tmp_path / "status.json.asks" / "x.answer", "rb") as f:
        ans = A._answer.decode(f.read())
    assert ans.by == eng.me and any(line.startswith("1 analysis: running -> ") for line in ans.transitions)
    assert sorted(os.listdir(tmp_path / "status.json.asks")) == ["x.answer"]     # no longer listening


def test_two_oneshots_asking_two_daemons_are_each_answered_once(tmp_path):
    """Several daemons may run on one file (even on several hosts): each ask is taken by one of
    them and answered once; the jobs run once each."""
    import subprocess
    import sys
    e = make_experiment(tmp_path, [1, 2], **{"daemon.delay": 300.0})
    env = env_for(tmp_path, SLEEP=60)
    _running(tmp_path, e, env)
    ds = [daemon(tmp_path, "--forever", env=env) for _ in range(2)]
    try:
        wait_for(lambda: len(A.listeners(A.directory_of(e.store.path))) == 2, 10, what="two listening")
        cmd = [sys.executable, "-m", "batchman.daemon", "-C", str(tmp_path), "oneshot"]
        ps = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(2)]
        outs = [p.communicate(timeout=60)[0] for p in ps]
        ids = {d.id for d in e.store.read().daemons}
        for out in outs:
            assert out.startswith("asking the daemons ") and out.count("iteration done") == 1, out
            by = out.rsplit("(the round of the daemon ", 1)[1].split(";")[0]
            assert by in ids, out
        assert sorted(os.listdir(tmp_path / "status.json.asks")) == sorted(f"{i}.listen" for i in ids)
        from e2e_helpers import job_starts
        assert set(job_starts(tmp_path).values()) == {1}
    finally:
        for d in ds:
            d.send_signal(signal.SIGTERM)
        for d in ds:
            d.communicate(timeout=60)


def test_a_daemon_that_cannot_listen_says_so_and_works_on(tmp_path, monkeypatch):
    """Its asks directory cannot be made (here a file is in its place): the daemon still does its
    rounds (a oneshot then does its own), rather than stop before the first."""
    from batchman.daemon import loop as L
    from batchman.daemon.engine import Engine
    from test_engine_survey import Staging
    from test_observe_done import Batch
    e = make_experiment(tmp_path, [1])
    (tmp_path / "status.json.asks").write_text("not a directory")
    eng = Engine(e.params, e.store, Batch(), Staging(), mode="test")
    said, stop = [], []
    run_once = eng.run_once
    monkeypatch.setattr(eng, "run_once", lambda *a, **k: stop.append(1) or run_once(*a, **k))
    monkeypatch.setattr(L, "_sleep", lambda *a: set())
    desk = A.Desk(A.directory_of(e.store.path), eng.me)
    L.loop(eng, 600.0, True, False, said.append, stop, desk)
    assert eng.iterations == 1 and said[0].startswith("not listening for `batchman-daemon oneshot`")
    assert A.listeners(A.directory_of(e.store.path)) == []
    # the directory can be made later (the file removed, a full disk freed): it listens from the
    # next round on and says so once (before: never again in this daemon's life)
    rounds: list = []

    def counted(*a, **k):
        rounds.append(len(A.listeners(desk.directory)) if os.path.isdir(desk.directory) else 0)
        if len(rounds) == 2:
            (tmp_path / "status.json.asks").unlink()
        if len(rounds) == 4:
            stop.append(1)
        return run_once(*a, **k)
    monkeypatch.setattr(eng, "run_once", counted)
    said.clear()
    stop.clear()
    L.loop(eng, 600.0, True, False, said.append, stop, desk)
    assert rounds == [0, 0, 1, 1]
    assert len(said) == 2 and said[1] == "listening for `batchman-daemon oneshot` now", said
