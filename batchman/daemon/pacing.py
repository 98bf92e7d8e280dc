"""How often the batch system is asked: at most every ``batch.min_query_interval`` s (and, in
the daemon's loop, which wakes more often than it asks, every ``every`` s: the site's floor or
``daemon.delay``, core/pacing.query_interval), and
after a failure the next query waits twice as long each time (with jitter, up to
``batch.backoff_cap``). Pure: every method is handed ``now``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def backoff_delay(failures: int, min_interval: float, cap: float, jitter: float) -> float:
    """base x 2^(failures-1) x jitter (0.75-1.25), at most ``cap``; base is min_interval, at least 5 s."""
    base = max(min_interval, 5.0)
    return min(base * 2 ** min(failures - 1, 30) * jitter, cap)


@dataclass
class Pacing:
    min_interval: float
    backoff_cap: float
    rng: random.Random = field(default_factory=random.Random)
    every: float = 0.0           # seconds between two regular queries, set by the loop (0: each iteration)
    next_query: float = 0.0      # not before this
    failures: int = 0            # queries failed in a row
    last_error: str = ""

    @classmethod
    def from_params(cls, p) -> "Pacing":
        return cls(p["batch.min_query_interval"], p["batch.backoff_cap"])

    def may_query(self, now: float) -> bool:
        return now >= self.next_query

    def answered(self, now: float) -> None:
        self.failures = 0
        self.next_query = now + max(self.min_interval, self.every)

    def hurry(self, now: float) -> None:
        """A person asked for a round now (a oneshot's ask, daemon/asks.py): the batch system is
        asked as soon as the site's floor (``min_interval``) allows after the last answer, not
        after the loop's own ``every``; a back-off after a failure stays as it is."""
        if self.failures == 0 and self.next_query > now:
            self.next_query = max(now, self.next_query - max(self.min_interval, self.every) + self.min_interval)

    def failed(self, now: float, error: str) -> None:
        """The batch system could not be asked: back off before the next query."""
        self.failures += 1
        self.next_query = now + backoff_delay(self.failures, self.min_interval, self.backoff_cap,
                                              self.rng.uniform(0.75, 1.25))
        self.last_error = error

    def backing_off(self, now: float) -> bool:
        """After a failure and before the next try: no submissions either."""
        return self.failures > 0 and now < self.next_query

    def next_try(self) -> float | None:
        return self.next_query if self.failures else None
