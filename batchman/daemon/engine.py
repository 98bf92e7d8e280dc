"""One daemon iteration: observe -> decide -> record intents -> act -> record results.

Observing and acting (the slow parts: batch and staging commands) happen outside the
lock; the lock is held only for the two short read-modify-writes. A crash at any point
leaves the file consistent: actions decided but not confirmed stay recorded as the
task's intent, and the next daemon carries them out again (a submission first looks for
its job by name, so no run is ever submitted twice).

This module only sequences the steps; each lives in a module of its own: observe.py,
record.py (intents and results), act.py, with jobspec.py (the job's spec and script),
pacing.py (query interval, back-off), unknown.py and loop.py (the loop and its report).
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import os
import socket
import time
from typing import Callable

from batchman.backends.base import BackendUnavailable
from batchman.core import decide as D
from batchman.core import plan as P
from batchman.core import jobs as J
from batchman.core import pacing as PC
from batchman.core import states as S
from batchman.core.model import Status, Task, UnknownJob, frozen
from batchman.core.transition import created
from batchman.daemon import intents, late, record as R, survey, unknown as U
from batchman.daemon.intents import WHO
from batchman.daemon.kept import Kept
from batchman.daemon.act import Actor
from batchman.daemon.command_watch import CommandWatch
from batchman.daemon.crash import CRASH_POINTS, HOOKS, crash_point as _crash_point  # noqa: F401 - the tests' names
from batchman.daemon.jobspec import JobSpecs
from batchman.daemon.loop import loop, print_report  # noqa: F401 - batchman-daemon's entry points
from batchman.daemon.observe import Observer
from batchman.daemon.pacing import Pacing
from batchman.daemon.reload import ParamsWatcher, signature
from batchman.daemon.watch import DoneWatcher
from batchman.daemon.work import IterationReport, Work  # noqa: F401 - part of this module's interface
from batchman.params import Params
from batchman.paths import Paths
from batchman.notify.step import Outputs
from batchman.store.errors import NoSpace
from batchman.store.store import CHECK, Store

_STAMPS = itertools.count()      # array names: see Engine._array_stamp
COMPACT_RETRY = 600.0            # seconds before folding the change log again after no room for it


def daemon_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Engine:
    """Runs iterations for one experiment with given backends."""

    def __init__(self, params: Params, store: Store, batch, staging, mode: str = "loop",
                 clock: Callable[[], float] = time.time, say: Callable[[str], None] | None = None):
        self.params = params
        self.store = store
        self.batch = batch
        self.staging = staging
        self.mode = mode
        self.clock = clock
        self.say = say or (lambda s: None)
        self.me = daemon_id()
        self.started = clock()
        self.iterations = 0
        self.paths = Paths(params)
        self.jobs = params.jobs
        self.policy = D.Policy.from_params(params)
        self.paused = False          # --no-new-starts for this daemon only
        self.only: Callable[[Task], bool] | None = None   # --dataset / --where: the tasks this daemon advances
        self.html_seconds = 0.0      # time the last iteration spent writing the status page
        self.cleared: dict[str, Work] = {}   # tasks whose staging-only intents are done, not yet written (by key)
        self.pacing = Pacing.from_params(params)
        self.pacer = PC.Pacer.from_values(params.values, clock())   # token buckets: submit, stage, kill
        self.held: set[str] = set()      # kinds whose bucket or per-iteration cap held ready work back
        self.watcher = DoneWatcher(self.paths.done)                  # jobs' ends, one listing per look
        self.specs = JobSpecs(params, self.paths, staging)
        self.observer = Observer(params, self.paths, batch, staging, self.pacing, clock)
        self.actor = Actor(batch, staging, self.specs, self.pacing, clock)
        self.actor.engine = self          # handed to the test hooks at its crash points
        self._limits_known = bool(params["batch.max_time_limit"])
        self._max_array: int | None = None   # tasks per job array (None: not known yet)
        if batch.capabilities.listing_reuse:
            batch.reuse_listing(max(params["batch.min_query_interval"], 2.0))
        self.outputs = Outputs(params, self.say)           # alerts and metrics (issue 19)
        self.params_watch = ParamsWatcher(params, clock)   # batchman.yaml edited under us (issue 16.1)
        self.command_watch = CommandWatch()                # job commands missing: nothing staged for them
        self._live: tuple[list[Task] | None, P.Live] = (None, P.Live([]))   # (status.tasks, plan.live of them)
        self._generation, self._requests_sig = -1, None   # the file as this daemon last left it (_survey)
        self._surveyed = 0                                # how many tasks the last survey saw
        self._replanned = False                           # the last round decided on a list not surveyed
        self._unretried: dict[int, Task] = {}             # plan_budget's: failed tasks no retry rule takes
        self._unretried_policy: D.Policy | None = None
        self.kept: Kept | None = None                     # kept from the tasks this daemon changes (_survey)
        self._compact_after = 0.0                         # (clock) no compaction before: compact_store

    @property
    def query_failures(self) -> int:
        return self.pacing.failures

    def command_problem(self, job: str | None = None) -> str | None:
        """Why the configured job command (of ``job``, or of any job) cannot run, or None."""
        return self.specs.command_problem(job)

    # ---- one iteration -------------------------------------------------------------
    def run_once(self, ended: set[str] | None = None) -> IterationReport:
        """One iteration; the status page is written once, at its end, from the last write
        (unless the caller defers pages itself, ``store.defer_html``: it flushes them later).
        ``ended``: names of jobs whose done files the loop saw (None: the done directory is
        listed here). Only the marker files of the jobs whose done file is there, or whose end
        the batch system reports, are read, but in a full scan (observe.Observer._full_scan).

        The cyclic garbage collector waits for the end of the iteration: what an iteration
        allocates (the batch system's answer for every job, the decisions) is freed by reference
        counting, yet while alive it made the collector walk every object several times an
        iteration (2.5 s at 1,000,000 tasks); it then finds only what survives."""
        deferred, collecting = self.store.defer_html, gc.isenabled()
        self.store.defer_html = True
        gc.disable()
        try:
            return self._run_once(ended)
        finally:
            self.store.defer_html = deferred
            t0 = time.perf_counter()
            try:
                if not deferred:
                    self.store.flush_html()
            finally:
                if collecting:
                    gc.enable()
            self.html_seconds = time.perf_counter() - t0

    def _run_once(self, ended: set[str] | None) -> IterationReport:
        rep = IterationReport()
        t_start = time.perf_counter()
        records = self.batch.command_records()
        n_cmd0 = len(records)
        self.params_watch.check(self)
        t0 = time.perf_counter()
        taken = self.clock()            # observations are as old as the status they start from
        requests = signature(self.store.requests_path)    # before the read that merges them
        status = self.store.read()
        R.apply_cleared(status, self.cleared, self.me)
        live = self._survey(status, requests)     # the tasks to look at: not the settled ones
        own = time.perf_counter() - t0
        self._learn_limits(live)
        obs = self.observer.observe(status, self.me, self.paused, self.only, rep, self._done(ended), live,
                                    self.kept.inbatch)
        obs.taken = taken
        obs.unsubmittable_jobs = self.command_watch.check(self, live, self.kept.census.job_names())
        n_cmd_obs = len(records)
        _crash_point("after-observe", self)
        counters = self.observer.read_counters(status, live)
        t0 = time.perf_counter()
        work = self._record_intents(status, live, obs, counters, records[n_cmd0:n_cmd_obs], rep)
        own += time.perf_counter() - t0
        rep.lock_max = max(rep.lock_max, self.store.last_lock_seconds)
        _crash_point("after-intent", self)
        results = self.actor.act(work, rep)
        own += self._record_results(work, results, records[n_cmd_obs:], rep)
        self.iterations += 1
        final = self.store.read()
        self._generation = final.generation
        self._forget_ended(final)
        rep.work_left = D.has_work(final.tasks, self.policy, lambda: J.stuck(final.tasks, self.jobs, self.observer.scan)
                                   | D.blocked_by_command(final.tasks, self.command_watch.known), self.only)
        rep.seconds_own = own
        rep.seconds_total = time.perf_counter() - t_start
        rep.commands = len(records) - n_cmd0
        self.outputs.step(self, final, rep, self.clock())   # after the record step: alerts, metrics
        return rep

    def _record_intents(self, status: Status, live: list[Task], obs: D.Observations, counters: dict, cmds,
                        rep: IterationReport) -> list[Work]:
        """Decide and record the decisions, their slow actions as intents (daemon/intents.py)."""
        return intents.record(self, status, live, obs, counters, cmds, rep)

    # ---- job arrays (issue 14) ----------------------------------------------------
    def _learn_max_array(self) -> None:
        """Most tasks one array may carry: 1 (no arrays) unless batch.arrays is on and the batch
        system has arrays; then the site's MaxArraySize, asked once."""
        if self._max_array is None and not self.pacing.backing_off(self.clock()):
            on = self.params["batch.arrays"] and self.batch.capabilities.arrays
            try:
                self._max_array = self.batch.max_array_size() if on else 1
            except BackendUnavailable:
                pass                 # plain jobs this time; asked again next time
        size = self._max_array or 1
        if self.policy.array_size != size:     # (a reload builds a new policy: set again)
            self.policy = dataclasses.replace(self.policy, array_size=size)

    def _array_stamp(self, now: float) -> str:
        """Unique per iteration of any daemon of this file: the time in ms, the pid, and a count
        of this process's stamps (in-process test daemons share a pid)."""
        from batchman.core.arrays import base36
        return (base36(int(now * 1000)).rjust(9, "0") + base36(os.getpid()).rjust(5, "0")
                + base36(next(_STAMPS) % 36 ** 3).rjust(3, "0"))

    # ---- pacing by rate (issue 14) --------------------------------------------------
    def _tokens(self, now: float) -> dict[str, int]:
        """What each limited token bucket allows now (an unlimited one is not named)."""
        return {k: b.available(now) for k, b in self.pacer.buckets.items() if not b.unlimited}

    def _spend(self, budget: D.Budget, now: float) -> None:
        """Take the tokens of what was decided (after the write: a failed write spends nothing)."""
        for kind, n in (("submit", budget.sbatches), ("stage", budget.stages), ("kill", budget.kills)):
            if n:
                self.pacer.buckets[kind].take(n, now)
        self.held = set(budget.held)

    def next_wakeup(self, delay: float) -> PC.Wakeup:
        """When the loop should run the next iteration (``delay``: the longest sleep): when a
        token is back for work held by its bucket, when the batch system may be asked again about
        jobs not known to have ended, or at once for work held only by a per-iteration cap."""
        now = self.clock()
        st = self.store.read()
        tasks, live = self._live[0], self._live[1].tasks
        # as the last iteration left it (no other writer): a task in the batch system is a live one
        mine = st.tasks is tasks and st.generation == self._generation
        in_batch = any(t.state in S.IN_BATCH for t in (live if mine else st.tasks))
        # never asked yet: jobs just submitted need no answer before a whole interval
        query_at = self.pacing.next_query or (self.started + self.pacing.every)
        deadlines = [(query_at, "query")] if in_batch else []
        held = {k: self.pacer.buckets[k].burst for k in self.held}     # how many: unknown, at most a burst
        return PC.next_wakeup(now, delay=delay, pacer=self.pacer, waiting=held, deadlines=deadlines,
                              gather=self.params["daemon.watch_interval"])

    def _survey(self, status: Status, requests: tuple | None) -> list[Task]:
        """The tasks to look at, what is kept of them brought up to date (daemon/survey.py)."""
        return survey.survey(self, status, requests)

    def _done(self, ended: set[str] | None) -> set[str]:
        """The jobs whose done files are there: ``ended`` and the last listing's (made now when
        the loop gave none, as in oneshot, or lists none while it sleeps: daemon.watch_interval 0)."""
        if ended is None or self.params["daemon.watch_interval"] <= 0:
            self.watcher.check()
        return set(self.watcher.seen) | set(ended or ())

    def _forget_ended(self, final: Status) -> None:
        """Done files of jobs whose end is recorded are removed (the directory keeps only news)."""
        if not self.watcher.seen:
            return
        if final.tasks is self._live[0]:
            # the same list as observed: changed in place by this iteration's decisions only,
            # which never put a job that was not in the batch system before back into it (a
            # job submitted now has another name); so a job seen done is still running only if
            # its task was in the batch system when surveyed and still is (a look at each job
            # seen instead of a pass over every live task: ~100 ms at 1,000,000 tasks)
            task_of = self.kept.inbatch.task_of
            gone = [n for n in self.watcher.seen if (t := task_of(n)) is None or t.state not in S.IN_BATCH]
        else:
            running = {t.job_name for t in final.tasks if t.state in S.IN_BATCH and t.job_name}
            gone = [n for n in self.watcher.seen if n not in running]
        if gone:
            self.watcher.forget(gone)

    def _record_results(self, work: list[Work], results, acted, rep: IterationReport) -> float:
        """Record what the actions did; returns the seconds spent in our own code."""
        if not results:
            return 0.0
        if not R.needs_record(work, results):
            # Only staging requests / releases / cancellations, all done: nothing to record but
            # the cleared intents, which go to disk with the next write (a crash before it
            # redoes them, and each is idempotent). One write per iteration instead of two.
            self.cleared.update((w.key, w) for w in work)
            R.apply_cleared(self.store.read(), self.cleared, self.me)
            return 0.0
        _crash_point("before-record", self)
        t0 = time.perf_counter()
        with self.store.transaction(WHO) as st:
            R.record_results(self.store, st, work, results, self.actor.used, self.clock(), self.me, rep)
            R.log_acted(st, self.clock(), list(acted), rep)
        own = time.perf_counter() - t0
        rep.lock_max = max(rep.lock_max, self.store.last_lock_seconds)
        _crash_point("after-record", self)
        return own

    def _create(self, st: Status, now: float, rep: IterationReport) -> int:
        """Create the tasks triggers ask for, under the lock: a (run, job) already in the file is
        never created again, whichever daemon saw the data first."""
        n = self._split(st, now, rep)
        todo = J.to_create(st.tasks, self.jobs, self.observer.ready, self.observer.scan)
        if not todo:
            return n
        meta = {t.run: t.meta for t in st.tasks if t.meta}
        for run, job, why in todo:
            self._add(st, Task(run=run, job=job, since=now, added_at=now, reason=why, meta=frozen(meta.get(run))),
                      why, now, rep)
        return n + len(todo)

    def _add(self, st: Status, t: Task, why: str, now: float, rep: IterationReport) -> None:
        st.tasks.append(t)
        tr = created(t, why, now, self.me)
        self.store.record(tr.key, tr.old, tr.new, tr.why, tr.by, tr.at)
        rep.transitions.append(f"{t.key}: created ({why})")

    def _split(self, st: Status, now: float, rep: IterationReport) -> int:
        """Replace the run task of a per: segment job whose segments were observed by one task per
        segment (each stages, runs and releases only its own file)."""
        found, n = self.observer.split_found, 0
        for t in late.add(self.observer.late, st, now):    # files found after the split (late.py)
            self._add(st, t, t.reason, now, rep)
            n += 1
        if not found:
            return n
        idx = st.index()
        gone = set()
        for key, segs in found.items():
            t = idx.get(key)
            if t is None or t.state != S.NEW or t.request or t.held or t.intent is not None:
                continue       # changed since we observed: next round
            gone.add(key)
            for s in J.split(t, segs, idx, now):
                self._add(st, s, s.reason, now, rep)
                n += 1
            why = J.split_why(segs)
            if J.left_out(segs):     # said where a person looks too, not left out silently
                rep.transitions.append(f"{key}: {why}")
            self.store.record(key, t.state, J.SPLIT, why, self.me, now)
        if gone:
            st.tasks = [t for t in st.tasks if t.key not in gone]
        self.observer.split_found = {}
        return n

    def _learn_limits(self, tasks: list[Task]) -> None:
        """The partition's MaxTime/DefaultTime, asked once, when a timeout retry needs them."""
        if self._limits_known or not self.batch.capabilities.time_limits:
            return
        if not any(t.state == S.FAILED and D.failure_class(t) == "timeout" for t in tasks):
            return
        try:
            mx, df = self.batch.time_limits(self.params["batch.queue"] or None)
        except BackendUnavailable:
            return
        self._limits_known = True
        self.policy = dataclasses.replace(self.policy, limits=dataclasses.replace(
            self.policy.limits, max_time=mx, default_time=df))

    # ---- between iterations --------------------------------------------------------
    def update_unknown(self) -> list[UnknownJob]:
        """Record the jobs under our name pattern that no task accounts for (one query). When
        the file already records them, nothing is locked or written: an aborted transaction would
        throw away this process's copy (and a re-read costs seconds at 1,000,000 tasks) whenever
        it holds changes not written yet, such as intents cleared after a release."""
        status = self.store.read()
        unknown = U.scan(status, self.batch, self.pacing.may_query(self.clock()), self.clock, self.paths.arrays)
        unknown, changed = U.still_unknown(status, unknown)
        if not changed:
            return unknown
        with self.store.transaction(WHO) as st:
            R.apply_cleared(st, self.cleared, self.me)
            unknown, changed = U.keep_unknown(st, unknown)
            if not changed:
                self.store.abort()
        return unknown

    def compact_store(self) -> bool:
        """Between iterations: fold a grown change log into the status file (issue 18); the
        file is written without the lock, which is held only for the renames. No room for the
        new file (a disk with room for rounds, not for a second copy of the file): said, tried
        again after COMPACT_RETRY s; the rounds go on (readers replay the longer log)."""
        if self.clock() < self._compact_after or not self.store.compact_due():
            return False
        try:
            return self.store.compact()
        except NoSpace as err:
            self._compact_after = self.clock() + COMPACT_RETRY
            self.say(f"the change log is not folded into the status file: {err}; the rounds go on, "
                     f"folding is tried again in {COMPACT_RETRY / 60:g} minutes")
            return False

    def tend_page(self) -> bool:
        """Between iterations: the page's periodic recount when due (batchman.page.live), which
        the loop asked the page to leave out of its rounds."""
        tend = getattr(self.store.render_html, "tend", None)     # (no page written: nothing to tend)
        return bool(tend and tend())

    def unregister(self) -> None:
        with self.store.transaction(WHO) as st:
            R.apply_cleared(st, self.cleared, self.me)
            self.cleared = {}
            if not any(t.state in S.IN_BATCH for t in st.tasks):
                # No job left to ask about: an outage seen earlier says nothing any more (its
                # last error stays on record), and no banner should outlive the daemon.
                st.batch_unreachable_since = None
                st.batch_next_try = None
            st.daemons = [d for d in st.daemons if d.id != self.me]
            if self.iterations and self.mode in ("oneshot", "quietone"):
                st.last_round = self.clock()        # (a oneshot from cron: the page is calm until stale_after)
            if not st.daemons:
                self.params_watch.record_gone(st)       # no daemon left to keep old settings
