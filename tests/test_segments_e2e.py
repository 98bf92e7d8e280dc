"""One job per raw file (issue 18): a run with 3 segments gets 3 segment tasks, each staging,
analysing and releasing only its own file, then one merge task after all three; one segment task
killed and restarted on its own. Local backends, real daemon processes."""

import json
import os
import signal

import pytest

from batchman.core import states as S
from batchman.core.model import Task
from batchman.daemon.engine import CRASH_POINTS
from test_jobs_e2e import bm, experiment, script, stop, tasks_of

from e2e_helpers import daemon, daemon_run, env_for, job_starts, wait_for

pytestmark = pytest.mark.slow

LOG = 'echo "$BATCHMAN_TASK $BATCHMAN_ATTEMPT $$ start $(date +%s.%N)" >> "$TEST_LOG"\n'
SEG = "#!/bin/bash\n" + LOG + r"""
echo "$BATCHMAN_TASK seg=$BATCHMAN_SEGMENT files=$BATCHMAN_FILES cache=$(ls cache | tr '\n' ' ')" >> seg.log
[ -n "$SLOW_SEG" ] && [ "$2" = "$SLOW_SEG" ] && [ "$BATCHMAN_ATTEMPT" = 1 ] && sleep 60
mkdir -p out && printf 'reco of %s\n' "$BATCHMAN_FILES" > "out/reco$1_$2.root"
echo "segments_analysed = 1" > "$BATCHMAN_STATS_FILE"
"""
MERGE = "#!/bin/bash\n" + LOG + r"""
printf '%s\n' "${@:2}" > "out/merged$1.root"
"""
JOBS = {
    "reco": {"command": "./seg", "args": "{run} {segment} {files}", "per": "segment",
             "outputs": ["out/reco{run}_{segment}.root"]},
    "merge": {"command": "./merge", "args": "{run} {inputs}", "trigger": "after: reco, all-segments",
              "outputs": ["out/merged{run}.root"]},
}


def setup(tmp_path, jobs=JOBS):
    experiment(tmp_path, [], jobs=jobs)
    for s in (0, 1, 2):
        (tmp_path / "raw" / f"run_2120.dat.{s}").write_text("x\n")
    script(tmp_path, "seg", SEG)
    script(tmp_path, "merge", MERGE)


def test_a_data_complete_per_segment_job_is_split_once_the_runs_files_settled(tmp_path):
    """The README's advice for runs still being written: trigger: data-complete on the per:
    segment job; the daemon makes the run's task once its files settled, then splits it."""
    setup(tmp_path, {**JOBS, "reco": {**JOBS["reco"], "trigger": "data-complete", "settle": 0.5}})
    bm(tmp_path, "watch", "2120")
    d = daemon(tmp_path, "loop", "--forever", env=env_for(tmp_path))
    try:
        wait_for(lambda: getattr(tasks_of(tmp_path).get("2120.merge"), "state", None) == S.COMPLETED, timeout=60,
                 what="the merge of 2120 completed", show=lambda: sorted(tasks_of(tmp_path)))
    finally:
        stop(d)
    ts = tasks_of(tmp_path)
    assert sorted(ts) == ["2120.merge", "2120.reco.0", "2120.reco.1", "2120.reco.2"]
    assert {t.state for t in ts.values()} == {S.COMPLETED}
    assert ts["2120.merge"].inputs == tuple(str(tmp_path / f"out/reco2120_{s}.root") for s in (0, 1, 2))


def test_a_second_file_with_a_taken_segment_number_is_named_in_the_journal_not_dropped_silently(tmp_path):
    setup(tmp_path)
    (tmp_path / "raw" / "run_2120.dat.01").write_text("x\n")     # segment 1 again
    bm(tmp_path, "add", "2120")
    r = daemon_run(tmp_path, "verbose", env=env_for(tmp_path), timeout=90)
    ts = tasks_of(tmp_path)
    assert sorted(ts) == ["2120.merge", "2120.reco.0", "2120.reco.1", "2120.reco.2"]
    kept = ts["2120.reco.1"].segments[0].path
    other = ({str(tmp_path / "raw" / f"run_2120.dat.{s}") for s in ("1", "01")} - {kept}).pop()
    words = f"split into 3 segment task(s); left out, their segment number taken by another file: {other}"
    assert words in r.stdout, r.stdout + r.stderr                          # what the daemon says
    assert words in (tmp_path / "status.json.journal").read_text()         # and keeps
    assert words in " ".join(bm(tmp_path, "show", "2120.reco.0").split())  # where a person looks
    assert "2120.reco.2: created (segment 2 (3 of 3) of 2120.reco)" in r.stdout


