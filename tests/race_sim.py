"""A seeded simulation of daemons racing, for tests/test_race_random.py (issue 15.6).

What runs is the real code: ``Engine.run_once`` of two daemons, each with its own Store
object on one status file, and the writer's real actions (add, kill, restart, hold,
release, ``recover --force``). What is simulated is around it: the batch system (a
``Cluster`` every daemon shares; its jobs start and end when the seed says, and each
execution appends a line to a ledger file), staging (everything on disk at once), and
which daemon processes are alive (each daemon's id has a pid of its own).

Each daemon runs in a thread of its own, but only one thread runs at a time: a daemon runs
until the next crash point of its iteration (the engine's hooks) or the iteration's end,
and waits there until the seed picks it again, or kills it there (an in-process SIGKILL).
So the order of everything is a function of the seed alone.
"""

from __future__ import annotations

import glob
import os
import random
import shutil
import socket
import threading
import time

from batchman import actions
from batchman.backends.batch import local  # noqa: F401
from batchman.util import procs
from batchman.backends.base import ABSENT, FINISHED, QUEUED, RUNNING, BatchBase, JobInfo, StagingBase, StagingView
from batchman.core import model, states as S
from batchman.core.model import decode
from batchman.daemon import engine as E
from batchman.experiment import store_for

from e2e_helpers import make_experiment


class Crash(BaseException):
    pass


# The simulated daemons' pids that are "alive" (tests patch procs.pid_alive with pid_alive below).
ALIVE: set[int] = set()
_real_pid_alive = procs.pid_alive


def pid_alive(pid: int, needle: str = "") -> bool:
    return pid in ALIVE or _real_pid_alive(pid, needle)


class Cluster(BatchBase):
    """The batch system all daemons share: every submission is a job; jobs run when told."""
    name = "sim"

    def __init__(self, ledger: str, rng: random.Random):
        self.ledger = ledger
        self.rng = rng
        self.jobs: list[dict] = []          # in submission order; the id is the index + 1
        self.log: list[str] = []

    def submit(self, spec) -> str:
        self.log.append(f"submit {spec.name} as {len(self.jobs) + 1}")
        self.jobs.append({"name": spec.name, "id": str(len(self.jobs) + 1), "state": QUEUED,
                          "exit": None, "failure": ""})
        return self.jobs[-1]["id"]

    def _latest(self, name):
        return next((j for j in reversed(self.jobs) if j["name"] == name), None)

    def _info(self, j) -> JobInfo:
        return JobInfo(j["name"], j["id"], j["state"], exit_code=j["exit"], failure=j["failure"])

    def query(self, asked: dict[str, str]) -> dict[str, JobInfo]:
        out = {}
        for name in asked:
            j = self._latest(name)
            out[name] = self._info(j) if j is not None else JobInfo(name, "", ABSENT)
        return out

    def list_ours(self, prefix: str) -> list[JobInfo]:
        return [self._info(j) for j in self.jobs if j["name"].startswith(prefix)]

    def cancel(self, ids: list[str]) -> None:
        for i in ids:
            j = self.jobs[int(i) - 1] if i.isdigit() and 0 < int(i) <= len(self.jobs) else None
            if j is not None and j["state"] != FINISHED:
                j.update(state=FINISHED, exit=143, failure="cancelled")

    def tick(self) -> None:
        """One job moves on: queued -> running (it executes: a ledger line) -> finished."""
        live = [j for j in self.jobs if j["state"] != FINISHED]
        if not live:
            return
        j = self.rng.choice(live)
        self.log.append(f"job {j['id']} {j['name']} {j['state']} -> on")
        if j["state"] == QUEUED:
            j["state"] = RUNNING
            with open(self.ledger, "a", encoding="utf-8") as f:
                f.write(j["name"] + "\n")
        else:
            j.update(state=FINISHED, exit=0)


class Staging(StagingBase):
    """Every file is on disk already."""
    def query(self, files):
        return StagingView(present=set(files))

    def request(self, files):
        pass

    release = cancel = request

    def cache_path(self, f):
        return f


