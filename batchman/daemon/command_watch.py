"""Job commands that cannot run, looked at once per iteration (issue 16).

A run whose job command is missing would be staged from tape and then refused at
submission. The engine gives ``decide`` the jobs whose command cannot run now
(``Observations.unsubmittable_jobs``), and ``decide`` requests no staging for their runs.
It is said once when a command goes missing and once when it is back, not every iteration.
"""

from __future__ import annotations

from operator import attrgetter

from batchman.core import states as S

WAITING = (S.NEW, S.UNSTAGED, S.STAGED)     # states whose next step may be a staging request
_job = attrgetter("job")


class CommandWatch:
    def __init__(self) -> None:
        self.known: dict[str, str] = {}     # job -> why its command cannot run, as last said

    def check(self, engine, tasks, jobs: set[str] | None = None) -> dict[str, str]:
        """{job: problem} for the jobs of waiting tasks whose command cannot run now. Every job
        of the tasks (a few; ``jobs``, when the caller keeps them: daemon/kept.Census) is looked
        at, the waiting tasks only when one has a problem: a pass over every live task that
        picks the waiting ones costs 70 ms at 1,000,000 tasks."""
        jobs = set(map(_job, tasks)) if jobs is None else jobs
        problems = {job: p for job in sorted(jobs | set(self.known))
                    if (p := engine.command_problem(job))}
        waiting = {t.job for t in tasks if t.state in WAITING and t.job in problems} if problems else set()
        now = {job: p for job, p in problems.items() if job in waiting or job in self.known}
        for job, problem in now.items():
            if self.known.get(job) != problem:
                n = sum(t.job == job and t.state in WAITING for t in tasks)
                engine.say(f"problem: job {job!r}: {problem}; no data is staged for its {n} waiting run(s) "
                           f"until it is fixed (said once)")
        for job in sorted(set(self.known) - set(now)):
            engine.say(f"job {job!r}: its command can run again: staging resumes")
        self.known = now
        return dict(now)
