"""Experiments on disk with the local backends, for end-to-end tests."""

import os
import subprocess
import sys

from batchman.experiment import open_experiment
from batchman import actions

from batchman import params as P

from clusterhelp import poll

ANALYSIS = r"""#!/bin/bash
# test analysis: logs its start, sleeps, counts its files, may fail on purpose; with GO set, it
# first waits until the test writes that file (a job that must run until the test says so)
echo "$BATCHMAN_TASK $BATCHMAN_ATTEMPT $$ start $(date +%s.%N)" >> "$TEST_LOG"
for r in $FAIL_RUNS; do [ "$1" = "$r" ] && { echo "failing on purpose" >&2; exit 3; }; done
[ -z "$GO" ] || until [ -f "$GO" ]; do sleep 0.2; done
sleep "${SLEEP:-0.3}"
n=0; for f in $BATCHMAN_FILES; do [ -f "$f" ] && n=$((n+1)); done
echo "segments_analysed = $n" > "$BATCHMAN_STATS_FILE"
echo "$BATCHMAN_TASK $BATCHMAN_ATTEMPT $$ end $(date +%s.%N)" >> "$TEST_LOG"
"""


def write_config(root, **overrides):
    """A batchman.yaml in ``root`` with the defaults and ``overrides`` ({'batch.max_jobs': 3})."""
    values = P.defaults()
    for k, v in overrides.items():
        values[k.replace("__", ".")] = v
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, P.CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(P.render_yaml(values))
    return P.load(str(root))



def make_experiment(root, runs, segments=2, **overrides):
    root = str(root)
    os.makedirs(os.path.join(root, "raw"), exist_ok=True)
    for r in runs:
        for s in range(segments):
            with open(os.path.join(root, "raw", f"run_{r}.dat.{s}"), "w") as f:
                f.write("x\n")
    with open(os.path.join(root, "analyze"), "w") as f:
        f.write(ANALYSIS)
    os.chmod(os.path.join(root, "analyze"), 0o755)
    cfg = {"daemon.delay": 0.2, "daemon.submit_grace": 20.0}
    cfg.update(overrides)
    write_config(root, **cfg)
    e = open_experiment(root)
    actions.add_runs(e.store, list(runs))
    return e


def env_for(root, **extra):
    env = dict(os.environ)
    env["TEST_LOG"] = os.path.join(str(root), "jobs.log")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def daemon(root, *args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "batchman.daemon", "-C", str(root), *args],
                            env=env or env_for(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def daemon_run(root, *args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "batchman.daemon", "-C", str(root), *args],
                          env=env or env_for(root), capture_output=True, text=True, timeout=timeout)


def job_starts(root):
    """{(task, attempt): number of times the analysis started}."""
    out = {}
    try:
        with open(os.path.join(str(root), "jobs.log")) as f:
            for line in f:
                task, attempt, pid, what, t = line.split()
                if what == "start":
                    out[(task, int(attempt))] = out.get((task, int(attempt)), 0) + 1
    except FileNotFoundError:
        pass
    return out


def wait_for(pred, timeout=60, step=0.1, what="condition", show=None):
    """Poll ``pred`` until it holds (clusterhelp.poll: on timeout it says what it last saw)."""
    return poll(what, pred, timeout, step, show=show)


def read_until(proc, out: list, pred, what: str, timeout: float = 60) -> None:
    """Read ``proc``'s output line by line into ``out`` until ``pred`` holds of all of it; an
    AssertionError with the output if ``proc`` ends first."""
    def step():
        out.append(proc.stdout.readline())
        if not out[-1] and proc.poll() is not None:
            raise AssertionError("the daemon ended: " + "".join(out))
        return pred("".join(out))
    wait_for(step, timeout=timeout, step=0, what=what, show=lambda: "".join(out)[-2000:])


def example_experiment(root, name):
    """``batchman init --example NAME`` in ``root``, then the example's ./make-fake-data, as
    its README says; returns the opened experiment (no runs added yet)."""
    from click.testing import CliRunner
    from batchman.cli.commands import main as cli_main
    root = str(root)
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)            # batch jobs may run as another user
    r = CliRunner().invoke(cli_main, ["-C", root, "init", "--example", name])
    assert r.exit_code == 0, r.output
    cp = subprocess.run([os.path.join(root, "make-fake-data")], cwd=root, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return open_experiment(root)


def env_with_batchman(env):
    """``env`` with this Python's bin directory first on PATH: jobs find `batchman report`."""
    env = dict(env)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def per_file_on(root, backend: str):
    """examples/per-file (issue 18) set up in ``root`` to submit to ``backend`` (slurm,
    gridengine) instead of local processes; returns the opened experiment."""
    e = example_experiment(root, "per-file")
    cfg = os.path.join(str(root), "batchman.yaml")
    with open(cfg) as f:
        text = f.read()
    local = "  backend: local\n  local_slots: 3\n"
    assert local in text, "examples/per-file/batchman.yaml changed: update per_file_on"
    with open(cfg, "w") as f:
        f.write(text.replace(local, f"  backend: {backend}\n  time_limit: 300\n"))
    return open_experiment(str(root))


def assert_per_file_done(tasks, root) -> None:
    """examples/per-file ran to the end: one reco task per file of each run, in segment order,
    each staging and releasing only its own file, one job each; each run's merge got their
    outputs in segment order and wrote the sum."""
    from batchman.core import states as S
    root = str(root)
    assert {t.state for t in tasks} == {S.COMPLETED}, [(t.key, t.state, t.reason) for t in tasks]
    for run in (1001, 1002, 1003, 1004):
        n = run % 3 + 1
        reco = sorted((t for t in tasks if t.run == run and t.job == "reco"), key=lambda t: t.seg)
        assert [t.seg for t in reco] == list(range(n))
        assert [len(t.segments) for t in reco] == [1] * n
        assert [t.counters.get("events") for t in reco] == [100] * n
        merge = [t for t in tasks if t.run == run and t.job == "merge"]
        assert len(merge) == 1 and merge[0].inputs == tuple(os.path.join(root, f"out/reco{run}_{s}.txt") for s in range(n))
        with open(os.path.join(root, "out", f"run{run}.txt")) as f:
            assert f.read() == f"run {run}: {n} segments, {100 * n} events\n"
    ids = [t.job_id for t in tasks]
    assert len(set(ids)) == len(ids), ids
    assert not [f for f in os.listdir(os.path.join(root, "cache")) if f.startswith("run_")]   # all released
