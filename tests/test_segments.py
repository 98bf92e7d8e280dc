"""One task per raw file (issue 18), the pure parts: keys and job names, the per: and
all-segments definitions, splitting a run task into segment tasks, and the merge's gate."""

import pytest

from batchman.core import jobs as J
from batchman.core import states as S
from batchman.core.model import Segment, Task, decode, encode, job_name, parse_job_name, parse_key, task_key, Status, SCHEMA
from batchman.daemon.segments import numbered, own_segment

VALUES = {"batch.command": "./analyze", "batch.args": "{run} {files}"}


def defs(**jobs):
    parsed, problems = J.parse(jobs, VALUES)
    assert problems == []
    return parsed


def problems_of(**jobs):
    return J.parse(jobs, VALUES)[1]


# ---- keys and job names ---------------------------------------------------------------
def test_a_segment_task_key_names_run_job_and_segment_and_reads_back():
    t = Task(run=2120, job="reco", seg=17)
    assert t.key == "2120.reco.17" and t.run_key == "2120.reco"
    assert Task(run=2120, job="reco").key == Task(run=2120, job="reco").run_key == "2120.reco"
    assert parse_key("2120.reco.17") == (2120, "reco", 17) and parse_key("2120.reco") == (2120, "reco", None)
    assert parse_key("2120") is None and parse_key("2120.17") is None and parse_key("x.reco") is None


@pytest.mark.parametrize("seg", [None, 0, 17])
def test_job_names_carry_the_segment_and_parse_back(seg):
    t = Task(run=2120, job="re-co_2", seg=seg)
    name = job_name("s1k", t, 3)
    p = parse_job_name(name)
    assert (p.store_id, p.run, p.job, p.attempt, p.seg) == ("s1k", 2120, "re-co_2", 3, seg)
    assert p.key == t.key


def test_old_job_names_still_parse():
    assert parse_job_name("bm.s1k.2120.analysis.4") == ("s1k", 2120, "analysis", 4, None)
    assert parse_job_name("bm.s1k.2120.analysis") is None and parse_job_name("bm.s1k.2120.1.2.3") is None


def test_a_run_task_is_encoded_as_before_and_a_segment_task_carries_seg():
    st = Status(schema=SCHEMA, tasks=[Task(run=1, job="a"), Task(run=1, job="a", seg=0)])
    raw = encode(st)
    assert raw.count(b'"seg"') == 1
    assert [t.seg for t in decode(raw).tasks] == [None, 0]


# ---- definitions -----------------------------------------------------------------------
def test_per_segment_and_a_merge_step_parse():
    j = defs(reco={"per": "segment", "args": "{run} {segment:03d} {files}", "outputs": ["r{run}_{segment}.root"]},
             merge={"trigger": "after: reco, all-segments"})
    assert j.defs["reco"].per_segment and not j.defs["merge"].per_segment
    m = j.defs["merge"]
    assert (m.trigger, m.after, m.after_all) == (J.AFTER, "reco", True)
    assert m.needs_staging is False            # a merge works on outputs: no raw files staged by default
    assert defs(m={"trigger": {"after": "x, all-segments"}}, x={"per": "segment"}).defs["m"].after_all


@pytest.mark.parametrize("jobs, words", [
    ({"reco": {"per": "file"}}, ["jobs.reco.per", "'file' is not one of run, segment"]),
    ({"reco": {"args": "{segment}"}}, ["jobs.reco.args", "{segment}"]),
    ({"reco": {"per": "segment", "outputs": ["r{run}.root"]}}, ["jobs.reco.outputs", "no {segment}"]),
    ({"reco": {"per": "segment", "needs_staging": False}}, ["jobs.reco.needs_staging"]),
    ({"reco": {"per": "segment"}, "m": {"trigger": "after: reco"}}, ["jobs.m.trigger", "after: reco, all-segments"]),
    ({"reco": {}, "m": {"trigger": "after: reco, all-segments"}}, ["jobs.m.trigger", "runs once per run"]),
    ({"reco": {"per": "segment"}, "m": {"per": "segment", "trigger": "after: reco, all-segments"}},
     ["jobs.m.trigger", "cannot wait for every segment"]),
    ({"reco": {"per": "segment"}, "m": {"trigger": "after: reco, every"}}, ["jobs.m.trigger", "not all-segments"]),
])
def test_bad_per_segment_definitions_say_which_key_and_what_to_write(jobs, words):
    probs = problems_of(**jobs)
    assert probs and all(w in probs[0] for w in words), probs


