"""Several jobs per run, end to end with the local backends: on-add and after: jobs, a failed
upstream whose dependent never starts, missing outputs, data-complete runs appearing one by
one, an ARP-style script reporting a counter, manual re-triggers, datasets, abort all, and
triggers under SIGKILL."""

import json
import os
import signal
import sys
import time

import pytest
from click.testing import CliRunner

from batchman.core import states as S
from batchman.cli.commands import main as cli
from batchman.experiment import open_experiment
from batchman.core.model import decode
from batchman import params as P

from e2e_helpers import daemon, daemon_run, env_for, job_starts, wait_for

pytestmark = pytest.mark.slow

LOG = 'echo "$BATCHMAN_TASK $BATCHMAN_ATTEMPT $$ start $(date +%s.%N)" >> "$TEST_LOG"\n'
RECO = "#!/bin/bash\n" + LOG + r"""
[ "$1" = "7" ] && { echo "reco fails on purpose" >&2; exit 3; }
sleep "${SLEEP:-0.2}"
[ "$1" = "13" ] && exit 0            # exit 0 but no output: missing-outputs
mkdir -p out/v2 && printf 'tree of run %s from %s\n' "$1" "$BATCHMAN_FILES" > "$(printf 'out/v2/tree%05d.root' "$1")"
"""
HIST = "#!/bin/bash\n" + LOG + r"""
for f in "${@:2}"; do [ -s "$f" ] || { echo "no input $f" >&2; exit 4; }; done
[ "$#" -ge 2 ] || { echo "no inputs" >&2; exit 5; }
printf 'hist of %s\n' "$2" > "$(printf 'out/hist%05d.root' "$1")"
"""
QUICK = "#!/bin/bash\n" + LOG + 'echo "$RUN_NUM $BATCHMAN_FILES" >> quick.log\n'
# ARP's example pair: the submit wrapper (here it runs the script instead of calling sbatch) and
# arp_actual.py, unchanged but for its reporting call (batchman report instead of a POST).
ARP_SUBMIT = "#!/bin/bash\n" + LOG + 'exec ./arp_actual.py "$@"\n'
ARP_ACTUAL = """#!{python}
import os, subprocess, sys, time, logging
logging.basicConfig(level=logging.DEBUG)
logger = logging.getLogger(__name__)
logger.debug("EXPERIMENT=%s RUN_NUM=%s", os.environ["EXPERIMENT"], os.environ["RUN_NUM"])
loop_count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
for i in range(loop_count):
    time.sleep(1)
    subprocess.run([sys.executable, "-m", "batchman.cli", "report", f"Counter={{i + 1}}"], check=True)
logger.debug("Done with job execution")
"""

JOBS = {
    "reco": {"command": "./reco", "args": "{run} {files}", "params": {"version": 2},
             "outputs": ["out/v{version}/tree{run:05d}.root"], "max_running": 4},
    "hist": {"command": "./hist", "args": "{run} {files}", "trigger": "after: reco", "needs_staging": False,
             "outputs": ["out/hist{run:05d}.root"]},
    "quick": {"command": "./quick", "trigger": "data-complete", "settle": 1, "watch": "100-199"},
    "arp": {"command": "./arp_submit.sh", "args": "{loops}", "params": {"loops": 4}, "trigger": "manual",
            "needs_staging": False},
}


