"""examples/ (issue #20): `batchman init --example NAME` copies one; bad input changes nothing;
every example passes `batchman check` once its fake data is made; the wheel ships them; the
laptop example runs from init to every run completed with its outputs."""

import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchman import examples as X
from batchman.core import states as S
from batchman.cli.commands import main as cli

from e2e_helpers import assert_per_file_done, daemon_run, env_with_batchman, example_experiment

REPO = Path(__file__).resolve().parents[1]
NAMES = ["alcap-production", "hallc-replay", "laptop", "lcls-arp", "per-file"]


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_the_examples_each_with_config_job_scripts_run_list_data_maker_and_a_short_readme():
    assert X.list_examples() == NAMES
    for name in NAMES:
        d = REPO / "examples" / name
        readme = (d / "README.md").read_text()
        assert f"batchman init --example {name}" in readme
        assert "make-fake-data" in readme and "For a real" in readme
        assert len(readme.splitlines()) <= 40, f"{name}: README longer than a screen"
        assert os.access(d / "make-fake-data", os.X_OK)
        assert (d / "runs.txt").is_file()
        assert X.describe(name)
    ok = run("init", "--list-examples")
    assert ok.exit_code == 0 and all(n in ok.output for n in NAMES)


def test_init_help_names_every_example():
    """`batchman init --help` named four examples after per-file was added: a physicist reading
    the help did not learn that one job per raw file has an example."""
    out = CliRunner().invoke(cli, ["init", "--help"]).output
    text = " ".join(out.split())
    for name in X.list_examples():
        assert name in text, f"{name} missing from init --help:\n{out}"


def test_list_examples_describes_each_in_a_whole_sentence():
    """per-file's README wraps its first sentence: --list-examples showed it cut after "only"."""
    out = CliRunner().invoke(cli, ["init", "--list-examples"]).output
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == X.list_examples()
    for line in lines:
        assert line.rstrip().endswith("."), line


def test_init_example_copies_and_a_second_time_refuses_and_changes_nothing(tmp_path):
    r = run("-C", str(tmp_path), "init", "--example", "laptop")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "batchman.yaml").read_text() == (REPO / "examples/laptop/batchman.yaml").read_text()
    assert os.access(tmp_path / "analyze", os.X_OK)
    (tmp_path / "batchman.yaml").write_text("mine\n")
    (tmp_path / "analyze").unlink()
    r = run("-C", str(tmp_path), "init", "--example", "laptop")
    assert r.exit_code == 1
    assert "batchman.yaml exists already" in r.output and "--force" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert (tmp_path / "batchman.yaml").read_text() == "mine\n"
    assert not (tmp_path / "analyze").exists()           # nothing copied, not even what was missing
    r = run("-C", str(tmp_path), "init", "--example", "laptop", "--force")
    assert r.exit_code == 0 and (tmp_path / "analyze").exists()
    assert (tmp_path / "batchman.yaml").read_text() != "mine\n"


def test_unknown_example_names_the_known_ones_and_creates_nothing(tmp_path):
    dest = tmp_path / "new"
    r = run("-C", str(dest), "init", "--example", "hallc")
    assert r.exit_code == 1
    assert "no example named 'hallc'" in r.output and all(n in r.output for n in NAMES)
    assert len(r.output.strip().splitlines()) == 1
    assert not dest.exists()


def test_an_example_file_already_there_refuses_without_writing_batchman_yaml(tmp_path):
    (tmp_path / "runs.txt").write_text("1\n")
    r = run("-C", str(tmp_path), "init", "--example", "alcap-production")
    assert r.exit_code == 1 and "runs.txt" in r.output and "nothing was copied" in r.output
    assert sorted(os.listdir(tmp_path)) == ["runs.txt"]


def test_print_shows_the_examples_yaml_without_writing(tmp_path):
    r = run("-C", str(tmp_path), "init", "--example", "lcls-arp", "--print")
    assert r.exit_code == 0 and "arp_submit.sh" in r.output
    assert os.listdir(tmp_path) == []


