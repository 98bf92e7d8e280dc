"""A job killed by a signal (scancel, the time limit) leaves exit 128+N in its marker before the
batch system has said why. Judged on the marker alone it was "exit-nonzero" (exit 143) and
retried as the analysis' own failure; the batch system's word (cancelled, timeout) decides."""

import pytest

from batchman.core import states as S
from batchman.core.decide import Marker
from batchman.backends.base import ABSENT, FINISHED, QUEUED, RUNNING, JobInfo

from test_decide import NOW, decide, obs, task


def signalled(t, code=143):
    return {t.job_name: Marker(started=NOW - 30, exit_code=code)}


@pytest.mark.parametrize("code", [143, 137, 152])
def test_a_signal_exit_waits_while_the_batch_system_still_lists_the_job(code):
    t = task(S.RUNNING, job_id="42")
    info = JobInfo(t.job_name, "42", RUNNING, native_state="COMPLETING")
    assert decide(t, obs(markers=signalled(t, code), jobs={t.job_name: info})) is None


def test_a_signalled_job_the_batch_system_queued_again_is_queued_not_failed():
    t = task(S.RUNNING, job_id="42")      # e.g. preempted and requeued: SLURM lists it PENDING again
    info = JobInfo(t.job_name, "42", QUEUED, native_state="PENDING", reason="BeginTime")
    assert decide(t, obs(markers=signalled(t), jobs={t.job_name: info})).state == S.QUEUED


@pytest.mark.parametrize("failure, cls", [("cancelled", "cancelled-by-user"), ("timeout", "timeout")])
def test_the_batch_systems_word_classifies_a_signalled_job(failure, cls):
    t = task(S.RUNNING, job_id="42")
    info = JobInfo(t.job_name, "42", FINISHED, native_state=failure.upper(), exit_code=None, failure=failure)
    d = decide(t, obs(markers=signalled(t), jobs={t.job_name: info}))
    assert d.state == S.FAILED and d.updates["failure"] == failure and d.updates["failure_class"] == cls


def test_a_signal_exit_the_batch_system_no_longer_knows_is_judged_on_the_marker():
    t = task(S.RUNNING, job_id="42")
    d = decide(t, obs(markers=signalled(t), jobs={t.job_name: JobInfo(t.job_name, "42", ABSENT)}))
    assert d.state == S.FAILED and d.updates["exit_code"] == 143


def test_a_signal_exit_is_judged_on_the_marker_when_the_batch_system_cannot_be_asked():
    t = task(S.RUNNING, job_id="42")
    d = decide(t, obs(markers=signalled(t), jobs=None))
    assert d.state == S.FAILED and d.updates["exit_code"] == 143


@pytest.mark.parametrize("code", [0, 1, 2, 127, 128])
def test_an_ordinary_exit_does_not_wait_for_the_batch_system(code):
    t = task(S.RUNNING, job_id="42")
    info = JobInfo(t.job_name, "42", RUNNING, native_state="COMPLETING")
    d = decide(t, obs(markers=signalled(t, code), jobs={t.job_name: info}))
    assert d is not None and d.state in (S.COMPLETED, S.FAILED)
