"""Pacing: how fast the daemon acts, and how long it may sleep (pure; ``now`` is passed in).

Submissions, kills and staging requests are each drawn from a token bucket: ``burst`` tokens
at most, refilled at ``rate`` per second. A big production therefore starts at once (one
burst) and then flows at the rate, whatever ``daemon.delay`` is; the per-iteration caps
(``batch.max_submit_per_iteration`` ...) stay as upper bounds on top. The defaults are those
of SLURM's own per-user RPC rate limiter (burst 30, 2 per second), which a site admin accepts.

:func:`next_wakeup` says when the daemon should wake next: the earliest of a bucket refill
that unblocks waiting work, the next allowed batch query (``batch.min_query_interval``, or
``daemon.delay`` when the site sets no floor), any other deadline the caller knows (a retry's
back-off, a grace period), and ``daemon.delay``, the longest sleep. Finished jobs wake the
daemon earlier through their exit markers (``batchman.daemon.watch``), not through this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

KINDS = ("submit", "kill", "stage")
# kind -> (burst key, rate key, per-iteration cap key)
KEYS = {
    "submit": ("batch.submit_burst", "batch.submit_rate", "batch.max_submit_per_iteration"),
    "kill": ("batch.kill_burst", "batch.kill_rate", "batch.max_kill_per_iteration"),
    "stage": ("staging.request_burst", "staging.request_rate", "staging.max_requests_per_iteration"),
}


@dataclass
class Bucket:
    """A token bucket: at most ``burst`` tokens, ``rate`` more per second. ``rate`` 0: no limit."""
    burst: int
    rate: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, burst: int, rate: float, now: float) -> "Bucket":
        return cls(burst=max(1, int(burst)), rate=max(0.0, float(rate)), tokens=float(max(1, int(burst))), stamp=now)

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def refill(self, now: float) -> None:
        """Add what the time since the last refill earned, up to ``burst``. A clock that went
        backwards earns nothing (and does not take tokens away)."""
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)

    def available(self, now: float) -> int:
        """Whole tokens that may be spent now (a very large number when unlimited)."""
        if self.unlimited:
            return 2 ** 31
        self.refill(now)
        return int(math.floor(self.tokens + 1e-9))

    def take(self, wanted: int, now: float, cap: int = 0) -> int:
        """Spend up to ``wanted`` tokens (and at most ``cap`` when cap > 0); return how many."""
        n = max(0, min(wanted, self.available(now)))
        if cap > 0:
            n = min(n, cap)
        if not self.unlimited:
            self.tokens -= n
        return n

    def ready_at(self, now: float, n: int = 1) -> float:
        """The time at which ``n`` tokens (at most ``burst``) will be there; ``now`` if already."""
        if self.unlimited:
            return now
        self.refill(now)
        need = min(n, self.burst) - self.tokens
        return now if need <= 1e-9 else now + need / self.rate


@dataclass
class Pacer:
    """The three buckets of one daemon, with the per-iteration caps (0: no cap)."""
    buckets: dict[str, Bucket]
    caps: dict[str, int]

    @classmethod
    def from_values(cls, values: Mapping[str, object], now: float) -> "Pacer":
        """From validated parameters (``Params.values`` or ``params.defaults()``)."""
        buckets, caps = {}, {}
        for kind, (kb, kr, kc) in KEYS.items():
            buckets[kind] = Bucket.full(int(values[kb]), float(values[kr]), now)
            caps[kind] = int(values[kc])
        return cls(buckets, caps)

    def grant(self, kind: str, wanted: int, now: float) -> int:
        """How many of ``wanted`` ready actions of ``kind`` may go now (tokens spent)."""
        return self.buckets[kind].take(wanted, now, self.caps[kind])


@dataclass(frozen=True)
class Wakeup:
    at: float
    reason: str       # "delay", "query", "submit", "kill", "stage" or the caller's label


def query_interval(min_query_interval: float, delay: float) -> float:
    """Seconds between two queries of the batch system: the site's floor, or ``daemon.delay``
    when the site sets none (0)."""
    return min_query_interval if min_query_interval > 0 else delay


def query_due(now: float, last_query: float | None, min_query_interval: float, delay: float) -> bool:
    """May the daemon ask the batch system now? (Never asked yet: yes.)"""
    return last_query is None or now - last_query >= query_interval(min_query_interval, delay) - 1e-9


def next_wakeup(now: float, *, delay: float, pacer: Pacer | None = None,
                waiting: Mapping[str, int] | None = None, jobs_in_batch: bool = False,
                last_query: float | None = None, min_query_interval: float = 0.0,
                deadlines: Iterable[tuple[float, str]] = (), gather: float = 0.0) -> Wakeup:
    """When to wake next.

    ``waiting``: per kind, how many actions are ready and held back ONLY by their bucket or
    the per-iteration cap (not by ``max_jobs``, the cache limit or an outage). Work held by a
    cap with tokens left wakes at once; work held by an empty bucket wakes when one token is
    back. ``jobs_in_batch``: some job has no exit marker yet, so the batch system must be
    asked at the next allowed query time. ``deadlines``: (time, label) of anything else the
    caller waits for. ``gather``: work held by an empty bucket waits for the tokens earned in
    that many seconds (at most what waits, at most the burst) rather than for each single
    token, so a big production paced at 2 per second wakes the daemon every ``gather`` seconds,
    not twice a second, at the same rate. Nothing is earlier than ``now``; nothing is later than
    ``now + delay``.
    """
    best = Wakeup(now + delay, "delay")

    def consider(at: float, why: str) -> None:
        nonlocal best
        at = max(now, at)
        if at < best.at:
            best = Wakeup(at, why)

    if pacer is not None:
        for kind, n in (waiting or {}).items():
            if n > 0:
                b = pacer.buckets[kind]
                want = 1 if b.unlimited else max(1, min(n, b.burst, math.ceil(b.rate * gather - 1e-9)))
                consider(b.ready_at(now, want), kind)
    if jobs_in_batch:
        consider(now if last_query is None else last_query + query_interval(min_query_interval, delay), "query")
    for at, why in deadlines:
        consider(at, why)
    return best
