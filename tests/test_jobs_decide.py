"""Several jobs per run: definitions, triggers and dependencies, as tables (pure; no daemon)."""

import pytest
import yaml

from batchman.core import jobs as J
from batchman import params as P
from batchman.core import runlist
from batchman.core import states as S
from batchman.backends.base import StagingView
from batchman.core.decide import Budget, Marker, Observations, Policy, decide_task, has_work
from batchman.core.plan import plan
from batchman.core.model import Segment, Task
from batchman.core.runspec import RunSpecError

NOW = 10_000.0
ME = "host:1"


def jobs_of(text):
    return P.validate({"jobs": yaml.safe_load(text)}, "/exp").jobs


RECO_HIST = jobs_of("""
reco: {command: ./reco, args: "{run} v{version} {files}", params: {version: 3},
       outputs: ["out/v{version}/tree{run:05d}.root"], max_running: 2}
hist: {command: ./hist, trigger: "after: reco", needs_staging: false}
calib: {command: ./calib, trigger: manual}
quick: {command: ./quick, trigger: data-complete, settle: 30, watch: 100-199}
""")


def task(run, job, state=S.NEW, **kw):
    return Task(run=run, job=job, state=state, since=NOW - 10, **kw)


def obs(**kw):
    kw.setdefault("now", NOW)
    kw.setdefault("me", ME)
    kw.setdefault("live_daemons", frozenset({ME}))
    return Observations(**kw)


# ---- definitions: rejected before anything runs, naming the job and the key ---------------
@pytest.mark.parametrize("text, expected", [
    ("reco: {args: '{run} {bogus}'}", "jobs.reco.args: unknown placeholder(s) {bogus}"),
    ("a: {trigger: 'after: b'}\nb: {trigger: 'after: a'}", "jobs.a.trigger: cycle in after: a -> b -> a"),
    ("a: {trigger: 'after: a'}", "jobs.a.trigger: cycle in after: a -> a"),
    ("hist: {trigger: 'after: rec'}\nreco: {}", "jobs.hist.trigger: after: 'rec' names no job (did you mean 'reco'?)"),
    ("reco: {outputs: ['out/tree.root']}", "jobs.reco.outputs: 'out/tree.root' has no {run}"),
    ("reco: {outputs: ['out/{version}/t{run}.root']}", "jobs.reco.outputs: unknown placeholder(s) {version}"),
    ("reco: {ouputs: ['x{run}']}", "jobs.reco.ouputs: unknown key (did you mean 'outputs'?)"),
    ("reco: {trigger: on-ad}", "jobs.reco.trigger: 'on-ad' is not a trigger (did you mean 'on-add'?)"),
    ("reco: {max_running: -1}", "jobs.reco.max_running: -1 is not a whole number >= 0"),
    ("reco: {needs_staging: maybe}", "jobs.reco.needs_staging: 'maybe' is not true or false"),
    ("reco: {params: {run: 3}}", "jobs.reco.params: run would hide the built-in placeholder"),
    ("reco: {watch: 5-1}", "jobs.reco.watch: range '5-1' goes backwards"),
    ("'bad name': {}", "jobs.bad name: 'bad name' is not a job name"),
    ("reco: {args: '{run:05d} {version:q}', params: {version: 3}}", "jobs.reco.args: '{run:05d} {version:q}' does not render"),
])
def test_bad_definition_is_rejected_naming_job_and_key(text, expected):
    with pytest.raises(P.ParamError) as ei:
        jobs_of(text)
    assert any(expected in p for p in ei.value.problems), ei.value.problems


def test_every_problem_is_listed_at_once():
    with pytest.raises(P.ParamError) as ei:
        jobs_of("a: {args: '{x}', outputs: [o]}\nb: {trigger: 'after: c'}")
    assert len(ei.value.problems) == 3


def test_without_jobs_section_one_implicit_analysis_job_from_batch_command():
    p = P.validate({"batch": {"command": "./ana", "args": "{run} {files}"}}, "/exp")
    d = p.jobs.get("analysis")
    assert (p.jobs.explicit, d.command, d.args, d.trigger, p.jobs.on_add()) == (False, "./ana", "{run} {files}", "on-add", ["analysis"])
    assert p.jobs.get("anything").command == "./ana"      # as before: any job name runs batch.command


