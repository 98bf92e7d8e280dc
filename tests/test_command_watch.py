"""Issue 16: the jobs whose command cannot run, as the iteration hands them to decide (only jobs
with waiting tasks, and those already said), each said once when it goes and when it is back."""

from batchman.core import states as S
from batchman.core.model import Task
from batchman.daemon.command_watch import CommandWatch


class Engine:
    def __init__(self, missing):
        self.missing, self.said = set(missing), []

    def command_problem(self, job):
        return f"{job} is missing" if job in self.missing else None

    def say(self, text):
        self.said.append(text)


def test_only_jobs_with_waiting_tasks_are_handed_on_and_each_change_is_said_once():
    eng, w = Engine({"a", "b"}), CommandWatch()
    tasks = [Task(run=1, job="a", state=S.UNSTAGED), Task(run=2, job="a", state=S.NEW),
             Task(run=3, job="b", state=S.RUNNING), Task(run=4, job="c", state=S.STAGED)]
    assert w.check(eng, tasks) == {"a": "a is missing"}
    assert eng.said == ["problem: job 'a': a is missing; no data is staged for its 2 waiting run(s) "
                        "until it is fixed (said once)"]
    assert w.check(eng, tasks) == {"a": "a is missing"} and len(eng.said) == 1
    tasks[0].state = tasks[1].state = S.RUNNING        # no waiting task left: still known, not said again
    assert w.check(eng, tasks) == {"a": "a is missing"} and len(eng.said) == 1
    eng.missing = {"b"}
    assert w.check(eng, tasks) == {} and eng.said[-1] == "job 'a': its command can run again: staging resumes"
    tasks[2].state = S.STAGED
    assert w.check(eng, tasks) == {"b": "b is missing"}


def test_no_task_no_problem():
    assert CommandWatch().check(Engine({"a"}), []) == {}
