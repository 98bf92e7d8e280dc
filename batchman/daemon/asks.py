"""A oneshot that the running daemon serves.

`batchman-daemon oneshot` while a daemon loops on the same status file asks that daemon for a
round now and prints the round's report, instead of doing the round itself: a process of its
own reads every task again (at 1,000,000 tasks ~1.9 GB beside the daemon's own ~1.8 GB on the
same login node) and competes with the daemon for the machine and the lock (~8 s); the daemon,
whose tasks are in memory, answers in ~2 s (benchmarks/bench_oneshot_served.py). With no such daemon (a oneshot from
cron, a daemon restricted to some runs, one that does not answer), the oneshot does the round
itself, as the 2002 tool's did.

On NFS, the client's attribute cache (``acdirmin``) can delay what each side sees of the
other's files, as for the done directory (daemon/watch.py): an ask or an answer may take that
long to be seen.

The files, in ``<status file>.asks/`` (beside the status file: a daemon of another experiment
sharing ``daemon.temp_dir`` never sees them):

    <daemon id>.listen   a daemon that takes asks: looping, and not restricted (no --dataset,
                         --where, --no-new-starts); JSON {id, host, pid}; its time is touched at
                         every round and the file removed when the loop ends
    <ask>.ask            a oneshot's ask (empty), made with O_EXCL
    <ask>.taken          the ask renamed by the daemon that takes it: a rename, so one daemon
                         takes it, and a oneshot that gives up unlinks <ask>.ask, so either the
                         daemon or the oneshot has it, never both
    <ask>.answer         the round's report (``Answer``, JSON), put in place whole (temp and
                         rename); the oneshot reads it and removes it

Which daemons count as listening (``listening``) is pure: the time, the host and the process
check come in. The rest touches files and says nothing to people (main.py does).
"""

from __future__ import annotations

import os
import time
from typing import Callable

import msgspec

from batchman.core.liveness import daemon_alive
from batchman.core.model import Daemon, UnknownJob
from batchman.util.files import atomic_write

FORGET_AFTER = 3600.0     # an answer nobody read, an ask or a taken ask this old: removed
BEAT = 30.0               # a sleeping daemon touches its listening file this often
POLL = 0.02               # seconds between two looks of a waiting oneshot
NOTE_EVERY = 10.0         # a oneshot waiting this long says so (and again after as long)


class Listener(msgspec.Struct):
    """What a listening daemon's file says of it."""
    id: str
    host: str
    pid: int


class Answer(msgspec.Struct, omit_defaults=True):
    """A round's report (an IterationReport's fields that a oneshot prints), as the daemon that did
    it writes it for the oneshot that asked."""
    by: str                                  # the daemon's id (host:pid)
    transitions: list[str] = []
    actions: list[str] = []
    errors: list[str] = []
    commands: int = 0
    seconds_own: float = 0.0
    lock_max: float = 0.0
    unknown: list[UnknownJob] = []           # the jobs of ours no task accounts for (as a oneshot lists)


def directory_of(status_path: str) -> str:
    return status_path + ".asks"


def listening(found: list[tuple[Listener, float]], now: float, stale_after: float, here: str,
              pid_alive: Callable[[int], bool]) -> list[Listener]:
    """The daemons of ``found`` (each with its file's time: touched at every round) that count
    as alive by the rule of heartbeats (core/liveness.py): touched at most ``stale_after`` s ago
    and, on this host, a process that exists."""
    return [ls for ls, touched in found
            if daemon_alive(Daemon(id=ls.id, host=ls.host, pid=ls.pid, started=0.0, heartbeat=touched),
                            now, stale_after, here, pid_alive)]


_listener = msgspec.json.Decoder(Listener)
_answer = msgspec.json.Decoder(Answer)


def listeners(directory: str) -> list[tuple[Listener, float]]:
    """Every listening daemon's file in ``directory``, with its time (unreadable ones left out)."""
    try:
        names = [n for n in os.listdir(directory) if n.endswith(".listen")]
    except OSError:
        return []
    found = []
    for n in names:
        path = os.path.join(directory, n)
        try:
            with open(path, "rb") as f:
                found.append((_listener.decode(f.read()), os.fstat(f.fileno()).st_mtime))
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            continue
    return found


