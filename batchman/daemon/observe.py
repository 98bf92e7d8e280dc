"""Step 1 of an iteration, outside the lock: what the file system, the staging system and
the batch system say (each asked at most once), as :class:`batchman.core.decide.Observations`."""

from __future__ import annotations

import os
import socket
from itertools import filterfalse
from operator import attrgetter
from typing import Callable

from batchman import report
from batchman.backends.base import BackendUnavailable, StagingView
from batchman.core import decide as D
from batchman.core import jobs as J
from batchman.core import states as S
from batchman.core.liveness import daemon_alive
from batchman.core.model import Status, Task, task_key
from batchman.daemon import jobscript
from batchman.daemon.answer import about as _about, not_listed as _not_listed, not_listed_in as _not_listed_in
from batchman.daemon.answer import said as _said, unlisted as _unlisted
from batchman.daemon.inbatch import InBatch
from batchman.daemon.pacing import Pacing
from batchman.daemon.late import Late
from batchman.daemon.segments import file_sizes, file_stats, find_segments, index_segments, numbered, own_segment
from batchman.daemon.work import IterationReport
from batchman.params import Params
from batchman.paths import Paths

FULL_SCAN_EVERY = 600.0     # s between two full scans of the marker files (the done files' safety net)
SPOOLS_EVERY = 300.0        # s between two looks at every running job's counters spool (one stat each)
_name = attrgetter("job_name")
LIST_FROM = 1000            # jobs whose markers to read after a query from which the attempts may be listed


def live_daemons(status: Status, me: str, now: float, stale_after: float) -> frozenset[str]:
    """Ids of the daemons whose intents are still being carried out (this one included)."""
    from batchman.util import procs
    here = socket.gethostname()
    return frozenset({me} | {d.id for d in status.daemons
                             if d.id != me and daemon_alive(d, now, stale_after, here, procs.pid_alive)})