def test_a_file_that_arrives_after_the_split_gets_its_task_and_the_merge_waits_for_it(tmp_path):
    """A run still being written with the default trigger: split when its first files are found;
    segment 3's file is written while segment 0 runs. The merge looks at the run's files once more
    before it starts, so segment 3 gets its task and the merge takes its output too."""
    setup(tmp_path)
    late = tmp_path / "raw" / "run_2120.dat.3"
    script(tmp_path, "seg", SEG.replace("mkdir -p out", f'[ "$2" = 0 ] && echo x > {late}\nmkdir -p out'))
    bm(tmp_path, "add", "2120")
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path), timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    ts = tasks_of(tmp_path)
    assert sorted(ts) == ["2120.merge", "2120.reco.0", "2120.reco.1", "2120.reco.2", "2120.reco.3"]
    assert {t.state for t in ts.values()} == {S.COMPLETED}
    assert [x.path for x in ts["2120.reco.3"].segments] == [str(late)]
    assert ts["2120.merge"].inputs == tuple(str(tmp_path / f"out/reco2120_{s}.root") for s in range(4))
    words = "segment 3: its file arrived after 2120.reco was split"
    assert words in (tmp_path / "status.json.journal").read_text()         # kept where a person looks
    assert words in " ".join(bm(tmp_path, "show", "2120.reco.3").split())
    assert job_starts(tmp_path)[("2120.merge", 1)] == 1


def test_three_segments_three_jobs_then_one_merge_each_file_staged_and_released_by_its_task(tmp_path):
    setup(tmp_path)
    assert "added 2 task(s)" in bm(tmp_path, "add", "2120")
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path), timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    ts = tasks_of(tmp_path)
    assert sorted(ts) == ["2120.merge", "2120.reco.0", "2120.reco.1", "2120.reco.2"]
    assert {t.state for t in ts.values()} == {S.COMPLETED}
    for s in (0, 1, 2):
        t = ts[f"2120.reco.{s}"]
        assert t.seg == s and [x.path for x in t.segments] == [str(tmp_path / "raw" / f"run_2120.dat.{s}")]
        assert t.job_name.endswith(f".2120.reco.{s}.1")
    # each job got exactly its own staged file, from its own task
    lines = (tmp_path / "seg.log").read_text().splitlines()
    for s in (0, 1, 2):
        line = next(x for x in lines if x.startswith(f"2120.reco.{s} "))
        assert f"seg={s} files={tmp_path / 'cache' / f'run_2120.dat.{s}'} " in line
    # ... and released it: nothing of the run is left on the cache disk
    assert not [n for n in os.listdir(tmp_path / "cache") if n.startswith("run_2120")]
    merge = ts["2120.merge"]
    assert merge.inputs == tuple(str(tmp_path / "out" / f"reco2120_{s}.root") for s in (0, 1, 2))
    assert (tmp_path / "out" / "merged2120.root").read_text().split() == list(merge.inputs)
    starts = job_starts(tmp_path)
    assert starts[("2120.merge", 1)] == 1 and set(starts.values()) == {1} and len(starts) == 4
    # list folds the run's segment tasks into one line; naming the key (or --segments) unfolds them
    table = bm(tmp_path, "list")
    assert "3/3 segments completed" in table and "reco[1]" not in table and "reco[*]" in table
    merge_line = next(ln for ln in table.splitlines() if " merge " in ln)
    assert merge_line.split()[:2] == ["merge", "-"]     # no file of its own: '-', not '0' segments
    assert "reco[1]" in bm(tmp_path, "list", "2120.reco") and "reco[2]" in bm(tmp_path, "list", "--segments")
    rows = json.loads(bm(tmp_path, "list", "--json"))["tasks"]
    assert [(r["job"], r.get("segment")) for r in rows] == [("reco", 0), ("reco", 1), ("reco", 2), ("merge", None)]
    assert "segment 1" in bm(tmp_path, "show", "2120.reco.1")
    assert "segment 2" in bm(tmp_path, "show", "2120", "--job", "reco", "--segment", "2")


