"""The local batch backend: jobs as detached processes on this machine.

``submit`` starts ``python -m batchman.backends.batch.local_runner`` in its own session
(so it outlives the daemon) and returns its pid as the job id. The runner waits for a
free slot (an ``flock`` on one of N slot files: the kernel frees it if the runner dies),
runs the job script with its time limit, and writes its own state files in the job's
directory ``<root>/<job name>/``:

* ``local.pid``    the runner's pid (written by the runner itself, first thing)
* ``local.state``  ``queued`` or ``running``
* ``local.exit``   ``<exit code> <failure>`` when it is over (failure: '', timeout, cancelled)

Observing jobs therefore only reads files: no command runs, whatever the number of jobs,
and a daemon stopped and started again still finds every job and its exit status.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time

from batchman.backends.base import (
    ABSENT, FINISHED, QUEUED, RUNNING, BatchBase, Capabilities, JobInfo, JobSpec, Rejected,
)

from batchman.backends.batch import local_runner
from batchman.util.procs import pid_alive  # noqa: F401 - the local jobs' probe, and this module's interface

# Seconds a submitted job may take to write its pid file before it counts as never started.
STARTING_GRACE = 30.0
# A query of more jobs than this lists the root once instead of looking for each job's directory.
LIST_FROM = 100


def _await_exec(pid: int, timeout: float = 2.0) -> None:
    """A runner we forked a moment ago may not have exec'd yet (its command line is still ours, so
    it would not be recognised and the cancel lost): give it up to ``timeout`` to get there."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            return
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[1]) != os.getpid() or b"local_runner" in cmdline:
            return
        time.sleep(0.01)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


