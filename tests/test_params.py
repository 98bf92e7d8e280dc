import os

import pytest
import yaml

from batchman import params as P
from batchman.core.runspec import RunSpecError, compress, parse


# Every parameter of the 2002 BatchMan, by the key that carries it here.
PARAMS_2002 = {
    "delay": "daemon.delay", "temp dir": "daemon.temp_dir", "status file": "daemon.status_file",
    "html export": "daemon.html_file", "staging limit": "staging.limit", "stub dir": "staging.stub_dir",
    "cache dir": "staging.cache_dir", "prefix": "staging.prefix", "suffix": "staging.suffix",
    "runtime setup dir": "batch.runtime_setup_dir", "stats dir": "batch.stats_dir", "log dir": "daemon.log_dir",
    "batch command": "batch.command", "batch home": "batch.batch_home",
    "release failed files": "policies.release_failed_files", "auto restart failed": "policies.auto_restart_failed",
    "auto restart cap": "policies.max_auto_restarts", "verify staging queue": "staging.verify_queue",
    "verify grace": "staging.awol_grace", "batch backend": "batch.backend", "staging backend": "staging.backend",
}


def test_rendered_file_has_every_2002_parameter_commented_and_loads_back(tmp_path):
    text = P.render_yaml()
    raw = yaml.safe_load(text)
    for what, key in PARAMS_2002.items():
        section, name = key.split(".")
        assert name in raw[section], what
    assert text.count("  # ") >= len(P.SCHEMA)
    (tmp_path / P.CONFIG_NAME).write_text(text)
    assert P.load(str(tmp_path)).values == P.defaults()


@pytest.mark.parametrize("doc,needle", [
    ({"batch": {"comand": "x"}}, "unknown parameter 'batch.comand' (did you mean 'batch.command'?)"),
    ({"staging": {"limit": "lots"}}, "staging.limit: 'lots' is not a whole number"),
    ({"staging": {"limit": 0}}, "staging.limit: 0 is too small"),
    ({"batch": {"backend": "pbs"}}, "batch.backend: 'pbs' is not one of local, slurm, gridengine, lsf"),
    ({"policies": {"auto_restart_failed": "yes please"}}, "is not true or false"),
    ({"stagin": {}}, "unknown section 'stagin' (did you mean 'staging'?)"),
    ({"staging": {"pattern": "{prefix}{segment}"}}, "has no {run}"),
    ({"batch": {"args": "{run} {runn}"}}, "unknown placeholder(s) {runn}"),
])
def test_bad_parameters_name_the_key_and_what_is_allowed(doc, needle):
    with pytest.raises(P.ParamError) as e:
        P.validate(doc, "/x")
    assert needle in str(e.value)


def test_all_problems_reported_at_once():
    with pytest.raises(P.ParamError) as e:
        P.validate({"daemon": {"delay": -1}, "batch": {"cpus": "two"}}, "/x")
    assert len(e.value.problems) == 2


def test_not_yaml(tmp_path):
    (tmp_path / P.CONFIG_NAME).write_text("daemon: [unclosed\n")
    with pytest.raises(P.ParamError) as e:
        P.load(str(tmp_path))
    assert "not valid YAML" in str(e.value)


def test_paths_are_relative_to_the_experiment(tmp_path):
    p = P.validate({"daemon": {"status_file": "s/st.json"}}, str(tmp_path))
    assert p.status_path == os.path.join(str(tmp_path), "s", "st.json")


def test_find_root_walks_up(tmp_path):
    (tmp_path / P.CONFIG_NAME).write_text("")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert P.find_root(str(tmp_path / "a" / "b")) == str(tmp_path)


@pytest.mark.parametrize("text,runs", [
    ("1000", [1000]), ("1000-1003", [1000, 1001, 1002, 1003]), ("1000-1001,1020 2000", [1000, 1001, 1020, 2000]),
    ("5 - 6", [5, 6]), ("# only a comment\n7 # seven\n\n8", [7, 8]), ("3,3,2-3", [3, 2]),
])
def test_run_specs(text, runs):
    assert parse(text) == runs


@pytest.mark.parametrize("text,needle", [("12a", "'12a' is not a run number"), ("9-3", "goes backwards"),
                                          ("1-9999999", "surely a typo"), ("1,,x", "'x'")])
def test_bad_run_specs(text, needle):
    with pytest.raises(RunSpecError) as e:
        parse(text, source="runs.txt")
    assert needle in str(e.value) and "runs.txt:1" in str(e.value)


def test_compress():
    assert compress([5, 1, 2, 3, 9, 10]) == "1-3,5,9-10"