def test_generated_files_of_a_run_in_place_are_never_copied(tmp_path):
    src = X.examples_dir() / "laptop"
    made = [src / "status.json", src / "out" / "run1.txt"]
    try:
        (src / "out").mkdir(exist_ok=True)
        for p in made:
            p.write_text("x\n")
        assert not any(f.startswith(("status", "out")) for f in X.example_files("laptop"))
    finally:
        for p in made:
            p.unlink(missing_ok=True)
        if (src / "out").is_dir() and not os.listdir(src / "out"):
            (src / "out").rmdir()


@pytest.mark.parametrize("name", NAMES)
def test_every_example_passes_batchman_check_after_its_data_is_made(tmp_path, name):
    example_experiment(tmp_path, name)
    r = run("-C", str(tmp_path), "check")
    assert r.exit_code == 0, r.output
    assert "batchman.yaml is valid" in r.output


@pytest.mark.slow
def test_the_wheel_ships_every_example_with_jobwrap_as_a_file(tmp_path):
    cp = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
                        capture_output=True, text=True, timeout=240)
    assert cp.returncode == 0, cp.stderr[-2000:]
    [whl] = tmp_path.glob("batchman-*.whl")
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        for name in NAMES:
            for f in X.example_files(name):
                assert f"batchman/_examples/{name}/{f}" in names, f
        wrap = z.read("batchman/_examples/hallc-replay/batchman-jobwrap")
        assert wrap == (REPO / "contrib/jobwrap/batchman-jobwrap").read_bytes()
        mode = z.getinfo("batchman/_examples/laptop/analyze").external_attr >> 16
        assert mode & stat.S_IXUSR
        assert not [n for n in names if "/_examples/" in n and ("status.json" in n or "__pycache__" in n)]


def run_example(tmp_path, name):
    """Init the example, make its data, add its runs, run a daemon to the end: the tasks."""
    e = example_experiment(tmp_path, name)
    r = run("-C", str(tmp_path), "add", "--file", str(tmp_path / "runs.txt"))
    assert r.exit_code == 0, r.output
    d = daemon_run(tmp_path, "--delay", "0.2", env=env_with_batchman(os.environ), timeout=120)
    assert d.returncode == 0, d.stdout + d.stderr
    return e.store.read().tasks


@pytest.mark.slow
def test_laptop_from_init_to_every_run_completed_with_its_outputs(tmp_path):
    tasks = run_example(tmp_path, "laptop")
    assert sorted(t.run for t in tasks) == [1001, 1002, 1003, 1004]
    assert {t.state for t in tasks} == {S.COMPLETED}, [(t.run, t.state, t.reason) for t in tasks]
    for t in tasks:
        out = tmp_path / "out" / f"run{t.run}.txt"
        assert out.read_text().startswith(f"run {t.run}: {t.run % 3 + 1} segments")
        assert t.analysed == t.run % 3 + 1 and t.counters.get("events") == 100 * (t.run % 3 + 1)
    assert list((tmp_path / "cache").glob("run_*")) == []      # every run's copies released


def test_readme_a_real_experiment_starts_from_an_example():
    text = (REPO / "README.md").read_text()
    section = text[text.index("## A real experiment"):text.index("### Commands")]
    first_command = next(ln for ln in section.split("```")[1].splitlines() if ln.startswith("batchman"))
    assert first_command.startswith("batchman init --example ")
    assert all(f"`{n}`" in section for n in NAMES)


@pytest.mark.slow
def test_per_file_one_task_per_file_then_one_merge_per_run(tmp_path):
    tasks = run_example(tmp_path, "per-file")
    assert_per_file_done(tasks, tmp_path)
    readme = (REPO / "examples/per-file/README.md").read_text()
    for key in sorted(set(re.findall(r"batchman (?:show|kill|restart|skip) (\d+\.\w+\.\d+)", readme))):
        assert key in {t.key for t in tasks}, f"the README names {key}, which the example does not make"
