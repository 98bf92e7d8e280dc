"""Every state change goes through core.transition.change_state, which asks the transition
table: an illegal one is refused (and nothing changes) wherever it is attempted -- in the
function itself, in a decision's apply, in the daemon's recording of a submission, in a
person's adopt."""

import pytest

from batchman import actions
from batchman.backends.base import Submitted
from batchman.core import decide as D
from batchman.core import states as S
from batchman.core.model import Intent, Status, Task, UnknownJob
from batchman.core.transition import IllegalTransition, Transition, change_state, created
from batchman.daemon import record as R
from batchman.daemon.work import IterationReport, Work

NOW = 5000.0


def test_an_allowed_change_moves_the_task_and_returns_the_journal_record():
    t = Task(run=1, state=S.QUEUED, since=1.0)
    tr = change_state(t, S.RUNNING, "seen running", NOW, "me")
    assert tr == Transition(t.key, S.QUEUED, S.RUNNING, "seen running", "me", NOW)
    assert (t.state, t.since, t.reason) == (S.RUNNING, NOW, "seen running")
    assert change_state(t, S.RUNNING, "again", NOW + 1, "me") is None and t.since == NOW


def test_a_journal_record_cannot_be_changed():
    tr = change_state(Task(run=1, state=S.QUEUED), S.RUNNING, "seen running", NOW, "me")
    with pytest.raises(AttributeError):
        tr.new = S.FAILED
    assert (tr.key, tr.old, tr.new, tr.why, tr.by, tr.at) == ("1.analysis", S.QUEUED, S.RUNNING, "seen running", "me", NOW)


@pytest.mark.parametrize("old, new", [(S.COMPLETED, S.RUNNING), (S.NEW, S.QUEUED), (S.ABORTING, S.SUBMITTED),
                                      (S.SKIPPED, S.FAILED)])
def test_change_state_refuses_edges_missing_from_the_table(old, new):
    t = Task(run=1, state=old, since=1.0, reason="before")
    with pytest.raises(IllegalTransition, match=f"{old} -> {new}"):
        change_state(t, new, "why", NOW, "me")
    assert (t.state, t.since, t.reason) == (old, 1.0, "before")


def test_a_task_is_created_only_new():
    assert created(Task(run=1), "added", NOW, "me").old == ""
    with pytest.raises(IllegalTransition):
        created(Task(run=1, state=S.RUNNING), "added", NOW, "me")


def test_apply_refuses_and_leaves_the_task_untouched():
    t = Task(run=1, state=S.COMPLETED, since=1.0, job_name="bm.x.1.analysis.1", attempt=1)
    with pytest.raises(IllegalTransition):
        D.apply(t, D.Decision(S.RUNNING, "no", [D.SUBMIT], {"job_id": "9"}), NOW, "me", "x", None)
    assert (t.state, t.job_id, t.intent) == (S.COMPLETED, "", None)


class Journal:
    def __init__(self):
        self.lines = []

    def record(self, *a):
        self.lines.append(a)

    def purged(self, n):
        pass


def test_the_daemon_refuses_to_record_a_submission_into_a_state_that_forbids_it():
    """A task whose submission is confirmed must be SUBMITTING (or staged...): from ABORTING the
    table has no edge to submitted, so recording it raises instead of writing it."""
    t = Task(run=1, state=S.ABORTING, since=1.0, job_name="bm.x.1.analysis.1", attempt=1,
             intent=Intent(actions=[D.SUBMIT], owner="me", at=1.0))
    st = Status(store_id="x", tasks=[t])
    j = Journal()
    with pytest.raises(IllegalTransition):
        R.record_results(j, st, [Work.of(t, [D.SUBMIT])], {t.key: {D.SUBMIT: Submitted("77")}}, {}, NOW, "me",
                         IterationReport())
    assert t.state == S.ABORTING and j.lines == []


def test_the_daemon_records_a_confirmed_submission_through_the_journal():
    t = Task(run=1, state=S.SUBMITTING, since=1.0, job_name="bm.x.1.analysis.1", attempt=1,
             intent=Intent(actions=[D.SUBMIT], owner="me", at=1.0))
    st = Status(store_id="x", tasks=[t])
    j, rep = Journal(), IterationReport()
    R.record_results(j, st, [Work.of(t, [D.SUBMIT])], {t.key: {D.SUBMIT: Submitted("77")}}, {}, NOW, "me", rep)
    assert (t.state, t.job_id, t.intent) == (S.SUBMITTED, "77", None)
    assert j.lines == [(t.key, S.SUBMITTING, S.SUBMITTED, "submitted as job 77", "me", NOW)]
    assert rep.transitions == ["1 analysis: submitting -> submitted (submitted as job 77)"]


def test_adopt_asks_the_table(tmp_path, monkeypatch):
    """adopt moves a failed task to submitted; with that edge taken out of the table it is
    refused and the status file keeps the task as it was."""
    from e2e_helpers import make_experiment
    e = make_experiment(tmp_path, [7], segments=1)
    with e.store.transaction("test") as st:
        t = st.tasks[0]
        t.state, t.attempt, t.job_name = S.FAILED, 1, f"bm.{st.store_id}.7.analysis.1"
        name = f"bm.{st.store_id}.7.analysis.2"
        st.unknown = [UnknownJob(name=name, job_id="99", state="running", seen=NOW)]
    monkeypatch.setitem(S.TRANSITIONS, S.FAILED, S.TRANSITIONS[S.FAILED] - {S.SUBMITTED})
    with pytest.raises(IllegalTransition):
        actions.adopt(e.store, [name])
    t = e.store.read().tasks[0]
    assert (t.state, t.job_id) == (S.FAILED, "")
    monkeypatch.undo()
    assert actions.adopt(e.store, [name]).adopted == [name]
    t = e.store.read().tasks[0]
    assert (t.state, t.job_id) == (S.SUBMITTED, "99")
    assert [(h["from"], h["to"]) for h in e.store.history({t.key})][-1] == (S.FAILED, S.SUBMITTED)
