"""The alert state file and the messages still to send, and the thread that sends them.

``<status file>.alerts.json`` (written atomically, under its own short lock, never the
status file's) keeps what was already told (``core.alerts.AlertState``) and an outbox: each
message with the targets it has not reached yet. A restarted daemon neither resends what
was told nor forgets what was not delivered; ``batchman watch-daemon`` delivers it too.

Sending happens in one background thread per process, outside every lock; a target that
is down, slow or refuses costs the daemon nothing: the message stays in the outbox and is
tried again after ``notify.retry_minutes`` (for a day at most).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Callable

import msgspec

from batchman.core.alerts import AlertState, Message
from batchman.store.lock import SideLockBusy, side_lock
from batchman.notify import targets as T
from batchman.util.files import atomic_write

KEEP = 86400.0          # an undelivered message is dropped after a day


class Pending(msgspec.Struct, omit_defaults=True):
    id: str
    message: Message
    targets: list[str]            # target ids (hashes) not reached yet
    tries: int = 0
    next_try: float = 0.0
    claimed_until: float = 0.0    # a sender is on it (several daemons may share the file)
    last_error: str = ""


class AlertFile(msgspec.Struct, omit_defaults=True):
    state: AlertState = msgspec.field(default_factory=AlertState)
    outbox: list[Pending] = []
    log: list[str] = []           # the last deliveries and failures, masked, for people


def alerts_path(status_path: str) -> str:
    return status_path + ".alerts.json"


class Outbox:
    def __init__(self, path: str, urls: list[str], timeout: float, retry_after: float,
                 log: Callable[[str], None] = lambda s: None):
        self.path = path
        self.urls = {T.target_id(u): u for u in urls}
        self.timeout = timeout
        self.retry_after = retry_after
        self.log = log
        self.lock = side_lock(path + ".lock", timeout=5)
        self._thread: threading.Thread | None = None

    # ---- the file ----------------------------------------------------------------
    def load(self) -> AlertFile:
        try:
            with open(self.path, "rb") as f:
                return msgspec.json.decode(f.read(), type=AlertFile)
        except FileNotFoundError:
            return AlertFile()
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.log(f"notify: {self.path} is unreadable; starting afresh (conditions in force are told again)")
            return AlertFile()

    def save(self, af: AlertFile) -> None:
        af.log = af.log[-50:]
        atomic_write(self.path, msgspec.json.encode(af))

    def queue(self, af: AlertFile, msgs: list[Message], now: float) -> None:
        for m in msgs:
            af.outbox.append(Pending(id=uuid.uuid4().hex[:12], message=m, targets=list(self.urls), next_try=now))
        af.outbox = [p for p in af.outbox if p.targets and now - p.message.at < KEEP]

    # ---- sending -----------------------------------------------------------------
    def kick(self) -> None:
        """Start the sending thread unless it runs already (returns at once)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self.deliver, name="batchman-notify", daemon=True)
        self._thread.start()

    def wait(self, seconds: float) -> bool:
        """Wait at most ``seconds`` for the sending thread; True if it is done."""
        t = self._thread
        if t is not None:
            t.join(seconds)
        return t is None or not t.is_alive()

    def _claim(self, now: float) -> list[Pending]:
        with self.lock:
            af = self.load()
            due = [p for p in af.outbox if p.next_try <= now and p.claimed_until <= now]
            for p in due:
                p.claimed_until = now + self.timeout * (len(p.targets) + 1) + 30
            if due:
                self.save(af)
        return due

    def deliver(self, clock: Callable[[], float] = time.time) -> int:
        """Send what is due until nothing is (messages queued meanwhile included); return how many went."""
        sent = 0
        while (n := self._deliver_once(clock)) is not None:
            sent += n
        return sent

    def _deliver_once(self, clock: Callable[[], float]) -> int | None:
        try:
            due = self._claim(clock())
        except (SideLockBusy, OSError) as e:
            self.log(f"notify: cannot read {self.path}: {e}; trying again next iteration")
            return None
        if not due:
            return None
        results: dict[str, dict[str, T.Sent]] = {}
        for p in due:
            results[p.id] = {}
            for tid in p.targets:
                url = self.urls.get(tid)
                if url is not None:        # a target removed from batchman.yaml is not sent to any more
                    results[p.id][tid] = T.send(url, p.message.title, p.message.body, self.timeout)
        return self._record(results, clock())

    def _record(self, results: dict[str, dict[str, T.Sent]], now: float) -> int:
        sent = 0
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        with self.lock:
            af = self.load()
            for p in af.outbox:
                res = results.get(p.id)
                if res is None:
                    continue
                p.claimed_until = 0.0
                p.targets = [tid for tid in p.targets if tid in self.urls and not res.get(tid, T.Sent("", False)).ok]
                for r in res.values():
                    line = (f"{stamp} sent {p.message.kind} {p.message.key!r} to {r.target}" if r.ok else
                            f"{stamp} {r.target} did not take {p.message.key!r} ({r.error}); "
                            f"trying again in {self.retry_after / 60:g} min")
                    af.log.append(line)
                    self.log(f"notify: {line}")
                    sent += r.ok
                if p.targets:
                    p.tries += 1
                    p.next_try = now + self.retry_after
                    p.last_error = "; ".join(r.error for r in res.values() if not r.ok)
            af.outbox = [p for p in af.outbox if p.targets]
            self.save(af)
        return sent
