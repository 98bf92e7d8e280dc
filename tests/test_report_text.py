"""Counters from inside a job (ARP's Report) and how what a job wrote is shown (issue 15, 4 and 5)."""

import json

import pytest

from batchman import report
from batchman.core.text import visible


def test_arp_counter_example_is_accepted(tmp_path):
    spool = str(tmp_path / "spool")
    report.report(spool, ["Counter=3", "Current time=04:00:01"])
    assert report.read(spool) == {"Counter": 3, "Current time": "04:00:01"}


def test_a_bad_pair_is_named_and_the_good_ones_kept(tmp_path):
    spool = str(tmp_path / "spool")
    with pytest.raises(report.ReportError) as e:
        report.report(spool, ["Counter=3", "no-equals-sign", "=5", "bad\x1bkey=1"])
    msg = str(e.value)
    assert "'no-equals-sign' is not KEY=VALUE" in msg and "kept 'Counter'" in msg
    assert "''" in msg and "control characters" in msg
    assert report.read(spool) == {"Counter": 3}


def test_a_long_value_is_cut_and_marked(tmp_path):
    spool = str(tmp_path / "spool")
    report.report(spool, ["big=" + "x" * 200_000])
    v = report.read(spool)["big"]
    assert len(v) == report.VALUE_MAX and v.endswith(report.CUT_MARK)


def test_a_task_keeps_at_most_the_cap_of_counters(tmp_path):
    spool = str(tmp_path / "spool")
    report.report(spool, [f"c{i}=1" for i in range(report.COUNTERS_MAX)])
    with pytest.raises(report.ReportError, match="at most"):
        report.report(spool, ["one more=1", "c0=2"])
    got = report.read(spool)
    assert len(got) == report.COUNTERS_MAX and got["c0"] == 2 and "one more" not in got


def test_lines_written_straight_to_the_spool_follow_the_same_rules(tmp_path):
    spool = tmp_path / "spool"
    lines = [{"c": {"ok": 1, "bad\nkey": 2, "": 3, "x" * 100: 4, "huge": "y" * 10_000}},
             {"c": {f"k{i}": i for i in range(100)}}, {"c": "not a dict"}, "garbage"]
    spool.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n")
    got = report.read(str(spool))
    assert got["ok"] == 1 and "bad\nkey" not in got and "" not in got and "x" * 100 not in got
    assert got["huge"].endswith(report.CUT_MARK) and len(got) == report.COUNTERS_MAX


@pytest.mark.parametrize("raw, shown", [
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("a\nb", "a\\nb"),
    ("red \x1b[31m", "red \\x1b[31m"),
    ("\u202eevil", "\\u202eevil"),
    ("\x9b2J", "\\x9b2J"),
    ("plain ünïcödé text", "plain ünïcödé text"),
    (42, "42"),
])
def test_visible_shows_control_characters_instead_of_obeying_them(raw, shown):
    assert visible(raw) == shown


def test_visible_can_keep_lines_for_log_tails():
    assert visible("line 1\n\tline 2\x1b[2J", keep_lines=True) == "line 1\n\tline 2\\x1b[2J"


def test_batchman_report_takes_arps_counters_and_names_a_bad_pair(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from batchman.cli.commands import main
    spool = tmp_path / "spool"
    monkeypatch.setenv(report.ENV, str(spool))
    r = CliRunner().invoke(main, ["report", "Counter=3", "Current time=04:00:01"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["report", "Counter=4", "oops"])
    assert r.exit_code == 1 and "'oops' is not KEY=VALUE" in r.output and "kept 'Counter'" in r.output
    assert report.read(str(spool)) == {"Counter": 4, "Current time": "04:00:01"}


def test_list_and_show_print_what_a_job_wrote_with_escapes(tmp_path):
    """Issue 15.5: `ESC]0;title BEL` in a counter passed to the terminal even through a pipe."""
    from click.testing import CliRunner

    from batchman.cli.commands import main
    from e2e_helpers import make_experiment
    e = make_experiment(tmp_path, [5], segments=1)
    with e.store.transaction("test") as st:
        t = st.tasks[0]
        t.state, t.attempt, t.exit_code = "failed", 1, 1
        t.error = "exit 1\x1b[31m red\nnext"
        t.counters = {"title": "\x1b]0;pwned\x07", "multi": "a\nb"}
    out = CliRunner().invoke(main, ["-C", str(tmp_path), "list"]).output
    assert "\x1b" not in out and "\x07" not in out
    assert "title=\\x1b]0;pwned\\x07" in out and "multi=a\\nb" in out
    assert len([ln for ln in out.splitlines() if ln.lstrip().startswith("5 ")]) == 1
    out = CliRunner().invoke(main, ["-C", str(tmp_path), "show", "5"]).output
    assert "\x1b" not in out and "error: exit 1\\x1b[31m red\\nnext" in out
