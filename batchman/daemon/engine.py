"""One daemon iteration: observe -> decide -> record intents -> act -> record results.

Observing and acting (the slow parts: batch and staging commands) happen outside the
lock; the lock is held only for the two short read-modify-writes. A crash at any point
leaves the file consistent: actions decided but not confirmed stay recorded as the
task's intent, and the next daemon carries them out again (a submission first looks for
its job by name, so no run is ever submitted twice).
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from batchman.core import decide as D
from batchman.core import jobs as J
from batchman.daemon import jobscript
from batchman import report
from batchman.core import states as S
from batchman.backends.base import BackendUnavailable, JobSpec, Rejected, StagingView
from batchman.core.model import Daemon, IterationLog, Status, Task, UnknownJob, parse_job_name, task_key
from batchman.params import Params
from batchman.paths import Paths
from batchman.daemon.segments import find_segments, index_segments
from batchman.notify.step import Outputs
from batchman.store.store import Store

# Test hook: the SIGKILL tests set BATCHMAN_CRASH_AT=<point> to die at that point.
CRASH_POINTS = ("after-observe", "after-intent", "before-submit", "after-submit", "before-record", "after-record")


def _crash_point(name: str) -> None:
    if os.environ.get("BATCHMAN_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Work:
    """The slow actions for one task, as decided under the lock."""
    key: str
    actions: list[str]
    run: int
    job: str
    attempt: int
    job_name: str
    job_id: str
    files: list[str]
    inputs: list[str] = field(default_factory=list)
    resources: dict = field(default_factory=dict)    # retry overrides: memory_mb, time_limit, exclude


@dataclass
class IterationReport:
    transitions: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds_own: float = 0.0      # our own code: read, decide, write (not external commands)
    seconds_total: float = 0.0
    lock_max: float = 0.0
    work_left: bool = True
    commands: int = 0
    batch: str = "idle"            # the batch query this round: ok | down | waiting (interval/back-off) | idle


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
        self.policy = D.Policy.from_params(params)
        self.paused = False          # --no-new-starts for this daemon only
        self.html_seconds = 0.0      # time the last iteration spent writing the status page
        self._cleared: set[str] = set()   # tasks whose staging-only intents are done, not yet written
        self._spool_sigs: dict[str, tuple] = {}
        self.jobs = params.jobs
        self.only: Callable[[Task], bool] | None = None   # --dataset / --where: the tasks this daemon advances
        self._settle: dict[str, dict] = {}                 # watching job -> run -> (files' signature, since)
        self.ready: list[tuple[int, str, str]] = []        # (run, job, why) triggers seen by the last observe
        # Polling budget: the batch system is asked at most every batch.min_query_interval s;
        # after a failure the next query waits twice as long each time (jitter, up to backoff_cap).
        self.next_query = 0.0
        self.query_failures = 0
        self.last_batch_error = ""
        self.rng = random.Random()
        self._used: dict[str, dict] = {}                   # task key -> resources of the spec submitted
        self._limits_known = bool(params["batch.max_time_limit"])
        if hasattr(batch, "squeue_reuse"):
            batch.squeue_reuse = max(params["batch.min_query_interval"], 2.0)
        self.outputs = Outputs(params, self.say)           # alerts and metrics (issue 19)

    # ---- observing -----------------------------------------------------------------
    def _live_daemons(self, status: Status, now: float) -> frozenset[str]:
        host = socket.gethostname()
        stale = self.params.stale_after
        live = {self.me}
        for d in status.daemons:
            if d.id == self.me:
                continue
            if now - d.heartbeat > stale:
                continue
            if d.host == host:
                from batchman.backends.batch.local import pid_alive
                if not pid_alive(d.pid):
                    continue
            live.add(d.id)
        return frozenset(live)

    def observe(self, status: Status, rep: IterationReport) -> D.Observations:
        now = self.clock()
        p = self.params
        obs = D.Observations(now=now, me=self.me, live_daemons=self._live_daemons(status, now),
                             paused=self.paused or status.paused)
        obs.gates = J.gates(status.tasks, self.jobs)
        new = [t for t in status.tasks if t.state == S.NEW and not t.request and not t.held
               and (self.only is None or self.only(t))]
        if obs.gates:
            # after: / needs_staging: false tasks look for no segments (or not yet)
            new = [t for t in new if (g := obs.gates.get(t.key)) is None or (not g.wait and g.staging)]
        self.ready = self._watch(status, now, rep)
        if new and not obs.paused:
            stub = p.path("staging.stub_dir")
            pat, pre, suf = p["staging.pattern"], p["staging.prefix"], p["staging.suffix"]
            if len(new) > 8 and "/" not in pat:
                idx = index_segments(stub, pat, pre, suf)
                where = os.path.join(stub, pat.replace("{prefix}", pre).replace("{suffix}", suf))
                for t in new:
                    obs.segments[t.key] = (idx.get(t.run, []), where.replace("{run}", str(t.run)))
            else:
                for t in new:
                    obs.segments[t.key] = find_segments(stub, pat, t.run, pre, suf)
        # Staging: one query for the files of every task that waits for or holds them.
        files = [s.path for t in status.tasks if t.state in (S.UNSTAGED, S.STAGING, S.STAGED) for s in t.segments]
        if files:
            try:
                obs.staging = self.staging.query(files)
            except BackendUnavailable as e:
                rep.errors.append(f"staging system: {e}")
                obs.staging = None
        else:
            obs.staging = StagingView()
        if p["staging.max_cache_fraction"] and any(t.state == S.UNSTAGED for t in status.tasks):
            from batchman.backends.staging.space import cache_full
            where = p.path("staging.cache_fs_path") or p.path("staging.cache_dir")
            try:
                obs.cache_full, used = cache_full(where, p["staging.max_cache_fraction"])
                if obs.cache_full:
                    rep.errors.append(f"cache filesystem of {where} is {used:.1%} full (staging.max_cache_fraction "
                                      f"{p['staging.max_cache_fraction']:g}): no new staging requests")
            except OSError as e:
                rep.errors.append(f"cannot check how full {where} is: {e}")
        # Batch: marker files first; ask the batch system only about the rest (one query).
        ask: dict[str, str] = {}
        for t in status.tasks:
            if t.state in S.IN_BATCH and t.job_name:
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
        obs.jobs = {}
        if ask and now < self.next_query:
            # Not yet: the site's min_query_interval, or backing off after a failure. Nothing
            # about these jobs is known this round, so nothing about them changes.
            obs.jobs = None
            rep.batch = "waiting"
        elif ask:
            try:
                obs.jobs = self.batch.query(ask)
                rep.batch = "ok"
                self.query_failures = 0
                self.next_query = now + p["batch.min_query_interval"]
            except BackendUnavailable as e:
                rep.errors.append(f"batch system: {e}")
                rep.batch = "down"
                self._back_off(self.clock(), str(e))
                # What the queue did say still counts (e.g. squeue answered, accounting did not);
                # jobs it did not mention are left unchanged, never taken for absent.
                partial = getattr(e, "partial", None)
                obs.jobs = {n: i for n, i in partial.items() if n in ask} if partial else None
        obs.no_submit = self.query_failures > 0 and now < self.next_query
        # What finished jobs say about themselves.
        for t in status.tasks:
            if t.state not in S.IN_BATCH or not t.job_name:
                continue
            m = obs.markers.get(t.job_name)
            info = obs.jobs.get(t.job_name) if obs.jobs else None
            if (m is not None and m.exit_code is not None) or (info is not None and info.state == "finished"):
                n = jobscript.read_stats(self.paths.stats(t.run, t.job, t.attempt))
                if n is None:
                    c = report.read(self.paths.spool(t.job_name))
                    v = c.get("segments_analysed")
                    n = v if isinstance(v, int) else None
                if n is not None:
                    obs.analysed[t.job_name] = n
                if (m is not None and m.exit_code not in (None, 0)) or m is None or m.exit_code is None \
                        or (info is not None and info.failure):
                    hint = self._stderr_hint(t)
                    if hint:
                        obs.hints[t.job_name] = hint
                jd = self.jobs.get(t.job)
                if jd is not None and jd.outputs:
                    paths = J.outputs_for(jd, t.run, p.experiment, p.path("batch.batch_home"))
                    sizes = {}
                    for x in paths:
                        try:
                            sizes[x] = os.path.getsize(x)
                        except OSError:
                            pass
                    obs.outputs[t.job_name] = J.judge_outputs(paths, sizes)
        return obs

    def _watch(self, status: Status, now: float, rep: IterationReport) -> list[tuple[int, str, str]]:
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
        have = {t.key for t in status.tasks}
        ready = []
        for d in watching:
            seen = {}
            for r in J.watched_runs(d, idx, status.watched):
                if task_key(r, d.name) in have:
                    continue
                files = []
                for path in idx[r][:1] if d.trigger == J.FIRST_SEGMENT else idx[r]:
                    try:
                        stt = os.stat(path)
                    except OSError:
                        continue
                    files.append((os.path.basename(path), stt.st_size, stt.st_mtime_ns))
                seen[r] = J.signature(d, files)
            self._settle[d.name], ok = J.settle(self._settle.get(d.name, {}), seen, now, d.settle)
            what = "all segments" if d.trigger == J.DATA_COMPLETE else "first segment"
            ready += [(r, d.name, f"{d.trigger}: {what} there, unchanged for {d.settle:g} s") for r in ok]
        return ready

    def _create(self, st: Status, now: float, rep: IterationReport) -> int:
        """Create the tasks triggers ask for, under the lock: a (run, job) already in the file is
        never created again, whichever daemon saw the data first."""
        todo = J.to_create(st.tasks, self.jobs, self.ready)
        if not todo:
            return 0
        meta = {t.run: t.meta for t in st.tasks if t.meta}
        for run, job, why in todo:
            t = Task(run=run, job=job, since=now, added_at=now, reason=why, meta=dict(meta.get(run, {})))
            st.tasks.append(t)
            self.store.record(t.key, "", S.NEW, why, self.me, now)
            rep.transitions.append(f"{run} {job}: created ({why})")
        return len(todo)

    def _back_off(self, now: float, error: str) -> None:
        """The batch system could not be asked: wait base x 2^(n-1) (x 0.75-1.25 jitter, at most
        batch.backoff_cap) before the next query; base is min_query_interval, at least 5 s."""
        p = self.params
        self.query_failures += 1
        base = max(p["batch.min_query_interval"], 5.0)
        delay = base * 2 ** min(self.query_failures - 1, 30) * self.rng.uniform(0.75, 1.25)
        self.next_query = now + min(delay, p["batch.backoff_cap"])
        self.last_batch_error = error

    def _stderr_hint(self, t: Task) -> str:
        """Failure class the tail of the attempt's stderr suggests (OverMemoryKill, time limit)."""
        from batchman.backends.batch.slurm import log_failure_hint
        try:
            with open(self.paths.log(t.run, t.job, t.attempt, "err"), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 8192))
                return log_failure_hint(f.read().decode(errors="replace"))
        except OSError:
            return ""

    def _learn_limits(self, status: Status) -> None:
        """The partition's MaxTime/DefaultTime, asked once, when a timeout retry needs them."""
        if self._limits_known or not hasattr(self.batch, "time_limits"):
            return
        if not any(t.state == S.FAILED and D.failure_class(t) == "timeout" for t in status.tasks):
            return
        try:
            mx, df = self.batch.time_limits(self.params["batch.queue"] or None)
        except BackendUnavailable:
            return
        self._limits_known = True
        self.policy = dataclasses.replace(self.policy, limits=dataclasses.replace(
            self.policy.limits, max_time=mx, default_time=df))

    def _command_log(self, records) -> list[str]:
        return [f"{' '.join(r.argv[:1] + [a for a in r.argv[1:3] if not a.startswith('-')])} {r.seconds:.3f}s"
                + ("" if r.returncode == 0 else f" exit {r.returncode}" if r.returncode is not None else "")
                + (f": {r.error}" if r.error else "") for r in records]

    def _count_calls(self, st: Status, now: float, n: int) -> int:
        """Add n batch commands to the per-minute counts of the last hour; return the hour's total."""
        minute = float(int(now // 60) * 60)
        calls = [c for c in st.batch_calls if c[0] > now - 3600]
        if n:
            if calls and calls[-1][0] == minute:
                calls[-1] = [minute, calls[-1][1] + n]
            else:
                calls.append([minute, float(n)])
        st.batch_calls = calls
        return int(sum(c[1] for c in calls))

    # ---- one iteration -------------------------------------------------------------
    def run_once(self) -> IterationReport:
        """One iteration; the status page is written once, at its end, from the last write."""
        deferred = self.store.defer_html
        self.store.defer_html = True
        try:
            return self._run_once()
        finally:
            self.store.defer_html = deferred
            t0 = time.perf_counter()
            self.store.flush_html()
            self.html_seconds = time.perf_counter() - t0

    def _run_once(self) -> IterationReport:
        rep = IterationReport()
        t_start = time.perf_counter()
        own = 0.0
        runner = getattr(self.batch, "runner", None)
        n_cmd0 = len(runner.records) if runner is not None else 0
        t0 = time.perf_counter()
        status = self.store.read()
        self._apply_cleared(status)
        own += time.perf_counter() - t0
        self._learn_limits(status)
        obs = self.observe(status, rep)
        n_cmd_obs = len(runner.records) if runner is not None else 0
        _crash_point("after-observe")
        work: list[Work] = []
        counters = self._read_counters(status)

        t0 = time.perf_counter()
        # Decide outside the lock on what we read; redo it inside only if someone wrote since.
        decisions = D.plan(status.tasks, obs, self.policy, only=self.only)
        with self.store.transaction("batchman-daemon") as st:
            now = self.clock()
            if st.tasks is not status.tasks:
                # Tasks added since we observed are simply not observed yet: they wait a turn.
                self._apply_cleared(st)
                decisions = D.plan(st.tasks, obs, self.policy, only=self.only)
            self._cleared = set()      # written with this transaction
            self._create(st, now, rep)
            self._heartbeat(st, now)
            if rep.batch == "down":
                st.batch_unreachable_since = st.batch_unreachable_since or now
                st.batch_last_error, st.batch_last_error_at = self.last_batch_error, now
            elif rep.batch == "ok" or not self.query_failures:
                st.batch_unreachable_since = None
            st.batch_next_try = self.next_query if self.query_failures else None
            for t, d in decisions:
                before_state = t.state
                tr = D.apply(t, d, now, self.me, st.store_id, obs.staging)
                if tr:
                    self.store.record(t.key, tr[0], tr[1], d.reason, self.me, now)
                    rep.transitions.append(f"{t.run} {t.job}: {before_state} -> {t.state} ({d.reason})")
                if d.actions:
                    work.append(Work(t.key, list(d.actions), t.run, t.job, t.attempt, t.job_name, t.job_id,
                                     [s.path for s in t.segments], inputs=list(t.inputs),
                                     resources=dict(t.resources)))
            for t in st.tasks:
                c = counters.get(t.job_name)
                if c and t.job_name and c != {k: t.counters.get(k) for k in c}:
                    t.counters = {**t.counters, **c}
            cmds = runner.records[n_cmd0:n_cmd_obs] if runner is not None else []
            st.last_iteration = IterationLog(at=now, seconds=sum(r.seconds for r in cmds),
                                             commands=self._command_log(cmds), errors=rep.errors[:20],
                                             changes=len(rep.transitions), queried=rep.batch in ("ok", "down"),
                                             calls_hour=self._count_calls(st, now, len(cmds)))
        own += time.perf_counter() - t0
        rep.lock_max = max(rep.lock_max, self.store.last_lock_seconds)
        _crash_point("after-intent")

        results = self._act(work, obs, rep)

        if results and not self._needs_record(work, results):
            # Only staging requests / releases / cancellations, all done: nothing to record but
            # the cleared intents, which go to disk with the next write (a crash before it
            # redoes them, and each is idempotent). One write per iteration instead of two.
            self._cleared |= {w.key for w in work}
            self._apply_cleared(self.store.read())
        elif results:
            _crash_point("before-record")
            t0 = time.perf_counter()
            with self.store.transaction("batchman-daemon") as st:
                self._record(st, work, results, rep)
                acted = runner.records[n_cmd_obs:] if runner is not None else []
                if acted and st.last_iteration is not None:
                    li = st.last_iteration
                    li.commands = (li.commands + self._command_log(acted))[-50:]
                    li.seconds += sum(r.seconds for r in acted)
                    li.errors = rep.errors[:20]
                    li.calls_hour = self._count_calls(st, self.clock(), len(acted))
            own += time.perf_counter() - t0
            rep.lock_max = max(rep.lock_max, self.store.last_lock_seconds)
            _crash_point("after-record")
        self.iterations += 1
        final = self.store.read()
        rep.work_left = D.has_work(final.tasks, self.policy, J.stuck(final.tasks, self.jobs), self.only)
        rep.seconds_own = own
        rep.seconds_total = time.perf_counter() - t_start
        rep.commands = (len(runner.records) - n_cmd0) if runner is not None else 0
        self.outputs.step(self, final, rep, self.clock())   # after the record step: alerts, metrics
        return rep

    def _read_counters(self, status: Status) -> dict[str, dict]:
        """Counters of jobs in the batch system; a spool is parsed only when it changed."""
        out = {}
        seen = {}
        for t in status.tasks:
            if t.job_name and t.state in S.IN_BATCH:
                path = self.paths.spool(t.job_name)
                try:
                    stt = os.stat(path)
                except OSError:
                    continue
                sig = (stt.st_size, stt.st_mtime_ns)
                seen[path] = sig
                if self._spool_sigs.get(path) == sig:
                    continue
                c = report.read(path)
                if c:
                    out[t.job_name] = c
        self._spool_sigs = seen
        return out

    def _heartbeat(self, st: Status, now: float) -> None:
        for d in st.daemons:
            if d.id == self.me:
                d.heartbeat = now
                d.iterations = self.iterations + 1
                d.mode = self.mode
                break
        else:
            host, pid = socket.gethostname(), os.getpid()
            st.daemons.append(Daemon(id=self.me, host=host, pid=pid, started=self.started, heartbeat=now,
                                     mode=self.mode, iterations=self.iterations + 1))
        # Forget daemons that have been silent for a day.
        st.daemons = [d for d in st.daemons if d.id == self.me or now - d.heartbeat < 86400]

    def unregister(self) -> None:
        with self.store.transaction("batchman-daemon") as st:
            self._apply_cleared(st)
            self._cleared = set()
            if not any(t.state in S.IN_BATCH for t in st.tasks):
                # No job left to ask about: an outage seen earlier says nothing any more (its
                # last error stays on record), and no banner should outlive the daemon.
                st.batch_unreachable_since = None
                st.batch_next_try = None
            st.daemons = [d for d in st.daemons if d.id != self.me]

    # ---- acting (outside the lock) -------------------------------------------------
    def _act(self, work: list[Work], obs: D.Observations, rep: IterationReport) -> dict[str, dict]:
        """Run the slow actions. Returns, per task key, what happened to each action."""
        res: dict[str, dict] = {w.key: {} for w in work}

        def batch_files(action: str, fn) -> None:
            ws = [w for w in work if action in w.actions]
            files = [f for w in ws for f in w.files]
            if not ws:
                return
            ok = True
            if files:
                try:
                    fn(files)
                    rep.actions.append(f"{action}: {len(files)} file(s) of {len(ws)} run(s)")
                except (BackendUnavailable, Rejected) as e:
                    ok = False
                    rep.errors.append(f"{action}: {e}")
            for w in ws:
                res[w.key][action] = ok

        batch_files(D.CANCEL_STAGE, self.staging.cancel)
        ids = [w.job_id for w in work if D.CANCEL in w.actions and w.job_id]
        if ids:
            try:
                self.batch.cancel(ids)
                rep.actions.append(f"cancel: {len(ids)} job(s)")
                ok = True
            except BackendUnavailable as e:
                rep.errors.append(f"cancel: {e}")
                ok = False
        else:
            ok = True
        for w in work:
            if D.CANCEL in w.actions:
                res[w.key][D.CANCEL] = ok
        batch_files(D.RELEASE, self.staging.release)
        batch_files(D.STAGE, self.staging.request)
        # Once one submission finds the batch system unreachable (controller down, sbatch timed
        # out), the rest are not tried this iteration: each would wait its command_timeout, and
        # hundreds of them would hang the iteration. They stay SUBMITTING, looked up by name and
        # submitted next time, exactly as after an unconfirmed submission.
        down = ""
        for w in work:
            if D.REMOVE in w.actions:
                res[w.key][D.REMOVE] = True
            if D.SUBMIT in w.actions:
                if down:
                    res[w.key][D.SUBMIT] = ("unavailable", f"not tried: {down}")
                    continue
                _crash_point("before-submit")
                res[w.key][D.SUBMIT] = self._submit(w, obs, rep)
                _crash_point("after-submit")
                if res[w.key][D.SUBMIT][0] == "unavailable":
                    down = res[w.key][D.SUBMIT][1]
                    if "timed out" not in down:
                        # The controller refused to talk (not: sbatch hung, which may have
                        # submitted -- the next round looks the job up by name): back off.
                        self._back_off(self.clock(), f"sbatch: {down}")
        return res

    def _spec(self, w: Work) -> JobSpec:
        p = self.params
        jd = self.jobs.get(w.job)
        if jd is None:
            raise ValueError(f"job {w.job!r} is not defined in batchman.yaml")
        adir = self.paths.attempt_dir(w.job_name)
        staged = [self.staging.cache_path(f) for f in w.files]
        if not jd.needs_staging:
            staged = list(w.inputs)     # an after: job without staging works on its upstream's outputs
        env = {**jd.env,
            "BATCHMAN_EXPERIMENT": p.experiment, "BATCHMAN_RUN": str(w.run), "BATCHMAN_JOB": w.job,
            "BATCHMAN_TASK": w.key, "BATCHMAN_ATTEMPT": str(w.attempt), "BATCHMAN_FILES": " ".join(staged),
            "BATCHMAN_REPORT_SPOOL": self.paths.spool(w.job_name), "BATCHMAN_ATTEMPT_DIR": adir,
            "BATCHMAN_STATS_FILE": self.paths.stats(w.run, w.job, w.attempt),
            "BATCHMAN_BATCH_HOME": p.path("batch.batch_home"), "BATCHMAN_RUNTIME_DIR": p.path("batch.runtime_setup_dir"),
            "BATCHMAN_STATUS_FILE": p.status_path,
            "EXPERIMENT": p.experiment, "RUN_NUM": str(w.run), "ARP_JOB_ID": w.job_name,
            "BATCHMAN_INPUTS": " ".join(w.inputs),
        }
        values = {**jd.params, "run": w.run, "experiment": p.experiment, "files": staged, "inputs": list(w.inputs),
                  "batch_home": p.path("batch.batch_home"), "job": w.job, "attempt": w.attempt}
        args = jobscript.render_args(jd.args, values)

        def pick(override, key):
            return override if override is not None else p[key]
        script = jobscript.render(command=self._command(w.job), args=args, env=env, attempt_dir=adir,
                                  workdir=p.path("batch.batch_home"),
                                  title=f"run {w.run}, job {w.job}, attempt {w.attempt} ({w.job_name})")
        path = self.paths.script(w.job_name)
        jobscript.write(path, script)
        for d in (p.path("batch.stats_dir"), p.path("daemon.log_dir")):
            os.makedirs(d, exist_ok=True)
        spec = JobSpec(name=w.job_name, script=path, workdir=p.path("batch.batch_home"),
                       stdout=self.paths.log(w.run, w.job, w.attempt, "out"),
                       stderr=self.paths.log(w.run, w.job, w.attempt, "err"), attempt_dir=adir, env=env,
                       time_limit=pick(jd.time_limit, "batch.time_limit") or None,
                       memory_mb=pick(jd.memory_mb, "batch.memory_mb") or None,
                       cpus=pick(jd.cpus, "batch.cpus"), queue=pick(jd.queue, "batch.queue") or None,
                       account=p["batch.account"] or None,
                       qos=p["batch.qos"] or None, reservation=p["batch.reservation"] or None,
                       extra_args=list(pick(jd.extra_args, "batch.extra_args")))
        return dataclasses.replace(spec, **self._retry_resources(w))

    def _retry_resources(self, w: Work) -> dict:
        """The resources a retry changed (Task.resources), as JobSpec fields."""
        r = w.resources or {}
        out = {}
        if r.get("memory_mb"):
            out["memory_mb"] = int(r["memory_mb"])
        if r.get("time_limit"):
            out["time_limit"] = int(r["time_limit"])
        if r.get("exclude"):
            out["exclude_nodes"] = list(r["exclude"])
        return out

    def _command(self, job: str | None = None) -> list[str]:
        jd = self.jobs.get(job) if job else None
        argv = jd.argv() if jd is not None else self.params.command_argv()
        first = argv[0]
        if "/" in first and not os.path.isabs(first):
            argv[0] = os.path.normpath(os.path.join(self.params.path("batch.batch_home"), first))
        return argv

    def command_problem(self, job: str | None = None) -> str | None:
        """Why the configured job command (of ``job``, or of any job) cannot run, or None."""
        import shutil
        if job is None and self.jobs.explicit:
            return next((pr for j in self.jobs.names() if (pr := self.command_problem(j))), None)
        first = self._command(job)[0]
        key = f"jobs.{job}.command" if self.jobs.explicit else "batch.command"
        if "/" in first:
            if not os.path.exists(first):
                return f"the job command {first} does not exist ({key} in batchman.yaml)"
            if not os.access(first, os.X_OK):
                return f"the job command {first} is not executable (chmod +x it, or put an interpreter first in {key})"
        elif shutil.which(first) is None:
            return f"the job command {first!r} is not found on PATH ({key} in batchman.yaml)"
        return None

    def _submit(self, w: Work, obs: D.Observations, rep: IterationReport) -> tuple[str, str]:
        """('ok', job id) | ('rejected', message) | ('unavailable', message)."""
        problem = self.command_problem(w.job)
        if problem:
            return "rejected", problem
        try:
            spec = self._spec(w)
        except (OSError, KeyError, ValueError, IndexError) as e:
            return "rejected", f"cannot write the job script: {e}"
        self._used[w.key] = {k: v for k, v in (("memory_mb", spec.memory_mb), ("time_limit", spec.time_limit),
                                                ("cpus", spec.cpus), ("queue", spec.queue),
                                                ("exclude", spec.exclude_nodes)) if v}
        try:
            jid = self.batch.submit(spec)
        except Rejected as e:
            rep.errors.append(f"submit {w.job_name}: rejected: {e}")
            return "rejected", str(e)
        except BackendUnavailable as e:
            rep.errors.append(f"submit {w.job_name}: {e}")
            return "unavailable", str(e)
        rep.actions.append(f"submitted {w.job_name} as job {jid}")
        return "ok", jid

    # ---- recording results ---------------------------------------------------------
    @staticmethod
    def _needs_record(work: list[Work], results: dict[str, dict]) -> bool:
        """Must the results be written now (a job id, a refusal, a removal, a failed action)?"""
        for w in work:
            if D.SUBMIT in w.actions or D.CANCEL in w.actions or D.REMOVE in w.actions:
                return True
        return any(ok is False for r in results.values() for ok in r.values())

    def _apply_cleared(self, st: Status) -> None:
        """Clear this daemon's finished staging-only intents in a status read from disk."""
        if not self._cleared:
            return
        for t in st.tasks:
            if t.key in self._cleared and t.intent is not None and t.intent.owner == self.me:
                t.intent = None

    def _record(self, st: Status, work: list[Work], results: dict[str, dict], rep: IterationReport) -> None:
        now = self.clock()
        idx = st.index()
        remove: set[str] = set()
        for w in work:
            t = idx.get(w.key)
            if t is None or t.intent is None or t.intent.owner != self.me:
                continue
            r = results.get(w.key, {})
            failed_actions = [a for a, ok in r.items() if ok is False]
            sub = r.get(D.SUBMIT)
            if sub is not None and w.key in self._used:
                t.used = self._used.pop(w.key)
            if sub is not None:
                kind, value = sub
                if kind == "ok":
                    t.job_id = value
                    t.submitted_at = now
                    self._transition(t, S.SUBMITTED, f"submitted as job {value}", now, rep)
                elif kind == "rejected":
                    t.error = value
                    t.failure = "submit-rejected"
                    self._transition(t, S.ERROR, f"submission refused: {value}", now, rep)
                else:
                    t.warning = f"submission not confirmed ({value}); will look for the job by name and retry"
            if failed_actions:
                t.intent.actions = [a for a in t.intent.actions if a in failed_actions]
                continue
            t.intent = None
            if r.get(D.REMOVE):
                remove.add(t.key)
        if remove:
            st.tasks = [t for t in st.tasks if t.key not in remove]
            self.store.purged(len(remove))
            rep.actions.append(f"purged {len(remove)} task(s)")

    def _transition(self, t: Task, new: str, why: str, now: float, rep: IterationReport) -> None:
        old = t.state
        if old == new:
            return
        assert S.allowed(old, new), (old, new)
        t.state, t.since, t.reason = new, now, why
        self.store.record(t.key, old, new, why, self.me, now)
        rep.transitions.append(f"{t.run} {t.job}: {old} -> {new} ({why})")

    # ---- unknown jobs --------------------------------------------------------------
    def scan_unknown(self) -> list[UnknownJob]:
        status = self.store.read()
        prefix = f"bm.{status.store_id}."
        last = getattr(self.batch, "_last_squeue", None)
        fresh = last is not None and time.monotonic() - last[0] < getattr(self.batch, "squeue_reuse", 0.0)
        if self.clock() < self.next_query and not fresh:
            return status.unknown     # not outside the polling budget (interval, back-off)
        try:
            jobs = self.batch.list_ours(prefix)
        except BackendUnavailable:
            return status.unknown
        known = {t.job_name for t in status.tasks if t.job_name}
        now = self.clock()
        return [UnknownJob(name=j.name, job_id=j.job_id, state=j.state, seen=now)
                for j in jobs if j.name not in known and parse_job_name(j.name)]

    def update_unknown(self) -> list[UnknownJob]:
        """Record the jobs under our name pattern that no task accounts for (one query)."""
        unknown = self.scan_unknown()
        with self.store.transaction("batchman-daemon") as st:
            self._apply_cleared(st)
            known = {t.job_name for t in st.tasks if t.job_name}
            unknown = [u for u in unknown if u.name not in known]
            if [u.name for u in st.unknown] == [u.name for u in unknown]:
                self.store.abort()
            else:
                st.unknown = unknown
        return unknown


def loop(engine: Engine, delay: float, forever: bool, verbose: bool, say: Callable[[str], None],
         stop: list) -> int:
    """Iterate until nothing is left (or forever), sleeping ``delay`` between iterations."""
    while not stop:
        rep = engine.run_once()
        if verbose:
            print_report(rep, say)
        if engine.iterations % 10 == 1:
            engine.update_unknown()
        if not rep.work_left and not forever:
            say("nothing left to track: the daemon stops (use --forever to keep it running)")
            break
        t_end = time.monotonic() + delay
        while not stop and time.monotonic() < t_end:
            time.sleep(min(0.2, max(0.0, t_end - time.monotonic())))
    return 0


def print_report(rep: IterationReport, say: Callable[[str], None]) -> None:
    stamp = time.strftime("%H:%M:%S")
    for line in rep.transitions:
        say(f"{stamp}  {line}")
    for line in rep.actions:
        say(f"{stamp}  {line}")
    for line in rep.errors:
        say(f"{stamp}  problem: {line}")
    say(f"{stamp}  iteration done: {len(rep.transitions)} change(s), {rep.commands} batch command(s), "
        f"{rep.seconds_own * 1000:.0f} ms in batchman, lock held at most {rep.lock_max * 1000:.0f} ms")
