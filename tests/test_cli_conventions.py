"""What a new user tripped over on the command line (issue 16), each as the user did it."""

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from batchman.cli.commands import main
from batchman.experiment import open_experiment


from clihelp import run  # noqa: E402 - with the exp_dir fixture of conftest.py


def requests_of(d):
    return {t.run: t.request for t in open_experiment(str(d)).store.read().tasks}


# ---- 16.6: runs that are not in the status file are named ---------------------------
def test_restart_of_a_run_not_in_the_list_names_it_and_restarts_the_others(exp_dir):
    run("add", "1000-1010")
    r = run("restart", "1007", "99999")
    assert r.exit_code == 0
    assert "not in the status file: 99999" in r.output
    assert requests_of(exp_dir)[1007] == "restart"


def test_kill_of_a_run_not_in_the_list_says_so_not_only_active(exp_dir):
    run("add", "1000-1010")
    r = run("kill", "99999")
    assert r.exit_code == 1
    assert "not in the status file: 99999" in r.output and "only active" not in r.output
    assert all(v == "" for v in requests_of(exp_dir).values())


def test_hold_and_priority_name_missing_runs_too(exp_dir):
    run("add", "1-3")
    assert "not in the status file: 7-9" in run("hold", "1", "7-9").output
    r = run("priority", "8", "5")
    assert r.exit_code == 1 and "not in the status file: 8" in r.output


