"""Issue 16.1: a typo in batchman.yaml never stops an operator, and a running daemon follows
the file: a broken edit keeps its old settings (said in the status file), a fixed one applies."""

import json
import os
import signal
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from batchman import params as P
from batchman.cli.commands import main
from batchman.core import states as S
from batchman.experiment import open_experiment
from batchman.params_fallback import load_for_reading

from e2e_helpers import daemon, env_for, make_experiment, wait_for, write_config


def cli(root, *args):
    """``batchman -C ROOT ARGS`` in this process (click's runner; a subprocess each cost ~0.5 s of
    start-up): exit code, stdout and stderr apart, as a person sees them."""
    r = CliRunner().invoke(main, ["-C", str(root), *args])
    return SimpleNamespace(returncode=r.exit_code, stdout=r.stdout, stderr=r.stderr)


def edit(root, old, new):
    path = os.path.join(str(root), P.CONFIG_NAME)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert old in text
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new, 1))


def test_reading_commands_use_the_last_good_parameters_and_starting_work_refuses(tmp_path):
    write_config(tmp_path, **{"daemon.status_file": "state/st.json", "daemon.delay": 7.0})
    os.makedirs(tmp_path / "state")
    assert cli(tmp_path, "add", "5").returncode == 0
    edit(tmp_path, "  delay: 7.0", "  dealy: 7.0")          # the 3 a.m. typo
    listed = cli(tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    warning = [ln for ln in listed.stderr.splitlines() if ln.strip()]
    assert len(warning) == 1 and warning[0].startswith("warning: batchman.yaml: unknown parameter 'daemon.dealy'")
    assert "last good parameters" in warning[0]
    assert "1 task(s)" in listed.stdout          # the status file named by the last good copy was read
    for args in (["show", "5"], ["pause"], ["resume"], ["hold", "5"], ["release", "5"], ["priority", "5", "3"],
                 ["export-html"], ["skip", "5", "--reason", "typo", "--yes"], ["kill", "--all", "--yes"]):
        r = cli(tmp_path, *args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        assert "daemon.dealy" in r.stderr, args
    for args in (["add", "6"], ["run", "5", "--job", "analysis"], ["check"]):
        r = cli(tmp_path, *args)
        assert r.returncode == 1 and "daemon.dealy" in r.stderr, (args, r.stderr)
    assert [t.run for t in open_experiment(tmp_path, strict=False).store.read().tasks] == [5]


def test_without_a_last_good_copy_the_defaults_and_the_readable_part_are_used(tmp_path):
    write_config(tmp_path, **{"daemon.experiment": "lumi", "batch.max_jobs": 9})
    os.remove(tmp_path / P.LAST_GOOD)
    edit(tmp_path, "  max_jobs: 9", "  max_jobs: nine")
    params, warning = load_for_reading(str(tmp_path))
    assert params.experiment == "lumi" and params["batch.max_jobs"] == P.defaults()["batch.max_jobs"]
    assert "batch.max_jobs: 'nine' is not a whole number" in warning and "defaults" in warning
    with pytest.raises(P.ParamError):
        open_experiment(tmp_path)                   # strict: the daemon, add and run refuse


def test_a_file_that_is_not_yaml_names_the_line_in_one_line(tmp_path):
    write_config(tmp_path)
    edit(tmp_path, "daemon:", "daemon: [")
    _, warning = load_for_reading(str(tmp_path))
    assert "\n" not in warning and "not valid YAML" in warning and "line" in warning


def _status(root):
    with open(os.path.join(str(root), "status.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.slow
def test_a_running_daemon_keeps_its_settings_under_a_broken_file_and_takes_the_fixed_one(tmp_path):
    e = make_experiment(tmp_path, [1, 2, 3], segments=1, **{"batch.max_jobs": 1, "batch.local_slots": 4,
                                                             "staging.local_delay": 0.05})
    d = daemon(tmp_path, "--forever", env=env_for(tmp_path, SLEEP=60))
    try:
        wait_for(lambda: sum(t.state in S.IN_BATCH for t in e.store.read().tasks) == 1)
        edit(tmp_path, "  delay: 0.2", "  dealy: 0.2")
        wait_for(lambda: "daemon.dealy" in _status(tmp_path).get("params_problem", ""))
        beat = max(d["heartbeat"] for d in _status(tmp_path)["daemons"])
        wait_for(lambda: max(d["heartbeat"] for d in _status(tmp_path)["daemons"]) > beat)   # it carries on
        listed = cli(tmp_path, "list")
        assert listed.returncode == 0 and "batchman.yaml does not validate since" in listed.stdout
        assert "the daemon keeps its previous parameters" in listed.stdout
        assert sum(t.state in S.IN_BATCH for t in e.store.read().tasks) == 1     # max_jobs 1 still holds

        edit(tmp_path, "  dealy: 0.2", "  delay: 0.2")
        edit(tmp_path, "  max_jobs: 1", "  max_jobs: 3")
        wait_for(lambda: not _status(tmp_path).get("params_problem"))
        wait_for(lambda: sum(t.state in S.IN_BATCH for t in e.store.read().tasks) == 3)   # the new limit applies

        edit(tmp_path, "  delay: 0.2", "  dealy: 0.2")
        killed = cli(tmp_path, "kill", "--all", "--yes")
        assert killed.returncode == 0, killed.stderr
        wait_for(lambda: all(t.state == S.ABORTED for t in e.store.read().tasks))
    finally:
        d.send_signal(signal.SIGTERM)
        out = d.communicate(timeout=60)[0]
    assert out.count("does not validate: unknown parameter 'daemon.dealy'") == 2    # once per broken edit
    assert "batchman.yaml reloaded: batch.max_jobs changed" in out
    assert not _status(tmp_path).get("params_problem")      # no daemon left that keeps old settings


def test_the_last_good_copy_is_the_text_that_validated_with_the_files_mode(tmp_path):
    write_config(tmp_path)
    path = tmp_path / P.CONFIG_NAME
    os.chmod(path, 0o600)                                   # it may hold notify passwords
    edit(tmp_path, "  delay: 60.0", "  delay: 61.0")
    P.load(str(tmp_path))
    last = tmp_path / P.LAST_GOOD
    assert last.read_text() == path.read_text()
    assert os.stat(last).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)                                   # the same text, a new mode: the copy follows
    P.load(str(tmp_path))
    assert os.stat(last).st_mode & 0o777 == 0o640
    edit(tmp_path, "  delay: 61.0", "  dealy: 61.0")
    with pytest.raises(P.ParamError):
        P.load(str(tmp_path))
    assert "  delay: 61.0" in last.read_text()              # a file that does not validate is not kept


def test_a_reloaded_file_reaches_every_step_of_the_daemon(tmp_path):
    """The daemon's steps were built from the parameters (job specs, observer, actor, pacing,
    alerts and metrics): a reload must hand the new ones to each, not to the engine alone."""
    from batchman.backends.factory import make_batch, make_staging
    from batchman.daemon.engine import Engine
    e = make_experiment(tmp_path, [1], **{"batch.min_query_interval": 5.0})
    said = []
    eng = Engine(e.params, e.store, make_batch(e.params), make_staging(e.params), say=said.append)
    old_outputs = eng.outputs
    edit(tmp_path, "  min_query_interval: 5.0", "  min_query_interval: 9.0")
    edit(tmp_path, "  command: ./analyze", "  command: ./reco")
    eng.params_watch.check(eng)
    assert eng.params["batch.min_query_interval"] == 9.0 and eng.pacing.min_interval == 9.0
    assert eng.actor.specs is eng.specs and eng.specs.params is eng.params
    assert eng.specs.command()[0].endswith("/reco") and "reco does not exist" in eng.command_problem()
    assert eng.observer.params is eng.params and eng.observer.paths is eng.paths
    assert eng.outputs is not old_outputs and eng.outputs.params is eng.params
    assert said == ["batchman.yaml reloaded: batch.command, batch.min_query_interval changed"]
    eng.params_watch.check(eng)                        # the file did not change since: nothing said
    assert len(said) == 1
    # the token buckets (issue 14) take new rates at once, staging's included
    edit(tmp_path, "  submit_rate: 2.0", "  submit_rate: 0.5")
    edit(tmp_path, "  request_burst: 30", "  request_burst: 4")
    eng.params_watch.check(eng)
    assert eng.pacer.buckets["submit"].rate == 0.5 and eng.pacer.buckets["stage"].burst == 4
    assert said[-1] == "batchman.yaml reloaded: batch.submit_rate, staging.request_burst changed"
