"""Where the files of one attempt live: one place for the daemon, the CLI and the TUI."""

from __future__ import annotations

import os
import socket
import time

from batchman.core.model import task_key
from batchman.params import Params


class Paths:
    """Where the files of one attempt live (one place for the daemon, CLI and TUI)."""

    def __init__(self, params: Params):
        self.p = params
        self.temp = params.path("daemon.temp_dir")
        self.attempts = os.path.join(self.temp, "attempts")
        self.done = os.path.join(self.temp, "done")          # one empty file per ended job (daemon/watch.py)
        self.arrays = os.path.join(self.temp, "arrays")      # one directory per job array (daemon/arrayjob.py)

    def attempt_dir(self, job_name: str) -> str:
        return f"{self.attempts}/{job_name}"

    def script(self, job_name: str) -> str:
        return os.path.join(self.attempt_dir(job_name), "job.sh")

    def spool(self, job_name: str) -> str:
        return f"{self.attempts}/{job_name}/report.jsonl"

    def log(self, task_run: int, job: str, attempt: int, ext: str = "out", seg: int | None = None) -> str:
        return os.path.join(self.p.path("daemon.log_dir"), f"{task_key(task_run, job, seg)}.{attempt}.{ext}")

    def stats(self, task_run: int, job: str, attempt: int, seg: int | None = None) -> str:
        return os.path.join(self.p.path("batch.stats_dir"), f"{task_key(task_run, job, seg)}.{attempt}.stats")


def daemon_log_path(log_dir: str, now: float | None) -> str:
    """Where a daemon writes its output when no terminal takes it (one started from the TUI, one
    whose terminal closed): with the experiment's job logs, ``<log_dir>/daemon-<host>-<YYYYmmdd-HHMMSS>.log``
    (this host's short name); ``now`` None: the name with ``<time>``, to say where it will go."""
    stamp = "<time>" if now is None else time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return os.path.join(log_dir, f"daemon-{socket.gethostname().split('.')[0]}-{stamp}.log")
