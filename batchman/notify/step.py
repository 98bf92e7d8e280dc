"""The daemon's one call per iteration: write the metrics file, decide and queue alerts.

Both are cheap and bounded: evaluating alerts reads nothing but the status already read,
under the alert file's own lock (never the status lock); sending happens in a thread.
Any failure here is reported through ``say`` once per kind and never stops the daemon.
"""

from __future__ import annotations

from typing import Callable

from batchman.store.lock import SideLockBusy
import msgspec

from batchman.core import alerts as AL
from batchman.core import decide as D
from batchman.core.model import Status
from batchman.notify import metrics as M
from batchman.notify.outbox import Outbox, alerts_path


def conditions(params) -> AL.Conditions:
    return AL.Conditions(
        experiment=params.experiment, stall_minutes=params["notify.stall_minutes"],
        failure_rate=params["notify.failure_rate"], failure_min_attempts=params["notify.failure_min_attempts"],
        failure_window=params["notify.failure_window_minutes"] * 60,
        unreachable_minutes=params["notify.unreachable_minutes"], finished=params["notify.finished"],
        exhausted=params["notify.exhausted"], digest_after=params["notify.digest_after"],
        page=params.path("daemon.html_file"))


def outbox_for(params, say: Callable[[str], None] = lambda s: None) -> Outbox:
    return Outbox(alerts_path(params.status_path), params["notify.targets"], params["notify.timeout"],
                  params["notify.retry_minutes"] * 60, log=say)


def evaluate(outbox: Outbox, st: Status, cond: AL.Conditions, retry_left: Callable,
             now: float, ended: list | None = None) -> tuple[list[AL.Message], list[str]]:
    """Decide under the alert file's lock, queue the messages, save; the caller kicks the sender.
    Returns the messages queued and the conditions in force."""
    with outbox.lock:
        af = outbox.load()
        before = msgspec.json.encode(af)
        af.state, msgs = AL.evaluate(af.state, st, cond, now, retry_left, ended)
        outbox.queue(af, msgs, now)
        if msgspec.json.encode(af) != before:
            outbox.save(af)
    return msgs, sorted(af.state.active)


class Outputs:
    """What a daemon tells the world after each iteration (alerts, metrics)."""

    def __init__(self, params, say: Callable[[str], None] = lambda s: None):
        self.params = params
        self.say = say
        self.textfile = params.path("metrics.textfile")
        self.totals = M.Totals()
        self.outbox = outbox_for(params, say) if params["notify.targets"] else None
        self.cond = conditions(params)
        self.policy = D.Policy.from_params(params)
        self.active: list[str] = []
        self._told: set[str] = set()
        self._sig: tuple = ()
        self._memo: dict[tuple, bool] = {}
        self._ended_cache: list = []

    def _problem(self, kind: str, err: Exception) -> None:
        if kind not in self._told:
            self._told.add(kind)
            self.say(f"problem: {kind}: {err} (the daemon goes on; said once)")

    def step(self, engine, st: Status, rep, now: float) -> None:
        ended = self._ended(st) if self.outbox is not None or self.textfile else None
        if self.outbox is not None:
            try:
                _msgs, self.active = evaluate(self.outbox, st, self.cond, self._retry_left, now, ended)
                self.outbox.kick()
                if not rep.work_left:
                    self.close()      # the daemon may stop now: the last messages get a bounded wait
            except (SideLockBusy, OSError) as e:
                self._problem("alerts", e)
        if self.textfile:
            self.totals.add(engine, rep)
            try:
                M.write(self.textfile, M.families(st, self.params.experiment, self.totals, engine, rep, now,
                                                     self.active, ended))
            except OSError as e:
                self._problem(f"metrics.textfile {self.textfile}", e)

    def _retry_left(self, t) -> bool:
        """Will the daemon retry this failed task itself? Asked of the retry policy once per attempt."""
        k = (t.key, t.attempt, t.state, t.auto_restarts)
        v = self._memo.get(k)
        if v is None:
            if len(self._memo) > 200_000:
                self._memo.clear()
            v = self._memo[k] = D.has_work([t], self.policy)
        return v

    def _ended(self, st: Status) -> list:
        """The ended attempts, recomputed only when a task changed state (every change sets
        ``since``) or tasks were added or purged: the heartbeat alone rewrites the file."""
        sig = (len(st.tasks), max((t.since for t in st.tasks), default=0.0))
        if sig != self._sig:
            self._sig, self._ended_cache = sig, AL.ended_attempts(st.tasks)
        return self._ended_cache

    def close(self) -> None:
        """Give the sender a bounded time to deliver (what it cannot stays queued for later).

        Not at exit (atexit): by then Python refuses new threads, which apprise's plugins use."""
        if self.outbox is not None:
            self.outbox.kick()
            self.outbox.wait(self.params["notify.timeout"] * max(1, len(self.outbox.urls)) + 2)
