"""retry.py as tables: classifying finished attempts, parsing policies.retry, planning retries."""

import pytest

from batchman.core import retry as R
from batchman.core.retry import Limits, classify, parse_rules, plan_retry


@pytest.mark.parametrize("state,failure,code,hint,cls", [
    ("failed", "out-of-memory", None, "", R.OUT_OF_MEMORY),          # SLURM OUT_OF_MEMORY (cgroups)
    ("failed", "exit-nonzero", 137, "out-of-memory", R.OUT_OF_MEMORY),  # OverMemoryKill: FAILED, signal 9
    ("failed", "lost", None, "out-of-memory", R.OUT_OF_MEMORY),
    ("failed", "timeout", None, "", R.TIMEOUT),
    ("failed", "cancelled", None, "timeout", R.TIMEOUT),              # "CANCELLED ... DUE TO TIME LIMIT"
    ("failed", "cancelled", None, "", R.CANCELLED),                   # scancel by a person
    ("failed", "node-fail", None, "", R.NODE_FAIL),
    ("failed", "preempted", None, "", R.PREEMPTED),
    ("failed", "cancelled", None, "preempted", R.PREEMPTED),
    ("failed", "requeued", None, "", R.REQUEUED),
    ("failed", "boot-fail", None, "", R.BOOT_FAIL),
    ("failed", "exit-nonzero", 1, "", R.EXIT_NONZERO),
    ("failed", "", 3, "", R.EXIT_NONZERO),
    ("failed", "timeout", None, "out-of-memory", R.TIMEOUT),          # the batch system's word wins here
    ("failed", "vanished", None, "", R.LOST),
    ("failed", "deadline", None, "", R.LOST),
    ("failed", "", None, "", R.LOST),
    ("incomplete", "incomplete", 0, "", R.INCOMPLETE),
    ("incomplete", "missing-outputs", 0, "", R.MISSING_OUTPUTS),
    ("error", "submit-rejected", None, "", R.SUBMIT_REJECTED),
    ("completed", "", 0, "", ""),
])
def test_classify(state, failure, code, hint, cls):
    assert classify(state, failure, code, hint) == cls


def test_defaults_a_physicist_would_choose():
    rules, problems = parse_rules(None)
    assert problems == []
    assert rules[R.OUT_OF_MEMORY].retry and rules[R.OUT_OF_MEMORY].memory_factor == 2
    assert rules[R.TIMEOUT].retry and rules[R.TIMEOUT].time_factor == 2
    assert rules[R.NODE_FAIL].retry and not rules[R.NODE_FAIL].counts and rules[R.NODE_FAIL].exclude_node
    assert rules[R.PREEMPTED].retry and not rules[R.PREEMPTED].counts
    assert not rules[R.CANCELLED].retry and not rules[R.SUBMIT_REJECTED].retry
    assert not rules[R.EXIT_NONZERO].retry               # auto_restart_failed is off by default
    assert set(rules) == set(R.CLASSES)


def test_auto_restart_failed_maps_onto_the_analysis_own_classes():
    rules, _ = parse_rules(None, auto_restart_failed=True, max_auto_restarts=5)
    for c in (R.EXIT_NONZERO, R.INCOMPLETE, R.MISSING_OUTPUTS, R.LOST):
        assert rules[c].retry and rules[c].max == 5 and rules[c].counts
    assert not rules[R.CANCELLED].retry


@pytest.mark.parametrize("raw,needle", [
    ({"oom": {"retry": True}}, "unknown failure class 'oom'"),
    ({"out-of-memory": {"memory_factr": 2}}, "policies.retry.out-of-memory.memory_factr: unknown key (did you mean 'memory_factor'?)"),
    ({"out-of-memory": {"memory_factor": 0.5}}, "policies.retry.out-of-memory.memory_factor: 0.5 is not a number >= 1"),
    ({"timeout": {"max": -1}}, "policies.retry.timeout.max: -1 is not a whole number >= 0"),
    ({"timeout": {"retry": "yes"}}, "policies.retry.timeout.retry: 'yes' is not true or false"),
    ({"timeout": 3}, "policies.retry.timeout: must be a mapping"),
    ([1, 2], "policies.retry: must be a mapping"),
])
def test_bad_rules_are_named(raw, needle):
    _, problems = parse_rules(raw)
    assert any(needle in p for p in problems), problems


def test_written_keys_change_only_themselves():
    rules, problems = parse_rules({"out-of-memory": {"memory_max_mb": 8000}, "cancelled-by-user": True,
                                   "preempted": False})
    assert problems == []
    assert rules[R.OUT_OF_MEMORY].memory_max_mb == 8000 and rules[R.OUT_OF_MEMORY].memory_factor == 2
    assert rules[R.CANCELLED].retry and rules[R.CANCELLED].max == 1
    assert not rules[R.PREEMPTED].retry


RULES = parse_rules(None)[0]


def plan(cls, retries=None, counted=0, cap=2, used=None, overrides=None, node="", rules=RULES,
         limits=Limits()):
    return plan_retry(cls, retries=retries or {}, counted_so_far=counted, cap=cap, used=used or {},
                      overrides=overrides or {}, node=node, rules=rules, limits=limits)