def test_one_segment_task_killed_blocks_the_merge_then_restarted_alone(tmp_path):
    setup(tmp_path)
    bm(tmp_path, "add", "2120")
    d = daemon(tmp_path, "loop", "--forever", env=env_for(tmp_path, SLOW_SEG=1))
    try:
        wait_for(lambda: (ts := tasks_of(tmp_path)).get("2120.reco.1") is not None
                 and ts["2120.reco.1"].state == S.RUNNING
                 and ts["2120.reco.0"].state == ts["2120.reco.2"].state == S.COMPLETED, timeout=40)
        assert "kill queued for 1 task(s)" in bm(tmp_path, "kill", "2120.reco.1")
        wait_for(lambda: tasks_of(tmp_path)["2120.reco.1"].state == S.ABORTED, timeout=30)
        wait_for(lambda: "segment 1 aborted" in tasks_of(tmp_path)["2120.merge"].reason, timeout=10)
        ts = tasks_of(tmp_path)
        assert ts["2120.merge"].state == S.NEW and "2/3 segments completed" in ts["2120.merge"].reason
        assert ts["2120.reco.0"].state == ts["2120.reco.2"].state == S.COMPLETED
        assert "restart queued for 1 task(s)" in bm(tmp_path, "restart", "2120.reco.1")
        wait_for(lambda: tasks_of(tmp_path)["2120.merge"].state == S.COMPLETED, timeout=40)
    finally:
        stop(d)
    ts = tasks_of(tmp_path)
    assert ts["2120.reco.1"].attempt == 2 and [a.state for a in ts["2120.reco.1"].past] == [S.ABORTED]
    assert ts["2120.reco.0"].attempt == ts["2120.reco.2"].attempt == 1
    starts = job_starts(tmp_path)
    assert starts == {("2120.reco.0", 1): 1, ("2120.reco.1", 1): 1, ("2120.reco.2", 1): 1,
                      ("2120.reco.1", 2): 1, ("2120.merge", 1): 1}


def test_recover_rebuilds_segment_tasks_with_their_own_file_and_not_the_split_run_task(tmp_path):
    setup(tmp_path)
    bm(tmp_path, "add", "2120")
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path), timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    for p in ("status.json", "status.json.bak"):
        os.unlink(tmp_path / p)
    assert "recovered 4 task(s)" in bm(tmp_path, "recover")
    ts = tasks_of(tmp_path)
    assert sorted(ts) == ["2120.merge", "2120.reco.0", "2120.reco.1", "2120.reco.2"]
    assert [s.path for s in ts["2120.reco.1"].segments] == [str(tmp_path / "raw" / "run_2120.dat.1")]
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path), timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {t.state for t in tasks_of(tmp_path).values()} == {S.COMPLETED}
    assert set(job_starts(tmp_path).values()) == {1}          # nothing ran twice


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at_each_step_then_restart_each_segment_and_the_merge_run_once(tmp_path, point):
    setup(tmp_path)
    bm(tmp_path, "add", "2120")
    crashed = 0
    for _ in range(40):
        r = daemon_run(tmp_path, "quietone", env=env_for(tmp_path, BATCHMAN_CRASH_AT=point))
        crashed += r.returncode == -signal.SIGKILL
        if crashed >= 3 or tasks_of(tmp_path).get("2120.merge", Task(run=0)).state == S.COMPLETED:
            break
    assert crashed >= 1, f"the daemon never reached {point}"
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path), timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    ts = tasks_of(tmp_path)
    assert sorted(ts) == ["2120.merge", "2120.reco.0", "2120.reco.1", "2120.reco.2"]
    assert {t.state for t in ts.values()} == {S.COMPLETED} and all(t.intent is None for t in ts.values())
    assert job_starts(tmp_path) == {(k, 1): 1 for k in ts}
