"""The Prometheus text file: written by a real daemon run, parsed by the official client's
parser, and served by Debian's prometheus-node-exporter through its textfile collector."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from batchman.core import states as S
from batchman.core.model import Attempt, Daemon, Status, Task
from batchman.notify import metrics as M

from receivers import free_port
from e2e_helpers import daemon_run, env_for, make_experiment

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


def samples(text: str) -> dict:
    """{(name, frozenset(labels without experiment)): value}"""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = {k: v for k, v in s.labels.items() if k != "experiment"}
            out[(s.name, frozenset(labels.items()))] = s.value
    return out


def test_families_from_a_status(tmp_path):
    st = Status(tasks=[Task(run=1, state=S.COMPLETED, finished_at=5.0),
                       Task(run=2, state=S.FAILED, failure_class="out-of-memory", finished_at=6.0,
                            past=(Attempt(n=1, state=S.FAILED, failure_class="timeout", finished_at=3.0),)),
                       Task(run=3, state=S.RUNNING)],
                daemons=[Daemon("h:1", "h", 1, 0.0, 1234.5)], batch_unreachable_since=1.0)
    tot = M.Totals()
    records = [SimpleNamespace(argv=["/usr/bin/squeue", "-h"], returncode=0, error=""),
               SimpleNamespace(argv=["squeue"], returncode=None, error="timed out")]
    eng = SimpleNamespace(batch=SimpleNamespace(command_records=lambda: records),
                          staging=SimpleNamespace(command_records=lambda: []),
                          pacing=SimpleNamespace(next_query=130.0), query_failures=2)
    rep = SimpleNamespace(transitions=["a", "b"], seconds_total=0.25, lock_max=0.01)
    tot.add(eng, rep)
    path = str(tmp_path / "m" / "batchman.prom")
    M.write(path, M.families(st, "exp", tot, eng, rep, 100.0, ["stalled"]))
    got = samples(open(path).read())
    assert got[("batchman_tasks", frozenset({("state", "failed"), ("job", "analysis")}))] == 1
    assert got[("batchman_tasks", frozenset({("state", "queued"), ("job", "analysis")}))] == 0
    assert got[("batchman_attempts_total", frozenset({("failure_class", "out-of-memory")}))] == 1
    assert got[("batchman_attempts_total", frozenset({("failure_class", "timeout")}))] == 1
    assert got[("batchman_attempts_total", frozenset({("failure_class", "none")}))] == 1
    assert got[("batchman_transitions_total", frozenset())] == 2
    assert got[("batchman_commands_total", frozenset({("system", "batch"), ("command", "squeue")}))] == 2
    assert got[("batchman_command_failures_total", frozenset({("system", "batch"), ("command", "squeue")}))] == 1
    assert got[("batchman_batch_unreachable", frozenset())] == 1
    assert got[("batchman_batch_query_backoff_seconds", frozenset())] == 30
    assert got[("batchman_daemon_heartbeat_timestamp_seconds", frozenset({("daemon", "h:1")}))] == 1234.5
    assert got[("batchman_alerts_active", frozenset({("condition", "stalled")}))] == 1
    assert not [f for f in os.listdir(tmp_path / "m") if f != "batchman.prom"]     # no temp left behind


@pytest.fixture
def node_exporter(tmp_path):
    if NODE_EXPORTER is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus-node-exporter is not installed (.ci/run installs it)")
        pytest.skip("prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)")
    d = tmp_path / "textfile"
    d.mkdir()
    port = free_port()
    p = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
                          "--collector.textfile", f"--collector.textfile.directory={d}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield d, url
    finally:
        p.terminate()
        p.wait(10)


@pytest.mark.slow
def test_node_exporter_serves_what_a_daemon_run_wrote(tmp_path, node_exporter):
    d, url = node_exporter
    prom = str(d / "batchman.prom")
    e = make_experiment(tmp_path / "exp", [1, 2, 3], **{"metrics.textfile": prom, "batch.local_slots": 2})
    r = daemon_run(tmp_path / "exp", "loop", env=env_for(tmp_path / "exp", FAIL_RUNS="2", SLEEP=0.2))
    assert r.returncode == 0, r.stdout
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    got = samples(text)
    assert got[("node_textfile_scrape_error", frozenset())] == 0
    assert got[("batchman_tasks", frozenset({("state", "completed"), ("job", "analysis")}))] == 2
    assert got[("batchman_tasks", frozenset({("state", "failed"), ("job", "analysis")}))] == 1
    assert got[("batchman_attempts_total", frozenset({("failure_class", "exit-nonzero")}))] == 1
    st = e.store.read()
    assert got[("batchman_iterations_total", frozenset())] >= 2
    assert got[("batchman_transitions_total", frozenset())] >= 3 * 4       # new -> ... -> completed/failed
    assert ("batchman_iteration_seconds", frozenset()) in got and st.tasks
