"""The batchman command as a user types it (click's CliRunner in a fresh directory)."""

import json
import os
import random

from batchman import report
from batchman.cli.commands import main
from batchman.experiment import open_experiment


from clihelp import run  # noqa: E402 - with the exp_dir fixture of conftest.py


def test_init_writes_commented_yaml_and_refuses_to_overwrite(exp_dir):
    text = (exp_dir / "batchman.yaml").read_text()
    assert "# The longest sleep between daemon iterations" in text and "limit: 100" in text
    r = run("init")
    assert r.exit_code == 1 and "exists already" in r.output


def test_commands_outside_an_experiment_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("list")
    assert r.exit_code == 1 and "batchman init" in r.output and "Traceback" not in r.output


def test_add_list_json(exp_dir):
    r = run("add", "1000-1002,1010", "2000")
    assert r.exit_code == 0 and "added 5 task(s): 1000-1002,1010,2000" in r.output
    r = run("add", "1001")
    assert "skipped 1 already in the list: 1001 (new)" in r.output
    data = json.loads(run("list", "--json").output)
    assert [t["run"] for t in data["tasks"]] == [1000, 1001, 1002, 1010, 2000]
    assert set(data["tasks"][0]) >= {"run", "job", "state", "segments", "job_id", "attempt", "counters", "in_state_s"}
    assert json.loads(run("list", "1000-1005", "--json").output)["tasks"][-1]["run"] == 1002
    table = run("list").output
    assert "5 new" in table and "1010" in table


def test_add_from_file_and_stdin(exp_dir):
    (exp_dir / "runs.txt").write_text("# good runs\n10-12\n15 # short run\n")
    assert "added 4" in run("add", "--file", "runs.txt").output
    assert "added 2" in run("add", "--file", "-", input="20\n21\n").output


def test_malformed_run_list_changes_nothing(exp_dir):
    run("add", "1")
    before = (exp_dir / "status.json").read_bytes()
    (exp_dir / "bad.txt").write_text("5\n6-x\n")
    r = run("add", "--file", "bad.txt")
    assert r.exit_code == 1 and "bad.txt:2" in r.output and "'6-x'" in r.output
    assert (exp_dir / "status.json").read_bytes() == before


def test_unknown_parameter_is_named_and_nothing_runs(exp_dir):
    with open(exp_dir / "batchman.yaml", "a") as f:
        f.write("\nextra:\n  x: 1\n")
    r = run("add", "1")
    assert r.exit_code == 1 and "unknown section 'extra'" in r.output
    assert not (exp_dir / "status.json").exists()


def test_kill_restart_purge_queue_requests_and_ask_for_many(exp_dir):
    run("add", "1-3")
    assert run("kill", "2").exit_code == 0
    e = open_experiment(str(exp_dir))
    assert {t.run: t.request for t in e.store.read().tasks} == {1: "", 2: "kill", 3: ""}
    r = run("restart", "1-3")         # not a terminal: must confirm
    assert r.exit_code == 1 and "add --yes" in r.output
    assert run("restart", "1-3", "--yes").exit_code == 0
    assert all(t.request == "restart" for t in open_experiment(str(exp_dir)).store.read().tasks)
    r = run("purge", "--state", "completed", "--yes")
    assert r.exit_code == 1 and "no task to purge matches" in r.output
    r = run("kill")
    assert r.exit_code == 2


def test_show_unknown_run(exp_dir):
    r = run("show", "5")
    assert r.exit_code == 1 and "run 5 is not in the list" in r.output


def test_report_outside_a_job_is_refused(exp_dir, monkeypatch):
    monkeypatch.delenv(report.ENV, raising=False)
    r = run("report", "events=3")
    assert r.exit_code == 1 and "inside a batchman job" in r.output


def test_report_inside_a_job_appends_counters(tmp_path, monkeypatch):
    spool = tmp_path / "spool"
    monkeypatch.setenv(report.ENV, str(spool))
    assert run("report", "events=3", "status=ok").exit_code == 0
    assert run("report", "events=7", "rate=1.5").exit_code == 0
    assert report.read(str(spool)) == {"events": 7, "status": "ok", "rate": 1.5}
    r = run("report", "events")
    assert r.exit_code == 1 and "is not KEY=VALUE" in r.output


def test_export_html(exp_dir):
    run("add", "7")
    r = run("export-html", "-o", "page.html")
    page = (exp_dir / "page.html").read_text()
    assert r.exit_code == 0 and "<td>7</td>" in page and "<noscript><meta http-equiv='refresh'" in page
    assert page.count("<script") == 1          # only the page's own (issue 17); nothing loaded from elsewhere


