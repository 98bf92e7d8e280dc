"""One attempt's job spec: its environment, its arguments, its script (written to disk) and
the resources it asks for; and the check that the job command can run at all."""

from __future__ import annotations

import dataclasses
import os
import shutil

from batchman.backends.base import JobSpec
from batchman.daemon import jobscript
from batchman.daemon.work import Work
from batchman.params import Params
from batchman.paths import Paths


def job_env(p: Params, paths: Paths, w: Work, base: dict, staged: list[str]) -> dict[str, str]:
    """What the job finds in its environment (``base``: the job definition's own env)."""
    return {**base,
            "BATCHMAN_EXPERIMENT": p.experiment, "BATCHMAN_RUN": str(w.run), "BATCHMAN_JOB": w.job,
            "BATCHMAN_TASK": w.key, "BATCHMAN_ATTEMPT": str(w.attempt), "BATCHMAN_FILES": " ".join(staged),
            "BATCHMAN_REPORT_SPOOL": paths.spool(w.job_name), "BATCHMAN_ATTEMPT_DIR": paths.attempt_dir(w.job_name),
            "BATCHMAN_STATS_FILE": paths.stats(w.run, w.job, w.attempt, w.seg),
            "BATCHMAN_BATCH_HOME": p.path("batch.batch_home"), "BATCHMAN_RUNTIME_DIR": p.path("batch.runtime_setup_dir"),
            "BATCHMAN_STATUS_FILE": p.status_path,
            "EXPERIMENT": p.experiment, "RUN_NUM": str(w.run), "ARP_JOB_ID": w.job_name,
            "BATCHMAN_INPUTS": " ".join(w.inputs),
            **({} if w.seg is None else {"BATCHMAN_SEGMENT": str(w.seg)}),
            }


def retry_resources(w: Work) -> dict:
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


def used_resources(spec: JobSpec) -> dict:
    """What the attempt asked for, as recorded with the task (Task.used)."""
    return {k: v for k, v in (("memory_mb", spec.memory_mb), ("time_limit", spec.time_limit),
                              ("cpus", spec.cpus), ("queue", spec.queue),
                              ("exclude", spec.exclude_nodes)) if v}


class JobSpecs:
    """Builds the job spec (and writes the script) of each attempt."""

    def __init__(self, params: Params, paths: Paths, staging):
        self.params = params
        self.jobs = params.jobs
        self.paths = paths
        self.staging = staging

    def spec(self, w: Work) -> JobSpec:
        p = self.params
        jd = self.jobs.get(w.job)
        if jd is None:
            raise ValueError(f"job {w.job!r} is not defined in batchman.yaml")
        adir = self.paths.attempt_dir(w.job_name)
        staged = [self.staging.cache_path(f) for f in w.files]
        if not jd.needs_staging:
            staged = list(w.inputs)     # an after: job without staging works on its upstream's outputs
        env = job_env(p, self.paths, w, jd.env, staged)
        values = {**jd.params, "run": w.run, "experiment": p.experiment, "files": staged, "inputs": list(w.inputs),
                  "batch_home": p.path("batch.batch_home"), "job": w.job, "attempt": w.attempt,
                  **({} if w.seg is None else {"segment": w.seg})}
        script = jobscript.render(command=self.command(w.job), args=jobscript.render_args(jd.args, values), env=env,
                                  attempt_dir=adir, workdir=p.path("batch.batch_home"),
                                  done_file=os.path.join(self.paths.done, w.job_name),
                                  title=f"run {w.run}, job {w.job}{'' if w.seg is None else f', segment {w.seg}'}, attempt {w.attempt} ({w.job_name})")
        path = self.paths.script(w.job_name)
        jobscript.write(path, script)
        for d in (p.path("batch.stats_dir"), p.path("daemon.log_dir")):
            os.makedirs(d, exist_ok=True)

        def pick(override, key):
            return override if override is not None else p[key]
        spec = JobSpec(name=w.job_name, script=path, workdir=p.path("batch.batch_home"),
                       stdout=self.paths.log(w.run, w.job, w.attempt, "out", w.seg),
                       stderr=self.paths.log(w.run, w.job, w.attempt, "err", w.seg), attempt_dir=adir, env=env,
                       time_limit=pick(jd.time_limit, "batch.time_limit") or None,
                       memory_mb=pick(jd.memory_mb, "batch.memory_mb") or None,
                       cpus=pick(jd.cpus, "batch.cpus"), queue=pick(jd.queue, "batch.queue") or None,
                       account=p["batch.account"] or None,
                       qos=p["batch.qos"] or None, reservation=p["batch.reservation"] or None,
                       extra_args=list(pick(jd.extra_args, "batch.extra_args")))
        return dataclasses.replace(spec, **retry_resources(w))

    def resources(self, job: str) -> dict:
        """What an attempt of ``job`` asks for before any retry override (grouping into arrays)."""
        p, jd = self.params, self.jobs.get(job)
        if jd is None:
            return {}

        def pick(override, key):
            return override if override is not None else p[key]
        return {"time_limit": pick(jd.time_limit, "batch.time_limit"), "memory_mb": pick(jd.memory_mb, "batch.memory_mb"),
                "cpus": pick(jd.cpus, "batch.cpus"), "queue": pick(jd.queue, "batch.queue"),
                "extra_args": list(pick(jd.extra_args, "batch.extra_args"))}

    def command(self, job: str | None = None) -> list[str]:
        jd = self.jobs.get(job) if job else None
        argv = jd.argv() if jd is not None else self.params.command_argv()
        first = argv[0]
        if "/" in first and not os.path.isabs(first):
            argv[0] = os.path.normpath(os.path.join(self.params.path("batch.batch_home"), first))
        return argv

    def command_problem(self, job: str | None = None) -> str | None:
        """Why the configured job command (of ``job``, or of any job) cannot run, or None."""
        if job is None and self.jobs.explicit:
            return next((pr for j in self.jobs.names() if (pr := self.command_problem(j))), None)
        first = self.command(job)[0]
        key = f"jobs.{job}.command" if self.jobs.explicit else "batch.command"
        if "/" in first:
            if not os.path.exists(first):
                return f"the job command {first} does not exist ({key} in batchman.yaml)"
            if not os.access(first, os.X_OK):
                return f"the job command {first} is not executable (chmod +x it, or put an interpreter first in {key})"
        elif shutil.which(first) is None:
            return f"the job command {first!r} is not found on PATH ({key} in batchman.yaml)"
        return None
