"""Issue 16.4: for a job that has ended, the task view and `show` say what was last known and
when, not "batch says running" or "runs with" as if it were now."""

import time

from click.testing import CliRunner

from batchman.cli.commands import main
from tuihelp import change, screen


def finish_1004(filled):
    change(filled.store, r1004=dict(native_state="RUNNING", job_id="4713", job_name="bm.x.1004.analysis.1",
                                     used={"memory_mb": 0}, finished_at=time.time() - 60))


def test_task_view_of_a_finished_job_says_what_the_batch_last_said(filled, app_for):
    finish_1004(filled)
    app = app_for(filled)
    app.type("g1004<enter><enter>")
    app.wait_background()
    s = screen(app)
    assert "state completed" in s
    assert "batch says RUNNING" not in s
    assert "batch last said RUNNING (the job ended " in s


def test_task_view_of_a_running_job_still_says_what_the_batch_says(filled, app_for):
    change(filled.store, r1002=dict(native_state="RUNNING"))
    app = app_for(filled)
    app.type("g1002<enter><enter>")
    assert "batch says RUNNING" in screen(app)


def test_show_of_an_ended_attempt_says_ran_with_and_when(filled):
    finish_1004(filled)
    r = CliRunner().invoke(main, ["-C", filled.root, "show", "1004"])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if "(current)" in ln)
    assert "runs with" not in line and "ran with site defaults" in line and ", ended " in line
