"""A running daemon follows edits of batchman.yaml.

Each iteration it looks at the file's signature (mtime, size, inode); when it changed, the
file is loaded again. A file that validates is applied (what the daemon reads each
iteration: policies, jobs, batch resources, paths; settings its backends or its status file
were built from need a restart, which it says once). A file that does not validate changes
nothing: the daemon keeps its settings, says so once, and ``problem`` (written to the status
file as ``params_problem``) names the first bad key, for the page, the TUI and ``list``.
"""

from __future__ import annotations

import os
from typing import Callable

from batchman import params as P
from batchman.core import decide as D
from batchman.core import pacing as PC
from batchman.daemon.jobspec import JobSpecs
from batchman.notify.step import Outputs
from batchman.params_fallback import first_problem
from batchman.paths import Paths

# Read when the daemon starts (backends, status file, lock): a change applies after a restart.
RESTART_KEYS = ("batch.backend", "batch.command_timeout", "batch.local_slots", "batch.slurm_accounting",
                "daemon.status_file", "daemon.html_file", "daemon.lock_timeout", "daemon.temp_dir",
                "daemon.delay")


def signature(path: str) -> tuple | None:
    try:
        s = os.stat(path)
    except OSError:
        return None
    return (s.st_mtime_ns, s.st_size, s.st_ino)


class ParamsWatcher:
    """Reloads batchman.yaml for one engine when the file changes."""

    def __init__(self, params: P.Params, clock: Callable[[], float]):
        self.path = os.path.join(params.root, P.CONFIG_NAME)
        self.sig = signature(self.path)
        self.clock = clock
        self.problem = ""                  # the first problem of the file on disk, "" when it is in use
        self.since: float | None = None

    def check(self, engine) -> None:
        """Load the file again if it changed since the last look; apply it if it validates."""
        sig = signature(self.path)
        if sig == self.sig:
            return
        self.sig = sig
        try:
            new = P.load(os.path.dirname(self.path))
        except P.ParamError as err:
            problem = first_problem(err)
            if problem != self.problem:
                engine.say(f"warning: {P.CONFIG_NAME} changed and does not validate: {problem}; "
                           "the daemon keeps its previous parameters")
            self.problem, self.since = problem, self.since or self.clock()
            return
        if self.problem:
            engine.say(f"{P.CONFIG_NAME} validates again: its parameters apply")
        self.problem, self.since = "", None
        apply(engine, new)

    def record(self, st) -> None:
        """Write the problem (or its absence) to the status being written."""
        st.params_problem = self.problem
        st.params_problem_since = self.since

    @staticmethod
    def record_gone(st) -> None:
        """The last daemon leaves: no running daemon keeps old settings any more."""
        st.params_problem, st.params_problem_since = "", None


def apply(engine, new: P.Params) -> None:
    """Give ``engine`` the parameters ``new``: what it reads each iteration changes now (its
    policy, jobs, paths and job specs, its observer's and actor's, the query pacing, the
    alerts and metrics); what it was built from at start (RESTART_KEYS, staging.*) is named."""
    old = engine.params
    changed = sorted(k for k in new.values if new.values[k] != old.values.get(k))
    if old.jobs_raw != new.jobs_raw:
        changed.append("jobs")
    if not changed:
        return
    paths = Paths(new)
    engine.params, engine.paths, engine.jobs = new, paths, new.jobs
    engine.policy = D.Policy.from_params(new)
    engine.specs = JobSpecs(new, paths, engine.staging)
    engine.actor.specs = engine.specs
    engine.observer.use(new, paths)
    engine.pacing.min_interval = new["batch.min_query_interval"]
    engine.pacing.backoff_cap = new["batch.backoff_cap"]
    if engine.batch.capabilities.listing_reuse:
        engine.batch.reuse_listing(max(new["batch.min_query_interval"], 2.0))
    paced = {k for keys in PC.KEYS.values() for k in keys}
    if paced & set(changed):
        engine.pacer = PC.Pacer.from_values(new.values, engine.clock())   # new bursts and rates, full
    engine._limits_known = bool(new["batch.max_time_limit"])    # a new policy: partition limits asked again
    if "batch.arrays" in changed:
        engine._max_array = None                                # arrays turned on or off from now on
    totals = engine.outputs.totals                              # the metrics' counters keep counting
    engine.outputs = Outputs(new, engine.say)
    engine.outputs.totals = totals
    later = [k for k in changed if (k in RESTART_KEYS or k.startswith("staging.")) and k not in paced]
    engine.say(f"{P.CONFIG_NAME} reloaded: {', '.join(changed)} changed"
               + (f"; {', '.join(later)} apply(s) when the daemon restarts" if later else ""))