def test_a_per_segment_job_after_a_per_segment_job_is_allowed():
    assert problems_of(reco={"per": "segment"}, calib={"per": "segment", "trigger": "after: reco"}) == []


def test_segment_in_outputs_and_values():
    d = defs(reco={"per": "segment", "outputs": ["o/r{run}_{segment:02d}.root"]}).defs["reco"]
    assert J.outputs_for(d, 7, "x", "/h", 3) == ["/h/o/r7_03.root"]


# ---- creating and splitting -------------------------------------------------------------
JOBS = dict(reco={"per": "segment", "outputs": ["r{run}_{segment}"]}, merge={"trigger": "after: reco, all-segments"})


def seg_tasks(run, states, outputs=True):
    return [Task(run=run, job="reco", seg=i, state=s, outputs=(f"r{run}_{i}",) if outputs and s == S.COMPLETED else ())
            for i, s in enumerate(states)]


def test_a_new_run_task_of_a_per_segment_job_waits_to_be_split():
    j = defs(**JOBS)
    g = J.gates([Task(run=1, job="reco")], j)
    assert g["1.reco"].split and not g["1.reco"].wait


def test_split_makes_one_task_per_segment_with_its_own_file_and_skips_existing_ones():
    run = Task(run=5, job="reco", priority=3, meta={"dataset": "A"})
    have = {"5.reco.2": Task(run=5, job="reco", seg=2)}
    out = J.split(run, [(0, "/raw/a.0"), (2, "/raw/a.2"), (7, "/raw/a.7")], have, now=10.0)
    assert [(t.key, [s.path for s in t.segments], t.state) for t in out] == [
        ("5.reco.0", ["/raw/a.0"], S.NEW), ("5.reco.7", ["/raw/a.7"], S.NEW)]
    assert all(t.priority == 3 and t.meta == {"dataset": "A"} and t.added_at == 10.0 for t in out)
    assert "segment 7 (3 of 3) of 5.reco" == out[1].reason
    twice = J.split(run, [(1, "/raw/a.1"), (1, "/raw/a.01")], {}, now=10.0)
    assert [(t.key, t.segments[0].path) for t in twice] == [("5.reco.1", "/raw/a.1")]


def test_a_file_left_out_of_a_split_is_named_in_the_splits_words():
    found = [(0, "/raw/a.0"), (1, "/raw/a.1"), (1, "/raw/a.01"), (1, "/raw/a.001"), (2, "/raw/a.2")]
    assert J.left_out(found) == ["/raw/a.01", "/raw/a.001"]
    assert J.split_why(found) == ("split into 3 segment task(s); left out, their segment number taken "
                                  "by another file: /raw/a.01, /raw/a.001")
    assert J.left_out(found[:2]) == [] and J.split_why(found[:2]) == "split into 2 segment task(s)"


def test_segment_tasks_count_as_their_run_for_triggers():
    j = defs(**JOBS)
    tasks = seg_tasks(1, [S.RUNNING, S.NEW])
    # the merge is created once for the run, and the per-segment job is not created again
    assert J.to_create(tasks, j) == [(1, "merge", "after reco")]
    assert J.to_create(tasks + [Task(run=1, job="merge")], j, ready=[(1, "reco", "data")]) == []