def test_job_defaults_come_from_batch_section_and_trigger_forms():
    j = jobs_of("a: {}\nb: {trigger: {after: a}}\nc: {trigger: 'after a'}")
    assert j.defs["a"].command == "./analyze" and j.defs["a"].args == "{run}"
    assert (j.defs["b"].trigger, j.defs["b"].after) == ("after", "a") == (j.defs["c"].trigger, j.defs["c"].after)
    assert j.expand(["a"]) == ["a", "b", "c"]


def test_init_documents_the_jobs_section_and_the_example_is_valid():
    text = P.render_yaml()
    assert "# jobs:" in text and "after: reco" in text
    assert yaml.safe_load(text).get("jobs") is None          # commented out: the default file has no jobs
    assert set(P.validate(yaml.safe_load(P.JOBS_EXAMPLE), "/exp").jobs.defs) == {"reco", "hist", "quicklook"}


def test_outputs_render_relative_to_batch_home():
    d = RECO_HIST.defs["reco"]
    assert J.outputs_for(d, 42, "exp", "/home") == ["/home/out/v3/tree00042.root"]


@pytest.mark.parametrize("sizes, found, problems", [
    ({"/a": 10, "/b": 5}, ["/a", "/b"], []),
    ({"/a": 10}, ["/a"], ["/b is missing"]),
    ({"/a": 0, "/b": 1}, ["/b"], ["/a is empty"]),
])
def test_judge_outputs(sizes, found, problems):
    assert J.judge_outputs(["/a", "/b"], sizes) == (found, problems)


# ---- dependencies: after: JOB --------------------------------------------------------------
@pytest.mark.parametrize("upstream, wait, stuck", [
    (None, "waiting for reco (not in the list)", True),
    (S.NEW, "waiting for reco (new)", False),
    (S.RUNNING, "waiting for reco (running)", False),
    (S.FAILED, "waiting for reco (failed)", True),
    (S.ABORTED, "waiting for reco (aborted)", True),
    (S.SKIPPED, "waiting for reco (skipped)", True),
    (S.COMPLETED, "", False),
])
def test_after_job_waits_for_its_upstream(upstream, wait, stuck):
    tasks = [task(7, "hist")] + ([task(7, "reco", upstream, outputs=("/o/t7.root",))] if upstream else [])
    g = J.gates(tasks, RECO_HIST)["7.hist"]
    assert (g.wait, g.stuck) == (wait, stuck)
    if upstream == S.COMPLETED:
        assert g.inputs == ("/o/t7.root",) and g.staging is False


def test_waiting_dependent_stays_new_with_a_visible_reason_and_is_not_work_once_stuck():
    up, dep = task(7, "reco", S.FAILED), task(7, "hist")
    o = obs(gates=J.gates([up, dep], RECO_HIST))
    d = decide_task(dep, o, Policy(), Budget())
    assert d.state == S.NEW and d.reason == "waiting for reco (failed)"
    dep.reason = d.reason
    assert decide_task(dep, o, Policy(), Budget()) is None      # no rewrite every iteration
    assert not has_work([up, dep], Policy(), stuck=J.stuck([up, dep], RECO_HIST))
    assert has_work([up, dep], Policy())                        # (without knowing, it would wait forever)


def test_dependent_of_completed_upstream_goes_straight_to_submission_with_its_outputs():
    up, dep = task(7, "reco", S.COMPLETED, outputs=("/o/t7.root",)), task(7, "hist")
    o = obs(gates=J.gates([up, dep], RECO_HIST), staging=StagingView())
    d = decide_task(dep, o, Policy(), Budget())
    assert d.state == S.STAGED and d.updates["inputs"] == ("/o/t7.root",) and d.updates["segments"] == []
    assert "segments" not in str(o.segments)