def test_priority(exp_dir):
    run("add", "1-2")
    assert run("priority", "2", "5").exit_code == 0
    assert {t.run: t.priority for t in open_experiment(str(exp_dir)).store.read().tasks} == {1: 0, 2: 5}


def test_check_reports_missing_command_and_dirs(exp_dir):
    r = run("check")
    assert r.exit_code == 1
    assert "staging.stub_dir" in r.output and "batch.command" in r.output and "does not exist" in r.output
    os.makedirs(exp_dir / "raw")
    (exp_dir / "analyze").write_text("#!/bin/sh\n")
    (exp_dir / "analyze").chmod(0o755)
    r = run("check")
    assert r.exit_code == 0, r.output


def test_every_command_has_help():
    for name, cmd in main.commands.items():
        r = run(name, "--help")
        assert r.exit_code == 0 and len(cmd.help or "") > 20, name


def test_an_unusable_file_is_a_message_not_a_traceback(exp_dir):
    r = run("add", "--file", "no-such-list.txt")
    assert r.exit_code == 1 and "no-such-list.txt" in r.output and "Traceback" not in r.output
    r = run("export-html", "-o", "/proc/no/such/dir/page.html")
    assert r.exit_code == 1 and "Traceback" not in r.output and "/proc/no" in r.output


def test_state_takes_several_states_separated_by_commas_and_names_a_wrong_one(exp_dir):
    run("add", "1-4")
    with open_experiment(str(exp_dir)).store.transaction("t") as st:
        for t, state in zip(st.tasks, ["failed", "incomplete", "completed", "new"]):
            t.state = state
    listed = lambda *a: [t["run"] for t in json.loads(run("list", "--json", *a).output)["tasks"]]   # noqa: E731
    assert listed("--state", "failed,incomplete") == [1, 2] == listed("--state", "failed", "--state", "incomplete")
    assert listed("--state", "completed, failed", "--state", "failed") == [1, 3]
    before = (exp_dir / "status.json").read_bytes()
    r = run("purge", "--state", "completed,finished", "--yes")
    assert r.exit_code == 2 and "'finished' is not a state" in r.output and "completed, incomplete" in r.output
    assert (exp_dir / "status.json").read_bytes() == before


def test_a_request_for_thousands_of_scattered_runs_names_a_few_ranges_and_counts_the_rest(exp_dir):
    """The refusal without --yes once printed every range: 150 KB for a campaign's 50,000 failed runs."""
    run("add", ",".join(str(1000 + 3 * i) for i in range(3000)))
    e = open_experiment(str(exp_dir))
    before = (exp_dir / "status.json").read_bytes()
    r = run("restart", "1000-10000")
    assert r.exit_code == 1 and len(r.output) < 300, r.output
    assert "this would restart 3000 tasks (1000,1003,1006,1009,1012,1015 and 2,994 more ranges)" in r.output
    assert (exp_dir / "status.json").read_bytes() == before and not any(t.request for t in e.store.read().tasks)


def test_brief_is_compress_up_to_a_few_ranges_then_counts():
    from batchman.core import runspec
    rng = random.Random(7)
    for _ in range(300):
        runs = sorted(rng.sample(range(1, 200), rng.randint(0, 60)))
        full, short = runspec.compress(runs), runspec.brief(runs, most=4)
        parts = full.split(",") if full else []
        if len(parts) <= 5:
            assert short == full
        else:
            assert short == ",".join(parts[:4]) + f" and {len(parts) - 4:,} more ranges"


def test_hold_and_release_count_the_tasks_they_change_and_name_the_others(exp_dir):
    run("add", "1-5")
    assert "held 3 task(s); `batchman release`" in run("hold", "1-3").output
    assert "held 1 task(s) (2 held already); `batchman release`" in run("hold", "2-4").output
    assert "released 4 task(s) (1 not held)" in run("release", "1-5").output
    assert not any(t.held for t in open_experiment(str(exp_dir)).store.read().tasks)


def test_list_says_of_no_daemon_what_the_tui_and_the_page_say(exp_dir):
    """`batchman list` said '[no daemon recorded]' at the end of every production and with every
    pending run held, where the TUI and the page say which; now so does the list of every task
    (a list of some runs reads only those: it says no more than before)."""
    run("add", "1-3")
    assert "[no daemon running, 3 task(s) pending: start one with `batchman-daemon`]" in run("list").output
    run("hold", "1-3")
    assert "[no daemon running; 3 task(s) held: `batchman release` lets them go on]" in run("list").output
    with open_experiment(str(exp_dir)).store.transaction("test") as st:
        for t in st.tasks:
            t.state = "completed"
    assert run("list").output.startswith("3 task(s): 3 completed   [no daemon running (production finished)]")
    assert "[no daemon running]" in run("list", "1").output       # (of some runs: no more)