class Desk:
    """The daemon's side: says it listens, takes the asks before a round, answers after it."""

    def __init__(self, directory: str, me: str, clock: Callable[[], float] = time.time):
        self.directory, self.me, self.clock = directory, me, clock
        host, _, pid = me.rpartition(":")
        self.listen_path = os.path.join(directory, f"{me}.listen")
        self.listener = Listener(id=me, host=host, pid=int(pid))
        self.touched = 0.0

    def open(self) -> None:
        """Listen: the directory made, this daemon's file in it, what old asks left removed."""
        os.makedirs(self.directory, exist_ok=True)
        atomic_write(self.listen_path, msgspec.json.encode(self.listener))
        self.touched = self.clock()
        self._forget_old(self.touched)

    def close(self) -> None:
        """No longer listening (a oneshot asking after this does its own round)."""
        try:
            os.unlink(self.listen_path)
        except FileNotFoundError:
            pass

    def beat(self, every: float = BEAT) -> None:
        """Touch the listening file (this daemon is alive) if not done for ``every`` s: at each
        round, and while it sleeps (a sleep may be longer than daemon.stale_after: --delay)."""
        now = self.clock()
        if now - self.touched < every:
            return
        self.touched = now
        try:
            os.utime(self.listen_path)
        except FileNotFoundError:
            atomic_write(self.listen_path, msgspec.json.encode(self.listener))   # removed by hand
        except OSError:
            pass

    def take(self) -> list[str]:
        """The asks waiting now, taken (renamed) by this daemon for the round about to start;
        the listening file's time is touched (this daemon is alive)."""
        self.beat(0.0)
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        taken = []
        for n in names:
            if n.endswith(".ask"):
                ask = n[:-len(".ask")]
                try:
                    os.rename(self._path(ask, "ask"), self._path(ask, "taken"))
                except OSError:
                    continue            # another daemon took it, or its oneshot gave up
                taken.append(ask)
        return taken

    def answer(self, taken: list[str], answer: Answer) -> None:
        """Give each ask taken for this round its report."""
        data = msgspec.json.encode(answer)
        for ask in taken:
            atomic_write(self._path(ask, "answer"), data)
            try:
                os.unlink(self._path(ask, "taken"))
            except FileNotFoundError:
                pass

    def _path(self, ask: str, kind: str) -> str:
        return os.path.join(self.directory, f"{ask}.{kind}")

    def _forget_old(self, now: float) -> None:
        """Remove what a oneshot that died left (its answer, its ask) and what a daemon that
        died left (an ask it took, its listening file, which a living daemon touches every
        ``BEAT`` s), once an hour old."""
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for d in entries:
            if d.name.endswith((".answer", ".ask", ".taken", ".listen", ".tmp")):
                try:
                    if now - d.stat().st_mtime > FORGET_AFTER:
                        os.unlink(d.path)
                except OSError:
                    pass


def ask(directory: str, wait: float, alive: Callable[[], list[Listener]],
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        said: Callable[[str], None] = lambda s: None) -> Answer | None:
    """Ask a listening daemon for a round and wait for its answer; None when no daemon listens,
    none took the ask within ``wait`` s (the ask is then withdrawn: no daemon will do it), or the
    daemons ended before answering. ``alive()``: the listening daemons now (``listening`` over
    ``listeners``); ``said``: what to tell the person (who was asked, why it did not work)."""
    first = alive()
    if not first:
        return None
    name = f"{os.uname().nodename}-{os.getpid()}-{time.time_ns()}"
    path = os.path.join(directory, name)
    try:
        os.close(os.open(path + ".ask", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except OSError as err:
        said(f"could not ask the daemon ({err.strerror}: {directory}): this process does the round")
        return None
    said(f"asking the daemon{'s' if len(first) > 1 else ''} {', '.join(ls.id for ls in first)} for a round now")
    try:
        return _wait(path, wait, alive, clock, sleep, said)
    except BaseException:
        _remove(path + ".ask")          # (Ctrl-C: no daemon does a round nobody waits for)
        raise


def _wait(path: str, wait: float, alive: Callable[[], list[Listener]], clock: Callable[[], float],
          sleep: Callable[[float], None], said: Callable[[str], None]) -> Answer | None:
    start = clock()
    deadline, taken, look, note = start + wait, False, start + 1.0, start + NOTE_EVERY
    while True:
        try:
            with open(path + ".answer", "rb") as f:
                data = f.read()
        except FileNotFoundError:
            pass
        else:
            _remove(path + ".answer")
            try:
                return _answer.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                said("the daemon's answer could not be read: this process does the round")
                return None
        now = clock()
        if not taken and not os.path.exists(path + ".ask"):
            taken = True
        if not taken and now >= deadline:
            try:
                os.unlink(path + ".ask")
            except FileNotFoundError:
                taken = True            # taken at this moment: wait for the answer
            else:
                said(f"no daemon took the round within {wait:g} s: this process does it")
                return None
        if now >= note:
            note = now + NOTE_EVERY
            said(f"waiting for the daemon's round ({now - start:.0f} s; "
                 f"{'under way' if taken else 'not taken yet'})")
        if now >= look:
            look = now + 1.0
            if not alive():
                _remove(path + ".ask")
                said("the daemon ended before it answered: this process does the round")
                return None
        sleep(POLL)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