def test_job_without_staging_needs_no_segment_search():
    j = jobs_of("sim: {command: ./sim, needs_staging: false}")
    t = task(3, "sim")
    d = decide_task(t, obs(gates=J.gates([t], j)), Policy(), Budget())
    assert d.state == S.STAGED and d.reason == "no staging needed"


def test_task_of_a_job_no_longer_defined_waits_for_a_person():
    t = task(3, "gone")
    g = J.gates([t], RECO_HIST)["3.gone"]
    assert g.stuck and "not defined" in g.wait


# ---- triggers: which tasks to create ---------------------------------------------------------
@pytest.mark.parametrize("existing, ready, created", [
    # a data-complete run: its task and its dependents' (none for quick)
    ([], [(150, "quick", "data complete")], [(150, "quick", "data complete")]),
    # never twice for the same (run, job)
    ([(150, "quick")], [(150, "quick", "data complete")], []),
    ([], [(150, "quick", "x"), (150, "quick", "x")], [(150, "quick", "x")]),
    # an upstream task without its dependent: the dependent is created
    ([(7, "reco")], [], [(7, "hist", "after reco")]),
    ([(7, "reco"), (7, "hist")], [], []),
    # a manual job's task is not created by anything but a person
    ([(7, "calib")], [], []),
])
def test_to_create(existing, ready, created):
    tasks = [task(r, j) for r, j in existing]
    assert J.to_create(tasks, RECO_HIST, ready) == created


def test_implicit_job_creates_nothing_by_itself():
    assert J.to_create([task(1, "analysis")], J.implicit(P.defaults()), [(2, "analysis", "x")]) == []


@pytest.mark.parametrize("history, settle_s, ready", [
    # (time, signature) observations of one run; ready after the last one?
    ([(0, ("a",))], 30, False),
    ([(0, ("a",)), (29, ("a",))], 30, False),
    ([(0, ("a",)), (30, ("a",))], 30, True),
    ([(0, ("a",)), (20, ("a", "b")), (40, ("a", "b"))], 30, False),    # a new segment restarts the clock
    ([(0, ("a",)), (20, ("a", "b")), (50, ("a", "b"))], 30, True),
    ([(0, (("a", 1, 5),)), (40, (("a", 2, 5),))], 30, False),          # size changed
    ([(0, ("a",)), (10, ()), (40, ("a",))], 30, False),                # gone and back: starts again
    ([(0, ("a",))], 0, True),
])
def test_settle(history, settle_s, ready):
    mem = {}
    for t, sig in history:
        mem, out = J.settle(mem, {1: sig}, t, settle_s)
    assert (out == [1]) == ready


def test_first_segment_watches_only_the_first_file():
    j = jobs_of("fs: {trigger: first-segment}\ndc: {trigger: data-complete}")
    files = [("run_1.dat.0", 5, 1), ("run_1.dat.1", 3, 2)]
    assert J.signature(j.defs["fs"], files) == (files[0],)
    assert J.signature(j.defs["dc"], files) == tuple(files)


def test_watched_runs():
    j = jobs_of("a: {trigger: data-complete}\nb: {trigger: data-complete, watch: listed}\nc: {trigger: data-complete, watch: '2-3'}")
    assert J.watched_runs(j.defs["a"], [1, 2, 3, 4], [4]) == [1, 2, 3, 4]
    assert J.watched_runs(j.defs["b"], [1, 2, 3, 4], [4]) == [4]
    assert J.watched_runs(j.defs["c"], [1, 2, 3, 4], [4]) == [2, 3]


# ---- limits: every job together, and per job ---------------------------------------------
def staged(run, job):
    return task(run, job, S.STAGED, segments=[Segment(f"/t/{run}", True)])


def test_max_running_per_job_and_max_jobs_over_all_jobs():
    running = [task(1, "reco", S.RUNNING, job_name="bm.x.1.reco.1", job_id="1")]
    waiting = [staged(r, "reco") for r in (2, 3, 4)] + [staged(r, "hist") for r in (2, 3, 4)]
    o = obs(staging=StagingView(present={"/t/2", "/t/3", "/t/4"}), jobs={})
    pol = Policy(max_jobs=4, job_limits=RECO_HIST.limits())
    out = plan(running + waiting, o, pol)
    went = sorted(t.key for t, d in out if d.state == S.SUBMITTING)
    # reco may have 2 in the batch system (1 already runs): one more; the job cap (4) counts all jobs
    assert went == ["2.hist", "2.reco", "3.hist"]