def script(root, name, text):
    path = os.path.join(root, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def raw(root, run, segments=2):
    for s in range(segments):
        with open(os.path.join(root, "raw", f"run_{run}.dat.{s}"), "w") as f:
            f.write("x\n")


def experiment(root, runs, jobs=JOBS, **overrides):
    root = str(root)
    os.makedirs(os.path.join(root, "raw"), exist_ok=True)
    for r in runs:
        raw(root, r)
    for name, text in (("reco", RECO), ("hist", HIST), ("quick", QUICK), ("arp_submit.sh", ARP_SUBMIT),
                       ("arp_actual.py", ARP_ACTUAL.format(python=sys.executable))):
        script(root, name, text)
    values = P.defaults()
    values.update({"daemon.delay": 0.2, "daemon.submit_grace": 20.0, "batch.local_slots": 8,
                   "staging.cache_dir": "cache", "batch.max_submit_per_iteration": 0})
    values.update(overrides)
    with open(os.path.join(root, P.CONFIG_NAME), "w") as f:
        f.write(P.render_yaml(values, jobs))
    return open_experiment(root)


def bm(root, *args, input=None):
    r = CliRunner().invoke(cli, ["-C", str(root), *args], input=input)
    assert r.exit_code == 0, r.output
    return r.output


def tasks_of(root):
    return {t.key: t for t in decode((root / "status.json").read_bytes()).tasks}


def stop(d):
    d.send_signal(signal.SIGTERM)
    d.communicate(timeout=30)


def test_reco_then_hist_for_20_runs_data_complete_arp_counter_and_manual_retrigger(tmp_path):
    runs = list(range(1, 21))
    experiment(tmp_path, runs)
    out = bm(tmp_path, "add", "1-20")
    assert "added 40 task(s)" in out                       # reco (on-add) and hist (after reco) per run
    listed = json.loads(bm(tmp_path, "list", "--json"))["tasks"]
    assert [(r["run"], r["job"]) for r in listed[:4]] == [(1, "reco"), (1, "hist"), (2, "reco"), (2, "hist")]

    d = daemon(tmp_path, "loop", "--forever", env=env_for(tmp_path, SLEEP=0.2))
    try:
        # data-complete: runs appear one by one in the watched directory; each gets its task once settled
        for run in (101, 102, 103):
            raw(tmp_path, run)
            wait_for(lambda: f"{run}.quick" in tasks_of(tmp_path), timeout=20)
            assert not any(f"{r}.quick" in tasks_of(tmp_path) for r in (run + 1, run + 2))
        # an ARP-style job triggered by hand: its counter rises in `batchman list --json` while it runs
        assert "created 1 task(s): 5" in bm(tmp_path, "run", "5", "--job", "arp")
        seen = []

        def counter():
            rows = json.loads(bm(tmp_path, "list", "5", "--job", "arp", "--json"))["tasks"]
            c = rows[0]["counters"].get("Counter")
            if rows[0]["state"] == S.RUNNING and c is not None and c not in seen:
                seen.append(c)
            return len(seen) >= 2 or rows[0]["state"] == S.COMPLETED
        wait_for(counter, timeout=30, step=0.3)
        assert len(seen) >= 2 and seen == sorted(seen), seen

        def settled():
            ts = tasks_of(tmp_path)
            return len(ts) == 44 and all(t.state in S.TERMINAL or (t.job == "hist" and t.run in (7, 13))
                                         for t in ts.values()) and ts
        ts = wait_for(settled, timeout=60, step=0.3)
        # triggered again by hand: a new execution, the first one kept in the history
        assert "triggered again 1" in bm(tmp_path, "run", "5", "--job", "arp")
        wait_for(lambda: (t := tasks_of(tmp_path)["5.arp"]).state == S.COMPLETED and t.attempt == 2, timeout=30)
    finally:
        stop(d)
    ts = tasks_of(tmp_path)
    state = {k: t.state for k, t in ts.items()}
    assert state["7.reco"] == S.FAILED and ts["7.reco"].failure == "exit-nonzero"
    assert state["13.reco"] == S.FAILED and ts["13.reco"].failure == "missing-outputs"
    assert "out/v2/tree00013.root is missing" in ts["13.reco"].reason
    for r in (7, 13):       # the dependent of a failed reco never starts, and says why
        assert state[f"{r}.hist"] == S.NEW and ts[f"{r}.hist"].reason == "waiting for reco (failed)"
    ok = [r for r in runs if r not in (7, 13)]
    assert all(state[f"{r}.reco"] == S.COMPLETED and state[f"{r}.hist"] == S.COMPLETED for r in ok)
    assert ts["3.reco"].outputs == (str(tmp_path / "out/v2/tree00003.root"),)
    assert ts["3.hist"].inputs == ts["3.reco"].outputs and ts["3.hist"].segments == []
    assert ts["3.hist"].outputs == (str(tmp_path / "out/hist00003.root"),)
    assert {state[f"{r}.quick"] for r in (101, 102, 103)} == {S.COMPLETED} and "1.quick" not in state
    arp = ts["5.arp"]
    assert arp.counters["Counter"] == 4 and [a.n for a in arp.past] == [1] and arp.past[0].state == S.COMPLETED
    # every (task, attempt) started exactly once; the hists of 7 and 13 never
    starts = job_starts(tmp_path)
    assert set(starts.values()) == {1}
    assert ("7.hist", 1) not in starts and ("13.hist", 1) not in starts
    assert {k for k, _ in starts} == {k for k, t in ts.items() if t.attempt}
    # the ARP script saw ARP's environment
    log = (tmp_path / "logs" / "5.arp.1.err").read_text()
    assert f"EXPERIMENT={tmp_path.name} RUN_NUM=5" in log and "Done with job execution" in log
    # show and the page name the outputs; list groups by run
    shown = bm(tmp_path, "show", "3", "--job", "reco")
    assert "outputs (1):" in shown and "tree00003.root" in shown
    page = (tmp_path / "status.html").read_text()
    assert "tree00003.root" in page and "waiting for reco (failed)" in page
    table = bm(tmp_path, "list", "7")
    assert "reco" in table and "hist" in table and "waiting for reco (failed)" in table
    # a failed upstream is no work for a daemon: it stops instead of waiting forever
    r = daemon_run(tmp_path, "loop", timeout=60)
    assert r.returncode == 0 and "nothing left to track" in r.stdout


def test_datasets_filter_add_list_and_the_daemon(tmp_path):
    jobs = {"reco": {"command": "./reco", "args": "{run}"}}
    experiment(tmp_path, [1, 2, 3, 4], jobs=jobs)
    (tmp_path / "runs.txt").write_text("# AlCap datasets\nrun dataset quality\n1 SiR2 gold\n2,SiR2,silver\n"
                                       "3 Al50b gold\n4 Al50b gold\n")
    assert "added 3 task(s): 1,3-4" in bm(tmp_path, "add", "--file", str(tmp_path / "runs.txt"), "--where", "quality=gold",
                                        "--dataset", "SiR2", "--dataset", "Al50b")
    assert "added 1 task(s): 2" in bm(tmp_path, "add", "--file", str(tmp_path / "runs.txt"))
    rows = json.loads(bm(tmp_path, "list", "--dataset", "SiR2", "--json"))["tasks"]
    assert [(r["run"], r["meta"]) for r in rows] == [(1, {"dataset": "SiR2", "quality": "gold"}),
                                                    (2, {"dataset": "SiR2", "quality": "silver"})]
    r = daemon_run(tmp_path, "loop", "--dataset", "SiR2", env=env_for(tmp_path, SLEEP=0.1), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    state = {t.run: t.state for t in tasks_of(tmp_path).values()}
    assert state == {1: S.COMPLETED, 2: S.COMPLETED, 3: S.NEW, 4: S.NEW}
    bm(tmp_path, "kill", "--dataset", "Al50b", "--yes")
    daemon_run(tmp_path, "oneshot", timeout=60)
    assert {t.run: t.state for t in tasks_of(tmp_path).values()} == {1: S.COMPLETED, 2: S.COMPLETED,
                                                                     3: S.ABORTED, 4: S.ABORTED}


def test_kill_all_cancels_jobs_and_staging_releases_files_and_says_where_each_was(tmp_path):
    jobs = {"reco": {"command": "./reco", "args": "{run} {files}"}}
    runs = list(range(1, 9))
    experiment(tmp_path, runs, jobs=jobs, **{"batch.max_jobs": 2, "staging.limit": 8, "staging.local_delay": 0.4})
    bm(tmp_path, "add", "1-8")
    d = daemon(tmp_path, "loop", env=env_for(tmp_path, SLEEP=60))
    try:
        wait_for(lambda: sum(t.state == S.RUNNING for t in tasks_of(tmp_path).values()) == 2, timeout=30)
        r = CliRunner().invoke(cli, ["-C", str(tmp_path), "kill", "--all"])
        assert r.exit_code == 1 and "add --yes" in r.output and "2 with a batch job" in r.output
        def stable():       # 2 running, 2 staged (the staging limit is 8 segments), 4 waiting for room
            a = {k: t.state for k, t in tasks_of(tmp_path).items()}
            time.sleep(0.6)
            settled = S.STAGING not in a.values()      # a copy in flight is not settled, however slow the disk
            return a if settled and a == {k: t.state for k, t in tasks_of(tmp_path).items()} else None
        before = wait_for(stable, timeout=30)
        assert sorted(before.values()) == sorted([S.RUNNING] * 2 + [S.STAGED] * 2 + [S.UNSTAGED] * 4)
        assert "kill queued for 8 task(s)" in bm(tmp_path, "kill", "--all", "--yes")
        wait_for(lambda: all(t.state == S.ABORTED for t in tasks_of(tmp_path).values()), timeout=30)
        d.communicate(timeout=30)       # nothing left: the daemon ends by itself
    finally:
        if d.poll() is None:
            stop(d)
    ts = tasks_of(tmp_path)
    assert {k: t.killed_in for k, t in ts.items()} == before
    assert all(t.intent is None for t in ts.values())
    # no job left running: every started job's process is gone and none reached its end
    pids = [int(line.split()[2]) for line in (tmp_path / "jobs.log").read_text().splitlines()]
    assert len(pids) == 2
    for pid in pids:
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
                 timeout=10)
    # staging cancelled and every file released: the cache is empty
    cache = tmp_path / "cache"
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file() and "pending" not in str(p)]


@pytest.mark.parametrize("point", ["after-observe", "after-intent", "before-record"])
def test_triggers_create_each_task_once_even_with_sigkill_and_two_daemons(tmp_path, point):
    jobs = {"quick": {"command": "./quick", "trigger": "data-complete", "settle": 0},
            "after": {"command": "./quick", "trigger": "after: quick", "needs_staging": False}}
    runs = [1, 2, 3]
    experiment(tmp_path, runs, jobs=jobs)
    for _ in range(3):
        r = daemon_run(tmp_path, "quietone", env=env_for(tmp_path, BATCHMAN_CRASH_AT=point))
        assert r.returncode in (0, -signal.SIGKILL)
    ds = [daemon(tmp_path, "loop") for _ in range(2)]
    for x in ds:
        x.communicate(timeout=60)
    st = decode((tmp_path / "status.json").read_bytes())
    keys = sorted(t.key for t in st.tasks)
    assert keys == sorted(f"{r}.{j}" for r in runs for j in ("quick", "after"))      # no duplicate
    assert {t.state for t in st.tasks} == {S.COMPLETED}
    assert set(job_starts(tmp_path).values()) == {1}