def test_segment_numbers_come_from_the_file_names_or_their_order():
    pat = "{prefix}{run}{suffix}.{segment}"
    paths = ["/raw/run_5.dat.0", "/raw/run_5.dat.3", "/raw/run_5.dat.12"]
    assert numbered(paths, "/raw", pat, 5, "run_", ".dat") == [(0, paths[0]), (3, paths[1]), (12, paths[2])]
    assert own_segment(paths, "/raw", 3, pat, "run_", ".dat", 5) == [paths[1]]
    assert own_segment(paths, "/raw", 4, pat, "run_", ".dat", 5) == []
    assert numbered(["/raw/run5.evio"], "/raw", "run{run}.evio", 5, "", "") == [(0, "/raw/run5.evio")]
    assert numbered(["/raw/d/run_5.dat.4"], "/raw", "d/{prefix}{run}{suffix}.{segment}", 5, "run_", ".dat") == \
        [(4, "/raw/d/run_5.dat.4")]


# ---- the merge's gate ----------------------------------------------------------------------
def merge_gate(tasks):
    return J.gates(tasks + [Task(run=1, job="merge")], defs(**JOBS))["1.merge"]


def test_the_merge_goes_once_every_segment_completed_with_their_outputs_in_order():
    tasks = seg_tasks(1, [S.COMPLETED] * 3)[::-1]
    g = merge_gate(tasks)
    assert not g.wait and g.inputs == ("r1_0", "r1_1", "r1_2") and g.staging is False


@pytest.mark.parametrize("states, wait, stuck", [
    ([S.COMPLETED, S.RUNNING, S.NEW], "waiting for reco: 1/3 segments completed", False),
    ([S.COMPLETED, S.FAILED, S.NEW], "waiting for reco: 1/3 segments completed; segment 1 failed (restart or skip it)", True),
    ([S.ERROR, S.FAILED, S.COMPLETED], "waiting for reco: 1/3 segments completed; segment 0 error and 1 more (restart or skip it)", True),
    ([S.SKIPPED, S.SKIPPED], "waiting for reco: every segment was skipped", True),
])
def test_the_merge_waits_or_is_blocked_with_a_reason(states, wait, stuck):
    g = merge_gate(seg_tasks(1, states))
    assert (g.wait, g.stuck) == (wait, stuck)


def test_a_skipped_segment_is_left_out_of_the_merge():
    g = merge_gate(seg_tasks(1, [S.COMPLETED, S.SKIPPED, S.COMPLETED]))
    assert not g.wait and g.inputs == ("r1_0", "r1_2")


def test_the_merge_waits_for_the_split_and_is_blocked_when_no_segment_is_found():
    assert merge_gate([Task(run=1, job="reco")]).wait == "waiting for reco (its segments are not found yet)"
    g = merge_gate([Task(run=1, job="reco", state=S.ERROR, error="no segment found (raw/run_1*)")])
    assert g.stuck and "no segment found" in g.wait
    g = merge_gate([Task(run=2, job="reco", seg=0, state=S.COMPLETED)])
    assert g.stuck and g.wait == "waiting for reco (not in the list)"


def test_a_per_segment_job_after_a_per_segment_job_waits_for_its_own_segment():
    j = defs(reco={"per": "segment"}, calib={"per": "segment", "trigger": "after: reco"})
    tasks = seg_tasks(1, [S.COMPLETED, S.RUNNING], outputs=False) + [
        Task(run=1, job="calib", seg=0), Task(run=1, job="calib", seg=1)]
    g = J.gates(tasks, j)
    assert not g["1.calib.0"].wait and g["1.calib.1"].wait == "waiting for reco (running)"


def test_task_key_of_a_segment():
    assert task_key(1, "a", 0) == "1.a.0" and task_key(1, "a") == "1.a"
    assert Segment("x").path == "x"


# ---- folding segment tasks under their run ---------------------------------------------------
def test_segment_tasks_fold_into_one_row_per_run_and_job_that_counts_them():
    from batchman.core import segview as SV
    a = Task(run=1, job="decode")
    segs = seg_tasks(1, [S.COMPLETED, S.FAILED, S.RUNNING, S.COMPLETED])
    m = Task(run=1, job="merge")
    rows = SV.fold([a] + segs + [m])
    assert rows[0] is a and rows[2] is m and isinstance(rows[1], SV.Group)
    g = rows[1]
    assert g.key == "1.reco" and g.summary() == "2/4 segments completed, 1 running, 1 failed"
    assert g.state == S.FAILED            # what needs a person shows first
    assert SV.Group(1, "reco", seg_tasks(1, [S.COMPLETED] * 2)).state == S.COMPLETED
    opened = SV.fold([a] + segs + [m], lambda key: key == "1.reco")
    assert opened[1].key == g.key and opened[2:6] == segs and opened[6] is m
    assert SV.fold([a, m]) == [a, m]
    assert SV.job_label(segs[1]) == "reco[1]" and SV.job_label(a) == "decode"