class Daemon(threading.Thread):
    """One daemon process: iterations of a real Engine, paused at every crash point."""

    def __init__(self, sim: "Sim", pid: int):
        super().__init__(daemon=True)
        self.sim = sim
        self.pid = pid
        self.eng = E.Engine(sim.e.params, store_for(sim.e.params), sim.cluster, Staging(), mode="sim")
        self.eng.me = f"{socket.gethostname()}:{pid}"
        self.go, self.back = threading.Semaphore(0), threading.Semaphore(0)
        self.point = "idle"       # where it waits: idle (between iterations) or a crash point
        self.kill = False
        self.dead = False
        self.error: BaseException | None = None
        self.start()

    def run(self):
        self.go.acquire()
        while not self.kill:
            try:
                self.eng.run_once()
            except Crash:
                break
            except BaseException as x:     # noqa: BLE001 -- the simulation reports it with the seed
                self.error = x
                break
            self.point = "idle"
            self.back.release()
            self.go.acquire()
        self.dead = True
        self.back.release()

    def pause(self, point: str) -> None:
        self.point = point
        self.back.release()
        self.go.acquire()
        if self.kill:
            raise Crash

    def step(self) -> None:
        """Run to the next crash point or the end of the iteration."""
        self.go.release()
        self.back.acquire()

    def iterate(self) -> None:
        """Run to the end of the current (or next) iteration."""
        self.step()
        while not self.dead and self.point != "idle":
            self.step()

    def die(self) -> None:
        """SIGKILL: at the crash point where it waits, or between iterations."""
        self.kill = True
        self.go.release()
        self.back.acquire()
        self.sim.alive.discard(self.pid)


def experiment(root: str):
    """One experiment directory for every seed (params are read once: YAML is slow)."""
    e = make_experiment(root, [], segments=1, **{
        "daemon.html_file": "", "batch.min_query_interval": 0.0, "daemon.submit_grace": 3600.0})
    for r in range(1, Sim.RUNS + 4):      # the runs the writer adds have data too
        with open(os.path.join(root, "raw", f"run_{r}.dat.0"), "w") as f:
            f.write("x\n")
    return e