def test_plan_only_advances_selected_tasks_but_counts_every_task_for_limits():
    a, b = staged(1, "reco"), staged(2, "reco")
    a.meta, b.meta = {"dataset": "SiR2"}, {"dataset": "Al50"}
    busy = task(3, "reco", S.RUNNING, job_name="bm.x.3.reco.1", job_id="9")
    o = obs(staging=StagingView(present={"/t/1", "/t/2"}), jobs={})
    only = lambda t: J.matches(t.meta, {"dataset": ["Al50"]})
    out = plan([busy, a, b], o, Policy(max_jobs=2), only=only)
    assert [(t.key, d.state) for t, d in out] == [("2.reco", S.SUBMITTING)]
    assert plan([busy, a, b], o, Policy(max_jobs=1), only=only) == []


# ---- expected outputs ------------------------------------------------------------------------
def test_exit_0_with_missing_output_fails_naming_the_file():
    t = task(5, "reco", S.RUNNING, job_name="bm.x.5.reco.1", job_id="3", attempt=1)
    o = obs(markers={t.job_name: Marker(started=NOW - 5, exit_code=0)},
            outputs={t.job_name: (["/o/a"], ["/o/t5.root is missing"])})
    d = decide_task(t, o, Policy(), Budget())
    assert d.state == S.FAILED and d.updates["failure"] == "missing-outputs"
    assert "/o/t5.root is missing" in d.reason and d.updates["outputs"] == ("/o/a",)


def test_exit_0_with_outputs_completes_and_records_them():
    t = task(5, "reco", S.RUNNING, job_name="bm.x.5.reco.1", job_id="3", attempt=1)
    o = obs(markers={t.job_name: Marker(started=NOW - 5, exit_code=0)}, outputs={t.job_name: (["/o/t5.root"], [])})
    d = decide_task(t, o, Policy(), Budget())
    assert d.state == S.COMPLETED and d.updates["outputs"] == ("/o/t5.root",)


# ---- datasets --------------------------------------------------------------------------------
def test_run_list_with_columns():
    text = "# AlCap datasets\nrun dataset quality\n2091 SiR2 gold\n2092,SiR2,silver\n2100 - 2101  Al50b\n"
    assert runlist.parse(text) == [(2091, {"dataset": "SiR2", "quality": "gold"}),
                                   (2092, {"dataset": "SiR2", "quality": "silver"}),
                                   (2100, {"dataset": "Al50b"}), (2101, {"dataset": "Al50b"})]
    assert runlist.parse("1-2 5") == [(1, {}), (2, {}), (5, {})]
    with pytest.raises(RunSpecError, match="f:3: 3 values for 2 column"):
        runlist.parse("run dataset quality\n1 a b\n2 a b c\n", "f")


@pytest.mark.parametrize("meta, datasets, wheres, ok", [
    ({"dataset": "SiR2", "quality": "gold"}, ["SiR2"], [], True),
    ({"dataset": "SiR2", "quality": "gold"}, ["SiR2", "Al50b"], [], True),
    ({"dataset": "SiR2", "quality": "gold"}, ["Al50b"], [], False),
    ({"dataset": "SiR2", "quality": "gold"}, ["SiR2"], ["quality=silver"], False),
    ({"dataset": "SiR2", "quality": "gold"}, [], ["quality=gold"], True),
    ({}, ["SiR2"], [], False),
    ({}, [], [], True),
])
def test_dataset_and_where_filters(meta, datasets, wheres, ok):
    assert J.matches(meta, J.parse_where(datasets, wheres)) is ok


def test_where_must_be_key_value():
    with pytest.raises(ValueError, match="KEY=VALUE"):
        J.parse_where([], ["gold"])