def test_a_folded_row_shows_the_holds_and_requests_of_its_segment_tasks():
    """A run held whole showed 'unstaged' on its folded row and '[held]' on its merge row only;
    a kill queued for one file's task did not show at all until the daemon carried it out."""
    from batchman.core import segview as SV
    from batchman.tui.tasklist import STATE_W, state_label
    segs = seg_tasks(1, [S.UNSTAGED, S.UNSTAGED, S.RUNNING])
    g = SV.Group(1, "reco", segs)
    assert g.label() == S.RUNNING and g.every() == [] and not g.flags()
    assert g.summary() == "0/3 segments completed, 2 unstaged, 1 running"
    for t in segs:
        t.held = True
    assert g.label() == "running [held]" and g.summary() == "0/3 segments completed, 2 unstaged, 1 running"
    segs[2].request = S.KILL
    assert g.label() == "running [held]" and g.summary() == "1 kill queued; 0/3 segments completed, 2 unstaged, 1 running"
    segs[0].held = False
    assert g.label() == S.RUNNING and g.summary().startswith("1 kill queued, 2 held; 0/3")
    for t in segs:
        t.held, t.request = True, S.RESTART
    assert g.label() == "running [restart,held]" and ";" not in g.summary()
    assert state_label(g) == "running [rst,hld]" and len(state_label(g)) <= STATE_W     # the TUI's column


def test_the_cli_selects_segment_tasks_by_key_and_a_run_key_selects_them_all():
    from batchman.cli.options import named_keys, named_runs, not_in_list, select
    tasks = seg_tasks(2120, [S.RUNNING] * 3) + [Task(run=2120, job="merge"), Task(run=7, job="reco")]
    specs = ("2120.reco.1", "7")
    assert named_keys(specs) == {"2120.reco.1"} and named_runs(specs, None) == {7}
    assert [t.key for t in select(tasks, {7}, keys={"2120.reco.1"})] == ["2120.reco.1", "7.reco"]
    assert [t.key for t in select(tasks, None, keys={"2120.reco"})] == ["2120.reco.0", "2120.reco.1", "2120.reco.2"]
    assert [t.key for t in select(tasks, None, keys={"2120.merge"})] == ["2120.merge"]
    assert len(select(tasks, None)) == 5
    assert not_in_list(tasks, None, {"2120.reco.9"}).startswith("not in the status file: 2120.reco.9")
    assert not_in_list(tasks, None, {"2120.reco"}) == ""


def test_files_that_arrived_after_the_split_are_found_and_get_tasks_that_say_so():
    have = {"5.reco.0": Task(run=5, job="reco", seg=0), "5.reco.1": Task(run=5, job="reco", seg=1, state=S.SKIPPED)}
    found = [(0, "/raw/a.0"), (1, "/raw/a.1"), (2, "/raw/a.2"), (2, "/raw/a.02"), (3, "/raw/a.3")]
    late = J.late_files(5, "reco", found, have)
    assert late == [(2, "/raw/a.2"), (3, "/raw/a.3")]           # a skipped one has its task; a twin left out
    assert J.late_files(5, "reco", found[:2], have) == [] and J.late_files(6, "reco", found[:1], have) == [(0, "/raw/a.0")]
    out = J.split(Task(run=5, job="reco", priority=2), late, have, now=3.0, late=True)
    assert [(t.key, t.segments[0].path, t.reason) for t in out] == [
        ("5.reco.2", "/raw/a.2", "segment 2: its file arrived after 5.reco was split"),
        ("5.reco.3", "/raw/a.3", "segment 3: its file arrived after 5.reco was split")]
    assert all(t.priority == 2 and t.state == S.NEW for t in out)
