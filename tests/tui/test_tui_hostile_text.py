"""Issue 15.5 in the TUI: what a job wrote (counters, errors, log lines) is shown with its control
characters made visible, in the list, the task view and the log view."""

from batchman import actions as A
from tuihelp import change, screen

TITLE = "\x1b]0;pwned\x07"


def test_list_and_task_view_show_escapes_not_control_characters(exp, app_for):
    A.add_runs(exp.store, [1000])
    change(exp.store, r1000=dict(state="failed", attempt=1, exit_code=1, reason="job failed",
                                 error="boom\x1b[2J\nsecond line", counters={"evil": TITLE, "multi": "a\nb"}))
    app = app_for(exp)
    s = screen(app)
    assert "\x1b" not in s and "\x07" not in s
    assert "\\x1b[2J" in s and "evil=\\x1b]0;pwned\\x07" in s
    rows = [ln for ln in s.splitlines() if "1000 analysis" in ln]
    assert len(rows) == 1 and "multi=a\\nb]" in rows[0]      # one row: the newline is shown, not obeyed
    app.type("<enter>")
    s = screen(app)
    assert "\x1b" not in s and "error: boom\\x1b[2J\\nsecond line" in s
    assert "evil=\\x1b]0;pwned\\x07" in s
