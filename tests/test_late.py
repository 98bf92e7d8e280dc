"""Files of a split run that arrive after the split (daemon/late.py, issue 18): looked at once more
when the run's all-segments step could start; found ones noted for Engine._split, the step's gate
closed meanwhile."""

from batchman.core import jobs as J
from batchman.core import states as S
from batchman.core.model import Segment, Status, Task
from batchman.daemon.late import Late, add
from test_jobs_e2e import experiment
from test_segments_e2e import JOBS


def status_of(root, states=(S.COMPLETED, S.COMPLETED)):
    tasks = [Task(run=2120, job="reco", seg=s, state=st, priority=4, segments=(Segment(str(root / "raw" / f"run_2120.dat.{s}")),),
                  outputs=(f"out/reco2120_{s}.root",)) for s, st in enumerate(states)]
    return Status(tasks=tasks + [Task(run=2120, job="merge", state=S.NEW)])


def files(root, *segs):
    for s in segs:
        (root / "raw" / f"run_2120.dat.{s}").write_text("x\n")


def look(late, e, st, only=None):
    gates = J.gates(st.tasks, e.params.jobs)
    late.look(st, gates, e.params.jobs, e.params, only)
    return gates["2120.merge"]


def test_a_late_file_closes_the_steps_gate_and_becomes_a_segment_task(tmp_path):
    e = experiment(tmp_path, [], jobs=JOBS)
    files(tmp_path, 0, 1, 2)
    st, late = status_of(tmp_path), Late()
    g = look(late, e, st)
    assert g.wait == "waiting for reco: 1 file(s) found after its run was split" and not g.stuck
    assert late.found == {"2120.reco": ("2120.reco.0", [(2, str(tmp_path / "raw" / "run_2120.dat.2"))])}
    out = add(late, st, now=7.0)
    assert [(t.key, t.state, t.priority, [s.path for s in t.segments]) for t in out] == [
        ("2120.reco.2", S.NEW, 4, [str(tmp_path / "raw" / "run_2120.dat.2")])]
    assert out[0].reason == "segment 2: its file arrived after 2120.reco was split" and late.found == {}


def test_looked_at_once_per_count_of_completed_segments_and_not_while_some_run(tmp_path):
    e = experiment(tmp_path, [], jobs=JOBS)
    files(tmp_path, 0, 1)
    late = Late()
    assert look(late, e, status_of(tmp_path, (S.COMPLETED, S.RUNNING))).wait        # not ready: no look
    assert late.looked == {}
    assert look(late, e, status_of(tmp_path)).wait == "" and late.found == {}        # ready, nothing late
    files(tmp_path, 2)
    assert look(late, e, status_of(tmp_path)).wait == "" and late.found == {}        # looked at already
    st = status_of(tmp_path, (S.COMPLETED, S.COMPLETED, S.COMPLETED))
    files(tmp_path, 3)
    assert "1 file(s) found" in look(late, e, st).wait                               # more completed: again


def test_a_step_the_daemon_does_not_take_is_not_looked_at(tmp_path):
    e = experiment(tmp_path, [], jobs=JOBS)
    files(tmp_path, 0, 1, 2)
    late = Late()
    assert look(late, e, status_of(tmp_path), only=lambda t: t.run != 2120).wait == ""
    assert late.found == {} and late.looked == {}
    st = status_of(tmp_path)
    look(late, e, st)
    st.tasks = [t for t in st.tasks if t.key != "2120.reco.0"]     # the sibling went meanwhile (purged)
    assert add(late, st, now=1.0) == []