@pytest.mark.parametrize("used,limits,new_mem", [
    ({"memory_mb": 1000}, Limits(), 2000),
    ({}, Limits(), 4000),                                      # ran with the site default
    ({}, Limits(base_memory_mb=3000), 6000),
    ({"memory_mb": 40000}, Limits(), 64000),                   # the ceiling
])
def test_out_of_memory_doubles_memory_up_to_the_ceiling(used, limits, new_mem):
    r, why = plan(R.OUT_OF_MEMORY, used=used, limits=limits)
    assert why == "" and r.resources["memory_mb"] == new_mem and r.counted
    assert r.retries == {R.OUT_OF_MEMORY: 1} and "memory" in r.reason


def test_out_of_memory_at_the_ceiling_is_not_retried_unchanged():
    r, why = plan(R.OUT_OF_MEMORY, used={"memory_mb": 64000})
    assert r is None and "ceiling" in why


@pytest.mark.parametrize("used,limits,new_time", [
    ({"time_limit": 60}, Limits(), 120),
    ({"time_limit": 200}, Limits(max_time=300), 300),           # the partition's maximum
    ({}, Limits(max_time=300), 300),                           # site default limit: go to the maximum
    ({}, Limits(default_time=600, max_time=3600), 1200),
])
def test_timeout_doubles_time_up_to_the_partition_maximum(used, limits, new_time):
    r, why = plan(R.TIMEOUT, used=used, limits=limits)
    assert why == "" and r.resources["time_limit"] == new_time


@pytest.mark.parametrize("used,limits", [({"time_limit": 300}, Limits(max_time=300)), ({}, Limits())])
def test_timeout_that_cannot_get_more_time_is_not_retried(used, limits):
    r, why = plan(R.TIMEOUT, used=used, limits=limits)
    assert r is None and "time limit" in why


def test_node_failure_excludes_the_node_and_does_not_count():
    r, why = plan(R.NODE_FAIL, node="wn12", counted=2, cap=2, overrides={"exclude": ["wn3"]})
    assert r is not None and r.resources["exclude"] == ["wn12", "wn3"] and not r.counted
    assert "not counted" in r.reason


def test_per_class_max_and_the_cap():
    assert plan(R.OUT_OF_MEMORY, retries={R.OUT_OF_MEMORY: 2})[0] is None
    r, why = plan(R.TIMEOUT, used={"time_limit": 60}, counted=2, cap=2)
    assert r is None and "max_auto_restarts 2" in why
    assert plan(R.PREEMPTED, retries={R.PREEMPTED: 9}, counted=5, cap=2)[0] is not None
    assert plan(R.CANCELLED)[0] is None
    assert plan(R.EXIT_NONZERO)[0] is None


def test_resources_text():
    assert R.resources_text({"memory_mb": 2000, "time_limit": 120, "exclude": ["vm"]}) == "2000 MB, 120 s, not on vm"
    assert R.resources_text({}) == ""


# ----------------------------------------------------------------------------- through the daemon (local backend)
def test_daemon_retries_an_out_of_memory_attempt_with_more_memory_recorded(tmp_path):
    """Attempt 1 dies as SLURM's OverMemoryKill leaves it (killed, stderr says so): classified
    out-of-memory from the stderr hint, retried with memory_start_mb (it ran with the site
    default), and both attempts are recorded with class and resources."""
    import os
    from e2e_helpers import daemon_run, env_for, make_experiment
    from batchman.core import states as S
    e = make_experiment(tmp_path, [7], segments=1)
    script = tmp_path / "analyze"
    script.write_text("#!/bin/bash\nif [ \"$BATCHMAN_ATTEMPT\" = 1 ]; then\n"
                      "  echo 'slurmstepd: error: Exceeded job memory limit' >&2; exit 137\nfi\n"
                      "echo \"segments_analysed = 1\" > \"$BATCHMAN_STATS_FILE\"\n")
    os.chmod(script, 0o755)
    r = daemon_run(tmp_path, "verbose", env=env_for(tmp_path), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    t = e.store.read().tasks[0]
    assert (t.state, t.attempt, t.auto_restarts) == (S.COMPLETED, 2, 1), (t.state, t.reason)
    a = t.past[0]
    assert a.failure_class == "out-of-memory" and a.exit_code == 137 and a.resources == {"cpus": 1}
    assert "memory site default -> 4000 MB" in a.retry
    assert t.resources == {"memory_mb": 4000} and t.used["memory_mb"] == 4000
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli_main
    shown = CliRunner().invoke(cli_main, ["-C", str(tmp_path), "show", "7"]).output
    assert "out-of-memory" in shown and "4000 MB" in shown, shown


def test_has_work_and_retry_verdict():
    from batchman.core import decide as D, states as S
    from batchman.core.model import Task
    pol = D.Policy()
    t = Task(run=1, state=S.FAILED, failure="timeout", attempt=1, job_name="bm.x.1.analysis.1",
             used={"time_limit": 60})
    assert D.has_work([t], pol) and "time limit 60 -> 120 s" in D.retry_verdict(t, pol)
    t2 = Task(run=2, state=S.FAILED, failure="cancelled", attempt=1, job_name="bm.x.2.analysis.1")
    assert not D.has_work([t2], pol) and "not retried" in D.retry_verdict(t2, pol)