# ---- 16.8: a closed pipe is not an error ----------------------------------------------
def test_list_into_head_ends_quietly(exp_dir):
    assert run("add", "1-6000").exit_code == 0          # far more than a pipe buffer holds
    p = subprocess.Popen([sys.executable, "-m", "batchman.cli", "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=exp_dir)
    first = p.stdout.readline()
    p.stdout.close()                                    # what `head -1` does
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert b"task(s)" in first
    assert "Broken pipe" not in err and "Traceback" not in err


# ---- conventions the README promises ------------------------------------------------
def test_dir_option_after_the_subcommand(exp_dir, tmp_path_factory, monkeypatch):
    run("add", "5")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    r = run("list", "-C", str(exp_dir), "--json")
    assert r.exit_code == 0, r.output
    assert [t["run"] for t in json.loads(r.output)["tasks"]] == [5]
    assert run("kill", "5", "-C", str(exp_dir)).exit_code == 0
    assert requests_of(exp_dir)[5] == "kill"


def test_check_json(exp_dir):
    r = run("check", "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1 and data["ok"] is False
    assert {p["key"] for p in data["problems"]} >= {"staging.stub_dir", "batch.command"}
    assert any("status file" in n for n in data["notes"])


@pytest.mark.parametrize("args", [["kill", "1-x"], ["restart", "5-1"], ["list", "abc"], ["priority", "x", "3"],
                                  ["add", "12-"], ["watch", "1,,x"]])
def test_bad_run_ranges_are_bad_usage(exp_dir, args):
    run("add", "1-3")
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "RUNS" in r.output


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.output.startswith("batchman ")


def test_help_summaries_are_not_cut():
    text = run("--help").output
    commands = text.split("Commands:")[1]
    assert "..." not in commands
    assert "Kill runs: cancel their job or staging" in commands


# ---- 16.7: the demo's options ---------------------------------------------------------
def test_demo_refuses_a_previous_demo_dir(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("batchman.demo.run_demo", lambda *a: calls.append(a) or 0)
    (tmp_path / "batchman.yaml").write_text("x: 1\n")
    r = run("demo", "--dir", str(tmp_path))
    assert r.exit_code == 2 and "is not empty" in r.output and calls == []
    assert run("demo", "--dir", str(tmp_path / "new")).exit_code == 0 and len(calls) == 1


@pytest.mark.parametrize("args", [["--runs", "3"], ["--runs", "0"], ["--speed", "0"], ["--speed", "-1"]])
def test_demo_bad_numbers_are_one_line(args, monkeypatch):
    monkeypatch.setattr("batchman.demo.run_demo", lambda *a: pytest.fail("the demo must not start"))
    r = run("demo", *args)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert [ln for ln in r.output.splitlines() if ln.startswith("Error:")] == [r.output.splitlines()[-1]]


# ---- no traceback for any option value of any command ----------------------------------
GOOD = {"runs": "1", "run": "1", "priority": "5", "names": "bm.x.1.analysis.1", "pairs": "events=1"}
REQUIRED_OPTIONS = {"skip": ["--reason", "bad run"], "run": ["--job", "analysis"]}
NUMBER = (click.types.IntParamType, click.types.FloatParamType)


def bad_values(param, a_file: str) -> list[tuple[str, bool]]:
    """(value, must be refused as bad usage) for a parameter: out of range, empty, wrong type."""
    t = param.type
    if isinstance(param, click.Option) and param.is_flag:
        return []
    out = []
    if isinstance(t, (click.IntRange, click.FloatRange)):
        out += [(str(t.min - 1), True)] if t.min is not None else []
        out += [(str(t.max + 1), True)] if t.max is not None else []
    if isinstance(t, NUMBER):
        out += [("abc", True), ("", True), ("1.5x", True)]
    elif isinstance(t, click.Choice):
        out += [("nonsense", True), ("", True)]
    elif isinstance(t, click.Path):
        out += [("\x00", True)] + ([(a_file, True)] if not t.file_okay else [])
    elif param.name == "runs":
        out += [("abc", True), ("", True), ("5-1", True), (",", True)]
    else:                                 # free text: any value may be fine, none may crash
        out += [("", param.name == "reason"), ("\x00", False), ("-", False)]
    return out


def invocation(name, cmd, param, value) -> list[str]:
    args = [name]
    for p in cmd.params:
        if isinstance(p, click.Argument):
            args.append(value if p is param else GOOD.get(p.name, "x"))
    args += REQUIRED_OPTIONS.get(name, []) if not (isinstance(param, click.Option) and
                                                  set(param.opts) & set(REQUIRED_OPTIONS.get(name, []))) else []
    if isinstance(param, click.Option):
        args += [param.opts[0], value]
    return args


def cases():
    for name, cmd in sorted(main.commands.items()):
        for param in cmd.params:
            if param.name == "help":
                continue
            yield pytest.param(name, param.name, id=f"{name}:{param.name}")


@pytest.mark.parametrize("name,pname", list(cases()))
def test_no_traceback_for_any_value(name, pname, exp_dir, monkeypatch):
    monkeypatch.setattr("batchman.demo.run_demo", lambda *a: 0)   # never a minute-long demo
    monkeypatch.delenv("BATCHMAN_SPOOL", raising=False)
    run("add", "1-3")
    (exp_dir / "a_file").write_text("x")
    cmd = main.commands[name]
    param = next(p for p in cmd.params if p.name == pname)
    for value, refused in bad_values(param, str(exp_dir / "a_file")):
        args = invocation(name, cmd, param, value)
        r = CliRunner().invoke(main, args, input="")
        where = f"batchman {' '.join(map(repr, args))}"
        assert r.exception is None or isinstance(r.exception, SystemExit), f"{where}: {r.exception!r}"
        assert "Traceback" not in r.output, where
        errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        if r.exit_code:
            assert len(errors) == 1 and r.output.rstrip().endswith(errors[0]), f"{where}: {r.output}"
        if refused:
            assert r.exit_code == 2, f"{where}: {r.exit_code} {r.output}"
            hint = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
            assert hint in errors[0], f"{where}: {errors[0]}"


@pytest.mark.parametrize("value", ["\x00", "a_file"])
def test_group_dir_option_bad_values_are_bad_usage(exp_dir, value):
    (exp_dir / "a_file").write_text("x")
    r = run("-C", value, "list")
    assert r.exit_code == 2, r.output
    assert r.output.rstrip().splitlines()[-1].startswith("Error:") and "-C" in r.output


def test_a_page_that_cannot_be_written_is_a_warning_not_the_commands_failure(exp_dir, monkeypatch):
    """Found on a nearly full disk: `batchman add 1007` said 'Error: No space left on device'
    and exit code 1, yet the run was added (the page, written after the status file, failed)."""
    import errno
    import os
    from batchman.store.store import Store

    def full(self, status):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with monkeypatch.context() as m:
        m.setattr(Store, "publish_html", full)
        r = CliRunner().invoke(main, ["add", "7"])
    assert r.exit_code == 0 and "added 1 task(s): 7" in r.stdout, r.output
    assert r.stderr == (f"warning: the status page was not written (No space left on device: cannot write in "
                        f"{exp_dir}; free space there); the change itself was\n")
    assert [t.run for t in open_experiment(str(exp_dir)).store.read().tasks] == [7]
    r = run("pause")                         # a write: its page, this time
    assert r.exit_code == 0 and (exp_dir / "status.html").exists()