class Observer:
    """Observes for one daemon; remembers what must persist between rounds (settling data,
    spool signatures)."""

    def __init__(self, params: Params, paths: Paths, batch, staging, pacing: Pacing, clock: Callable[[], float]):
        self.use(params, paths)
        self.batch = batch
        self.staging = staging
        self.pacing = pacing
        self.clock = clock
        self.settle: dict[str, dict] = {}                  # watching job -> run -> (files' signature, since)
        self.spool_sigs: dict[str, tuple] = {}
        self.ready: list[tuple[int, str, str]] = []        # (run, job, why) triggers seen by the last observe
        self.only: set[str] | None = None                  # job names whose files the last observe read (None: all)
        self.scanned_at: float | None = None               # the last full scan (_full_scan)
        self.spools_at = float("-inf")                     # the last look at every job's spool
        self.all_spools = True                             # ... and whether this round is one
        self.dirs: set[str] | frozenset | None = None      # the attempt directories, if this round listed them
        self.split_found: dict[str, list[tuple[int, str]]] = {}   # per: segment run task key -> (segment, path)
        self.late = Late()                                 # files of split runs found after the split
        self.seen: list[Task] | None = None                # the tasks the last observe looked at ...
        self.named: dict[str, Task] = {}                   # ... and those in the batch system, by job name
        self.waiting = self.census = None   # StagingFiles, Census of the tasks to look at, if the daemon keeps them
        self.scan = J.Scan()                # what the trigger passes find over every task, kept (core/triggers.py)

    def use(self, params: Params, paths: Paths) -> None:
        """Observe with these parameters from now on (batchman.yaml reloaded: daemon/reload.py)."""
        self.params = params
        self.jobs = params.jobs
        self.paths = paths

    def observe(self, status: Status, me: str, paused: bool, only: Callable[[Task], bool] | None,
                rep: IterationReport, ended: set[str] | None = None,
                tasks: list[Task] | None = None, kept: InBatch | None = None) -> D.Observations:
        """``ended``: names of the jobs whose done files are there (daemon/watch.py; None: not
        listed). Only their markers are read, and those of the jobs the batch system does not
        say are queued or running, but in a full scan (see :meth:`_full_scan`): one open per
        job whose end is news, not one per job. ``tasks``: the tasks to look at (plan.live of the
        status's; default all); ``kept``: those in the batch system, kept (daemon/inbatch.py)."""
        tasks = status.tasks if tasks is None else tasks
        now, self.dirs = self.clock(), None
        obs = D.Observations(now=now, me=me, live_daemons=live_daemons(status, me, now, self.params.stale_after),
                             paused=paused or status.paused)
        obs.gates = J.gates(status.tasks, self.jobs, among=tasks, scan=self.scan)   # (the NEW ones are live)
        self.late.look(status, obs.gates, self.jobs, self.params, only)
        self.ready = self.watch(status, now, rep)
        self._segments(tasks, obs, only)
        self._staging(tasks, obs, rep)
        self._cache_space(tasks, obs, rep)
        due, first = self.pacing.may_query(now), self.scanned_at is None
        self.only = None if self._full_scan(now, ended, due) else set(ended or ())   # whose files to read
        self.all_spools = self.only is None or (due and now >= self.spools_at + SPOOLS_EVERY)
        if self.all_spools:
            self.spools_at = now
        self.seen = tasks
        jobs = InBatch(tasks) if kept is None else kept
        try:
            ask = self._markers(jobs, obs, self.only, due)
            arrays = {n: (t.array_name, t.array_index) for n, t in jobs.arrays.items() if n in ask}
            self._query_batch(ask, obs, now, rep, arrays)
            unlisted, done = _said(obs.jobs)      # (one look at each job's state for the two steps)
            if self.only is not None:
                self._markers_after(obs, ask, unanswered=first, unlisted=unlisted)
                self.only |= set(obs.markers)      # news of these jobs: their counters are read too
        finally:
            jobs.put_back()                 # (``ask``: the kept jobs' ids, lent)
        obs.no_submit = self.pacing.backing_off(now)
        self._finished(tasks, obs, done)
        return obs

    def _full_scan(self, now: float, ended: set[str] | None, due: bool) -> bool:
        """Read every job's marker files this round, before asking the batch system? When the
        done directory was not listed (``ended`` None), in a daemon's first round if the batch
        system is not to be asked (``due``), and every FULL_SCAN_EVERY s: a job whose done file
        was lost (killed between its exit marker and its done file) and that the batch system
        still lists is found at the latest then.

        A first round that asks reads the done jobs' markers and, after the answer, those of
        every job the batch system does not list as queued or running (what ended while no
        daemon ran, a lost or recovered job), or of every asked job if it does not answer:
        what a full scan would find but a job that ended while still listed (judged when the
        listing drops it), without one open per job (300,000 on a shared filesystem at
        1,000,000 tasks, for `batchman-daemon oneshot`)."""
        first = self.scanned_at is None
        if first:
            self.scanned_at = now
        if ended is None or (first and not due) or now >= self.scanned_at + FULL_SCAN_EVERY:
            self.scanned_at = now
            return True
        return False

    def _segments(self, tasks: list[Task], obs: D.Observations, only) -> None:
        """Where the raw data segments of new tasks are."""
        new = [] if self.census is not None and not self.census.new else [
            t for t in tasks if t.state == S.NEW and not t.request and not t.held and (only is None or only(t))]
        if obs.gates:
            # after: / needs_staging: false tasks look for no segments (or not yet)
            new = [t for t in new if (g := obs.gates.get(t.key)) is None or (not g.wait and g.staging)]
        self.split_found = {}
        if not new or obs.paused:
            return
        p = self.params
        stub = p.path("staging.stub_dir")
        pat, pre, suf = p["staging.pattern"], p["staging.prefix"], p["staging.suffix"]
        # a segment task knows its own file: no listing (unless it lost it: recovered, say)
        known = [t for t in new if t.seg is not None and t.segments]
        for t in known:
            obs.segments[t.key] = ([s.path for s in t.segments], t.segments[0].path)
        new = [t for t in new if t.seg is None or not t.segments]
        if len(new) > 8 and "/" not in pat:
            idx = index_segments(stub, pat, pre, suf)
            where = os.path.join(stub, pat.replace("{prefix}", pre).replace("{suffix}", suf))
            for t in new:
                obs.segments[t.key] = (idx.get(t.run, []), where.replace("{run}", str(t.run)))
        else:
            for t in new:
                obs.segments[t.key] = find_segments(stub, pat, t.run, pre, suf)
        self._numbered(new, obs, stub, pat, pre, suf)

    def _numbered(self, new: list[Task], obs: D.Observations, stub: str, pat: str, pre: str, suf: str) -> None:
        """Segment numbers of the files found: a segment task keeps its own file, a per: segment
        job's run task is split into one task per file (under the lock, Engine._create)."""
        for t in new:
            paths, searched = obs.segments[t.key]
            if t.seg is not None:
                obs.segments[t.key] = (own_segment(paths, stub, t.seg, pat, pre, suf, t.run), searched)
            elif paths and (g := obs.gates.get(t.key)) is not None and g.split:
                self.split_found[t.key] = numbered(paths, stub, pat, t.run, pre, suf)

    def _staging(self, tasks: list[Task], obs: D.Observations, rep: IterationReport) -> None:
        """One query for the files of every task that waits for or holds them, and of the
        segments just found for new tasks (which may go on to be staged and submitted in this
        same iteration)."""
        if self.waiting is not None:        # (the daemon's, kept from the changes: daemon/stagefiles.py)
            files = self.waiting.files()
        else:
            files = [s.path for t in tasks if t.state in (S.UNSTAGED, S.STAGING, S.STAGED) for s in t.segments]
        files += [path for paths, _ in obs.segments.values() for path in paths]
        if not files:
            obs.staging = StagingView()
            return
        try:
            obs.staging = self.staging.query(files)
        except BackendUnavailable as e:
            rep.errors.append(f"staging system: {e}")
            obs.staging = None

    def _cache_space(self, tasks: list[Task], obs: D.Observations, rep: IterationReport) -> None:
        p = self.params
        if not p["staging.max_cache_fraction"] or not (obs.segments or any(t.state == S.UNSTAGED for t in tasks)):
            return
        from batchman.backends.staging.space import cache_full
        where = p.path("staging.cache_fs_path") or p.path("staging.cache_dir")
        try:
            obs.cache_full, used = cache_full(where, p["staging.max_cache_fraction"])
            if obs.cache_full:
                rep.errors.append(f"cache filesystem of {where} is {used:.1%} full (staging.max_cache_fraction "
                                  f"{p['staging.max_cache_fraction']:g}): no new staging requests")
        except OSError as e:
            rep.errors.append(f"cannot check how full {where} is: {e}")

    def _markers(self, jobs: InBatch, obs: D.Observations, only: set[str] | None = None,
                 due: bool = True) -> dict[str, str]:
        """Marker files first (of the jobs named in ``only``, when given, and of the jobs just
        submitted, whose start marker tells "vanished while running"); returns what to ask the
        batch system about (job name -> id): with ``only``, when ``due``, the other jobs too,
        whose markers _markers_after reads if the answer says they are no longer in the queue.
        ``jobs``: the tasks in the batch system by job name, kept as ``named`` for the round's
        later passes (they look up the few jobs with news there instead of going over every task)."""
        self.named = named = jobs.named
        if only is None:
            ask, look = {}, list(named.values())
        else:
            look = sorted((t for n in only if (t := named.get(n)) is not None), key=_name)
            if due:
                look += [t for n, t in jobs.just.items() if n not in only]
            ask = jobs.lend(look) if due else {}      # (the kept ids, not a copy: InBatch.lend)
        for t in look:
            adir = self.paths.attempt_dir(t.job_name)
            if jobscript.read_exit(adir) is not None:
                obs.markers[t.job_name] = jobscript.read_marker(adir)
                if not t.job_id:
                    # ended before we learnt its id (sbatch hung after submitting): ask in the
                    # same query, by name, so the attempt records which job it was
                    ask[t.job_name] = ""
            else:
                ask[t.job_name] = t.job_id
                if t.state in (S.SUBMITTED, S.SUBMITTING):
                    m = jobscript.read_marker(adir)   # started: tells "vanished while running"
                    if m is not None:
                        obs.markers[t.job_name] = m
        return ask

    def _markers_after(self, obs: D.Observations, ask: dict[str, str], unanswered: bool = False,
                       unlisted: list[str] | None = None) -> None:
        """After the query: the markers of the asked jobs the batch system no longer lists as
        queued or running (ended, or unknown to it); a job whose exit marker is there counts as
        not asked, as when _markers finds it first (follow.follow_job judges it by the marker).
        ``unanswered``: when the batch system was not asked or did not answer, every asked job's
        (a daemon's first round: the full scan it did not make before asking)."""
        if obs.jobs is None and not unanswered:
            return              # not asked: nothing new of any job but those of the done files
        unlisted = _unlisted(obs.jobs) if unlisted is None else unlisted
        there = self.dirs = self._attempt_dirs(_about(ask, obs.jobs, unlisted))   # (listed: those with one looked up)
        todo = _not_listed(ask, obs.jobs, unlisted) if there is None else _not_listed_in(there, ask, obs.jobs)
        for name in filterfalse(obs.markers.__contains__, todo):
            adir = self.paths.attempt_dir(name)
            if jobscript.read_exit(adir) is not None:
                obs.markers[name] = jobscript.read_marker(adir)
                if ask[name] and obs.jobs is not None:
                    obs.jobs.pop(name, None)

    def _attempt_dirs(self, n: int) -> set[str] | frozenset | None:
        """The attempt directories there are, from one listing, when about ``n`` jobs are to be looked
        at and a listing costs less than a look per job (its link count says how many entries it
        has); None: look at each. Many jobs without a directory: a temp dir wiped while the batch
        system lost the jobs too, or a benchmark's (290,000 at 1,000,000 tasks)."""
        if n < LIST_FROM:
            return None
        try:
            links = os.stat(self.paths.attempts).st_nlink
            if links < 2 or n * 4 < links - 2:       # (1: a filesystem that does not count them)
                return None
            return set(os.listdir(self.paths.attempts))
        except FileNotFoundError:
            return frozenset()
        except OSError:
            return None

    def _query_batch(self, ask: dict[str, str], obs: D.Observations, now: float, rep: IterationReport,
                     arrays: dict[str, tuple[str, int]] | None = None) -> None:
        """One batch query for the rest, within the polling budget. ``arrays``: the asked jobs
        that are elements of job arrays (job name -> array name, index)."""
        obs.jobs = {}
        if not ask:
            return
        if not self.pacing.may_query(now):
            # Not yet: the site's min_query_interval, or backing off after a failure. Nothing
            # about these jobs is known this round, so nothing about them changes.
            obs.jobs = None
            rep.batch = "waiting"
            return
        try:
            obs.jobs = self.batch.query(ask, arrays=arrays) if arrays else self.batch.query(ask)
            rep.batch = "ok"
            self.pacing.answered(now)
        except BackendUnavailable as e:
            rep.errors.append(f"batch system: {e}")
            rep.batch = "down"
            self.pacing.failed(self.clock(), str(e))
            # What the queue did say still counts (e.g. squeue answered, accounting did not);
            # jobs it did not mention are left unchanged, never taken for absent.
            obs.jobs = {n: i for n, i in e.partial.items() if n in ask} if e.partial else None

    def _finished(self, tasks: list[Task], obs: D.Observations, done: list[str] | None = None) -> None:
        """What finished jobs say about themselves: segments analysed, failure hints, outputs.
        ``done``: the jobs the answer said finished (_said), if known; some may be out of it since."""
        ended = {n for n, m in obs.markers.items() if m is not None and m.exit_code is not None}
        jobs = obs.jobs or {}
        ended.update(filter(jobs.__contains__, _said(jobs)[1] if done is None else done))
        if not ended:
            return
        for t in self._named(tasks, ended):
            m = obs.markers.get(t.job_name)
            info = obs.jobs.get(t.job_name) if obs.jobs else None
            if not ((m is not None and m.exit_code is not None) or (info is not None and info.state == "finished")):
                continue
            n = self._analysed(t)
            if n is not None:
                obs.analysed[t.job_name] = n
            if m is None or m.exit_code != 0 or (info is not None and info.failure):
                hint = self._failure_hint(t)
                if hint:
                    obs.hints[t.job_name] = hint
            jd = self.jobs.get(t.job)
            if jd is not None and jd.outputs:
                p = self.params
                paths = J.outputs_for(jd, t.run, p.experiment, p.path("batch.batch_home"), t.seg)
                obs.outputs[t.job_name] = J.judge_outputs(paths, file_sizes(paths))

    def _named(self, tasks: list[Task], names: set[str]) -> list[Task]:
        """The tasks in the batch system whose job is one of ``names``, from ``tasks``: looked up
        by name when they are those this round observed (a few jobs with news among 300,000 at
        1,000,000 tasks), else picked from them."""
        if tasks is self.seen:
            return [t for n in names if (t := self.named.get(n)) is not None]
        return [t for t in tasks if t.job_name in names and t.state in S.IN_BATCH]

    def _analysed(self, t: Task) -> int | None:
        n = jobscript.read_stats(self.paths.stats(t.run, t.job, t.attempt, t.seg))
        if n is None and (self.dirs is None or t.job_name in self.dirs):   # (listed: no directory, no spool)
            v = report.read(self.paths.spool(t.job_name)).get("segments_analysed")
            n = v if isinstance(v, int) else None
        return n

    def _failure_hint(self, t: Task) -> str:
        """Failure class the tail of the attempt's stderr suggests (OverMemoryKill, time limit),
        when the batch backend can read one."""
        if not self.batch.capabilities.failure_hints:
            return ""
        try:
            with open(self.paths.log(t.run, t.job, t.attempt, "err", t.seg), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 8192))
                tail = f.read().decode(errors="replace")
        except OSError:
            return ""
        return self.batch.failure_hint(tail)

    def watch(self, status: Status, now: float, rep: IterationReport) -> list[tuple[int, str, str]]:
        """Runs whose data a data-complete / first-segment job waits for and which have settled."""
        watching = self.jobs.watching()
        if not watching:
            return []
        p = self.params
        pat = p["staging.pattern"]
        if "/" in pat:
            rep.errors.append("data-complete/first-segment jobs need a staging.pattern without directories")
            return []
        idx = index_segments(p.path("staging.stub_dir"), pat, p["staging.prefix"], p["staging.suffix"])
        have = {t.run_key for t in status.tasks}
        ready = []
        for d in watching:
            seen = {}
            for r in J.watched_runs(d, idx, status.watched):
                if task_key(r, d.name) not in have:
                    seen[r] = J.signature(d, file_stats(idx[r][:1] if d.trigger == J.FIRST_SEGMENT else idx[r]))
            self.settle[d.name], ok = J.settle(self.settle.get(d.name, {}), seen, now, d.settle)
            what = "all segments" if d.trigger == J.DATA_COMPLETE else "first segment"
            ready += [(r, d.name, f"{d.trigger}: {what} there, unchanged for {d.settle:g} s") for r in ok]
        return ready

    def read_counters(self, status: Status, tasks: list[Task] | None = None) -> dict[str, dict]:
        """Counters of jobs in the batch system; a spool is parsed only when it changed. Every
        job's spool is looked at in a full scan and at a batch query at most every SPOOLS_EVERY
        s; otherwise only those of the jobs whose end was just seen (``tasks``: as observe's).
        A job without an attempt directory (when observe listed them: ``dirs``) has no spool."""
        out, every, dirs = {}, self.all_spools, self.dirs
        seen = {} if every else dict(self.spool_sigs)
        tasks = status.tasks if tasks is None else tasks
        pick = dirs if every else self.only       # (listed: the jobs with a directory looked up)
        for t in tasks if pick is None else self._named(tasks, pick):
            if t.job_name and t.state in S.IN_BATCH and (dirs is None or t.job_name in dirs):
                path = self.paths.spool(t.job_name)
                try:
                    stt = os.stat(path)
                except OSError:
                    continue
                sig = (stt.st_size, stt.st_mtime_ns)
                seen[path] = sig
                if self.spool_sigs.get(path) == sig:
                    continue
                c = report.read(path)
                if c:
                    out[t.job_name] = c
        self.spool_sigs = seen
        return out