class LocalBatch(BatchBase):
    """Jobs as processes on this machine (tests, demos, a workstation)."""
    name = "local"
    # Failure hints: a job's stderr here says what it says under SLURM (the tests stage an
    # OverMemoryKill that way), so the same reading of it applies.
    capabilities = Capabilities(failure_hints=True)

    def __init__(self, root: str, slots: int = 0):
        self.root = os.path.abspath(root)
        self.slots = slots or os.cpu_count() or 1
        self.slot_dir = os.path.join(self.root, ".slots")

    def job_dir(self, name: str) -> str:
        return os.path.join(self.root, name)

    def submit(self, spec: JobSpec) -> str:
        if not os.path.isfile(spec.script):
            raise Rejected(f"job script {spec.script} does not exist")
        d = self.job_dir(spec.name)
        os.makedirs(d, exist_ok=True)
        os.makedirs(self.slot_dir, exist_ok=True)
        # One job per name (the name is the attempt): a second submission while one is starting,
        # queued, running or over starts nothing and answers that job's id, so two daemons racing
        # never run an attempt twice nor wipe the files that make its job visible (issue 15).
        with open(os.path.join(d, "local.submit.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            have = self._info(spec.name, "")
            if have.state != ABSENT:
                return have.job_id
            return self._start(spec, d)

    def _start(self, spec: JobSpec, d: str) -> str:
        # Written before the runner starts: a lookup by name in the instant between the
        # start and the runner's own pid file sees the job as starting, not as absent.
        submitted = time.time()
        with open(os.path.join(d, "local.submitted"), "w", encoding="utf-8") as f:
            f.write(f"{submitted:.3f}\n")
        argv = [sys.executable, "-m", "batchman.backends.batch.local_runner",
                "--dir", d, "--slots", str(self.slots), "--slot-dir", self.slot_dir,
                "--time-limit", str(spec.time_limit or 0), "--stdout", spec.stdout, "--stderr", spec.stderr,
                "--workdir", spec.workdir, "--name", spec.name, spec.script]
        env = {**os.environ, **spec.env}
        for p in (spec.stdout, spec.stderr):
            os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, local_runner.HELD)     # (see there)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True, env=env, close_fds=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        # Not waited for: it outlives us. Keep Python from warning about the child at exit.
        proc.returncode = 0
        # The id too, so a lookup by name before the runner's own pid file gets it.
        with open(os.path.join(d, "local.submitted"), "w", encoding="utf-8") as f:
            f.write(f"{submitted:.3f} {proc.pid}\n")
        return str(proc.pid)

    def _info(self, name: str, job_id: str, listed: set[str] | None = None) -> JobInfo:
        """``listed``: the names in the root, listed at the start of this query (None: look)."""
        d = self.job_dir(name)
        if (name not in listed) if listed is not None else not os.path.isdir(d):
            return JobInfo(name, job_id, ABSENT)     # never submitted here: not a lost job
        ex = _read(os.path.join(d, "local.exit"))
        pid_text = _read(os.path.join(d, "local.pid")) or job_id
        if ex is not None:
            code_s, _, failure = ex.partition(" ")
            try:
                code = int(code_s)
            except ValueError:
                code = None
            failure = failure.strip()
            reason = {"timeout": "time limit reached", "cancelled": "cancelled"}.get(failure, "")
            if failure == "node-fail":
                reason = "the local runner could not run the job: " + (
                    _read(os.path.join(d, "local.error")) or "no reason written")
            if code not in (0, None) and not failure:
                failure = "exit-nonzero"
            return JobInfo(name, pid_text or "", FINISHED, native_state="EXITED", exit_code=code,
                           failure=failure, reason=reason)
        if not pid_text or not pid_text.isdigit():
            sub = (_read(os.path.join(d, "local.submitted")) or "").split()
            try:
                starting = bool(sub) and time.time() - float(sub[0]) < STARTING_GRACE
            except ValueError:
                starting = False
            pid = sub[1] if len(sub) > 1 else ""
            if starting and pid.isdigit() and not pid_alive(int(pid)):
                # the runner died before its first line (cancelled at once): it will never start
                return JobInfo(name, job_id or pid, ABSENT, reason="its runner ended before the job started")
            if starting:
                return JobInfo(name, job_id or pid, QUEUED,
                               native_state="starting", reason="starting")
            return JobInfo(name, job_id, ABSENT)
        if pid_alive(int(pid_text), name):
            st = _read(os.path.join(d, "local.state")) or "queued"
            return JobInfo(name, pid_text, RUNNING if st == "running" else QUEUED, native_state=st,
                           reason="waiting for a free slot" if st != "running" else "", node=os.uname().nodename)
        if _read(os.path.join(d, "local.exit")) is not None:
            return self._info(name, job_id)    # it wrote its exit and ended after we looked
        # The runner is gone without writing its exit: it was killed hard.
        return JobInfo(name, pid_text, FINISHED, native_state="LOST", exit_code=None, failure="lost",
                       reason="the job's runner died without an exit status (killed -9?)")

    def query(self, jobs: dict[str, str]) -> dict[str, JobInfo]:
        """Many jobs: one listing of the root says which were ever submitted here, instead of
        a look per job (300,000 at 1,000,000 tasks). A job recorded as submitted had its
        directory before the status that names it was read, so before this listing."""
        if len(jobs) <= LIST_FROM:
            return {name: self._info(name, jid) for name, jid in jobs.items()}
        try:
            listed = set(os.listdir(self.root))
        except FileNotFoundError:
            listed = set()
        # (those never submitted here without a call each: 290,000 of 300,000 in oneshot's
        # benchmark; in the order asked, as every backend answers: daemon/answer.answers_all)
        return {name: self._info(name, jid, listed) if name in listed else JobInfo(name, jid, ABSENT)
                for name, jid in jobs.items()}

    def list_ours(self, prefix: str) -> list[JobInfo]:
        """The queued and running jobs whose names start with ``prefix``. A job whose exit file
        is there is over (``_info`` says finished): one look, not its files read (10,000 jobs
        ended in oneshot's benchmark at 1,000,000 tasks, every job's in a long campaign)."""
        out = []
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return out
        for n in names:
            if n.startswith(prefix) and not os.path.isfile(os.path.join(self.root, n, "local.exit")):
                info = self._info(n, "")
                if info.state in (QUEUED, RUNNING):
                    out.append(info)
        return out

    def _runner_alive(self, pid: int) -> bool:
        """Is ``pid`` a live runner of this root's jobs? Not merely any local_runner: pids are
        reused (32,768 of them here), and a finished job's pid may be another experiment's runner
        by now -- signalled before its handler was set, that one died as "lost"."""
        return pid_alive(pid, f"--slot-dir\0{self.slot_dir}\0")

    def cancel(self, job_ids: list[str]) -> None:
        for jid in job_ids:
            if jid.isdigit():
                _await_exec(int(jid))
            if jid.isdigit() and self._runner_alive(int(jid)):
                try:
                    os.killpg(int(jid), signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def failure_hint(self, stderr_tail: str) -> str:
        from batchman.backends.batch.slurm_states import log_failure_hint
        return log_failure_hint(stderr_tail)

    def details(self, job_id: str) -> str:
        if not job_id.isdigit():
            return f"no local job {job_id!r}"
        pid = int(job_id)
        alive = self._runner_alive(pid)
        return f"local job {job_id}: runner pid {pid} {'alive' if alive else 'not running'} on {os.uname().nodename}"