class Sim:
    RUNS = 3

    def __init__(self, e, seed: int):
        """``e``: an experiment from ``experiment(root)``; its state is wiped for this seed."""
        # The last seed's daemons and writer were processes that are gone, and so is what they
        # held in memory: the tasks they changed in place (``model.CHANGED``, one dict for every
        # simulated process here). Left there, seed after seed, every store write walked them
        # all (~7,000 by seed 300): the 300 seeds took 42 s instead of 27.
        model.CHANGED.clear()
        self.seed = seed
        self.rng = random.Random(seed)
        self.root = root = e.root
        self.e = e
        status = e.params.status_path
        for p in glob.glob(status + "*") + glob.glob(os.path.join(root, "ledger")):
            os.unlink(p)
        shutil.rmtree(e.params.path("daemon.temp_dir"), ignore_errors=True)
        actions.add_runs(store_for(e.params), list(range(1, self.RUNS + 1)))
        self.ledger = os.path.join(root, "ledger")
        self.cluster = Cluster(self.ledger, self.rng)

        self.store = store_for(self.e.params)      # the writer's (batchman's CLI)
        self.alive = ALIVE
        ALIVE.clear()
        self.next_pid = 4_000_000 + 1000 * seed
        self.daemons: list[Daemon] = []
        self.requests: list[tuple[str, str, float, str]] = []   # (kind, task key, at, state then)
        self.recovered = False
        self.next_run = self.RUNS + 1
        self.cluster.log = self.log = []

    # ---- actors ----------------------------------------------------------------------
    def start_daemon(self) -> Daemon:
        self.next_pid += 1
        self.alive.add(self.next_pid)
        d = Daemon(self, self.next_pid)
        self.daemons.append(d)
        self.log.append(f"start daemon {d.pid}")
        return d

    def live(self) -> list[Daemon]:
        return [d for d in self.daemons if not d.dead]

    def hook(self, point: str):
        def at(eng):
            me = threading.current_thread()
            if isinstance(me, Daemon) and me.eng is eng:
                me.pause(point)
        return at

    def writer(self) -> None:
        st = self.store.read()
        tasks = st.tasks
        r = self.rng.random()
        if r < 0.2 and self.next_run <= self.RUNS + 3:
            actions.add_runs(self.store, [self.next_run])
            self.log.append(f"add {self.next_run}")
            self.next_run += 1
            return
        if not tasks:
            return
        t = self.rng.choice(tasks)
        if r < 0.45:
            what = "kill" if t.state in S.ACTIVE else "restart"
            if t.request:
                return
            if actions.queue_request(self.store, {t.key}, what, who=f"batchman {what}"):
                self.requests.append((what, t.key, time.time(), t.state))
                self.log.append(f"{what} {t.key} ({t.state})")
        elif r < 0.75:
            held = not t.held
            actions.hold(self.store, {t.key}, held)
            self.log.append(f"{'hold' if held else 'release'} {t.key}")
        elif not self.recovered and r < 0.8:
            self.recover()

    def recover(self) -> None:
        """`batchman recover --force`: refused while a daemon works; so the person stops them first."""
        from batchman.daemon.recover import RecoverRefused, recover
        listed = {d.id for d in self.store.read().daemons}
        if any(d.eng.me in listed for d in self.live()):
            try:
                recover(self.e.params, self.store, self.cluster, force=True)
                raise AssertionError("recover --force went ahead while daemons were running")
            except RecoverRefused:
                pass
        if self.live():
            for d in self.live():
                d.die()
            self.log.append("recover refused: daemons stopped")
        recover(self.e.params, self.store, self.cluster, force=True)
        self.recovered = True
        self.log.append("recover --force")

    def check_file(self) -> None:
        with open(self.e.params.status_path, "rb") as f:
            decode(f.read())            # the file always parses

    # ---- a seed ----------------------------------------------------------------------
    def run(self, steps: int = 60) -> None:
        hooks = {p: self.hook(p) for p in E.CRASH_POINTS}
        for p, fn in hooks.items():
            E.HOOKS.setdefault(p, []).append(fn)
        try:
            self._chaos(steps)
            self._drain()
        finally:
            for p, fn in hooks.items():
                E.HOOKS[p].remove(fn)
            for d in self.live():
                d.die()

    def _chaos(self, steps: int) -> None:
        self.start_daemon()
        for _ in range(steps):
            r = self.rng.random()
            live = self.live()
            if r < 0.55 and live:
                d = self.rng.choice(live)
                d.step()
                self.log.append(f"daemon {d.pid} -> {d.point}")
                self._raise(d)
            elif r < 0.7:
                self.cluster.tick()
            elif r < 0.82:
                self.writer()
            elif r < 0.9 and live:
                d = self.rng.choice(live)
                self.log.append(f"kill daemon {d.pid} at {d.point}")
                d.die()
            elif len(live) < 2:
                self.start_daemon()
            self.check_file()

    def _drain(self) -> None:
        """Nobody dies any more; everything held is released: every run must end."""
        keys = {t.key for t in self.store.read().tasks if t.held}
        if keys:
            actions.hold(self.store, keys, False)
        for d in self.live():
            d.iterate()
            self._raise(d)
        if not self.live():
            self.start_daemon()
        for _ in range(300):
            st = self.store.read()
            if all(t.state in S.TERMINAL and not t.request and t.intent is None for t in st.tasks) \
                    and not [j for j in self.cluster.jobs if j["state"] != FINISHED]:
                return
            for d in self.live():
                d.iterate()
                self._raise(d)
            self.cluster.tick()
            self.check_file()
        raise AssertionError("not every run ended: " + ", ".join(
            f"{t.key} {t.state} request={t.request!r} intent={t.intent}" for t in self.store.read().tasks
            if not (t.state in S.TERMINAL and not t.request and t.intent is None)))

    def _raise(self, d: Daemon) -> None:
        if d.error is not None:
            raise AssertionError(f"daemon {d.pid} failed: {d.error!r}") from d.error

    # ---- what must hold --------------------------------------------------------------
    def check(self) -> None:
        executed: dict[str, int] = {}
        if os.path.exists(self.ledger):
            for line in open(self.ledger, encoding="utf-8"):
                executed[line.strip()] = executed.get(line.strip(), 0) + 1
        twice = {n: c for n, c in executed.items() if c > 1}
        assert not twice, f"attempts executed more than once: {twice}"
        submitted: dict[str, int] = {}
        for j in self.cluster.jobs:
            submitted[j["name"]] = submitted.get(j["name"], 0) + 1
        twice = {n: c for n, c in submitted.items() if c > 1}
        assert not twice, f"attempts submitted more than once: {twice}"
        st = self.store.read()
        idx = st.index()
        for t in st.tasks:
            if t.state == S.COMPLETED:
                assert executed.get(t.job_name) == 1, f"{t.key} completed but its job {t.job_name} never ran"
        hist = self.store.history()
        for what, key, at, before in self.requests:
            later = [h for h in hist if h.get("task") == key and h.get("t", 0) >= at - 0.002]
            if key not in idx:
                continue
            if what == "restart":
                assert any(h.get("to") == S.NEW for h in later), f"restart of {key} (in {before}) lost"
            elif before in (S.NEW, S.UNSTAGED, S.STAGING, S.STAGED) and not any(
                    w == "restart" and k == key and a > at for w, k, a, _ in self.requests):
                # no job could have ended first: the kill must have stopped it (a daemon that
                # decided before the kill came may submit it: then the kill cancels the job)
                assert idx[key].state != S.COMPLETED, \
                    f"kill of {key} (in {before}) lost: {[(h.get('from'), h.get('to'), h.get('why')) for h in later]}"
