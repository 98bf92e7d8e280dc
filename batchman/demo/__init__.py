"""`batchman demo`: a throw-away experiment run to the end with the local backends."""

from __future__ import annotations

import os
import sys
import tempfile
import time

from tabulate import tabulate

from batchman.page import render as export
from batchman import params as P
from batchman.core import states as S
from batchman.backends.factory import make_batch, make_staging
from batchman.daemon.engine import Engine
from batchman.experiment import open_experiment
from batchman.core.model import Task

HERE = os.path.dirname(os.path.abspath(__file__))
FIRST_RUN = 1000


def create(directory: str, runs: int, speed: float) -> dict:
    """Write batchman.yaml, the fake tape and the analysis; return the special runs."""
    os.makedirs(directory, exist_ok=True)
    raw = os.path.join(directory, "raw")
    os.makedirs(raw, exist_ok=True)
    os.makedirs(os.path.join(directory, "Runtime"), exist_ok=True)
    for i in range(runs):
        run = FIRST_RUN + i
        for seg in range(i % 3 + 1):
            with open(os.path.join(raw, f"run_{run}.dat.{seg}"), "w", encoding="utf-8") as f:
                f.write("event\n" * (100 + 37 * ((run * 7 + seg) % 11)))
    special = {"fail": FIRST_RUN + 7, "incomplete": FIRST_RUN + 11, "slow": FIRST_RUN + 4}
    values = P.defaults()
    values.update({
        "daemon.experiment": "demo", "daemon.delay": max(0.2, 1.0 / speed),
        "daemon.submit_grace": 30.0,
        "staging.local_delay": 0.4 / speed, "staging.limit": 12,
        "batch.command": f"{sys.executable} {os.path.join(HERE, 'analyze.py')}", "batch.args": "{run}",
        "batch.local_slots": 3, "batch.max_jobs": 6,
    })
    with open(os.path.join(directory, P.CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(P.render_yaml(values))
    os.environ.update({"DEMO_SECONDS_PER_SEGMENT": str(1.0 / speed), "DEMO_FAIL_RUN": str(special["fail"]),
                       "DEMO_INCOMPLETE_RUN": str(special["incomplete"]), "DEMO_SLOW_RUN": str(special["slow"])})
    return special


def run_demo(directory: str | None, runs: int, speed: float, say) -> int:
    directory = os.path.abspath(directory or tempfile.mkdtemp(prefix="batchman-demo-"))
    special = create(directory, runs, speed)
    say(f"demo experiment in {directory}")
    say(f"  run {special['fail']} will fail, run {special['incomplete']} will be incomplete, "
        f"run {special['slow']} hangs and is killed and restarted")
    e = open_experiment(directory)
    now = time.time()
    with e.store.transaction("batchman demo") as st:
        st.experiment = "demo"
        for i in range(runs):
            st.tasks.append(Task(run=FIRST_RUN + i, since=now, added_at=now, reason="added"))
            e.store.record(f"{FIRST_RUN + i}.analysis", "", S.NEW, "added", "batchman demo", now)
    eng = Engine(e.params, e.store, make_batch(e.params), make_staging(e.params), mode="demo")
    killed = restarted = False
    t0 = time.time()
    last = ""
    while True:
        rep = eng.run_once()
        st = e.store.read()
        slow = next(t for t in st.tasks if t.run == special["slow"])
        if not killed and slow.state == S.RUNNING:
            _request(e, slow.key, "kill")
            killed = True
            say(f"  [{time.time() - t0:5.1f}s] run {slow.run} is running and hangs: batchman kill {slow.run}")
        elif killed and not restarted and slow.state == S.ABORTED:
            _request(e, slow.key, "restart")
            restarted = True
            say(f"  [{time.time() - t0:5.1f}s] run {slow.run} aborted (killed in {slow.killed_in}): batchman restart {slow.run}")
        c = export.counts(st.tasks)
        line = ", ".join(f"{c[s]} {s}" for s in S.ALL if c.get(s))
        if line != last:
            say(f"  [{time.time() - t0:5.1f}s] {line}")
            last = line
        if not rep.work_left and restarted:
            break
        if time.time() - t0 > 600:
            say("demo: giving up after 10 minutes")
            return 1
        time.sleep(e.params["daemon.delay"])
    eng.unregister()
    st = e.store.read()
    now = time.time()
    say("")
    say(tabulate([export.table_row(t, now) for t in sorted(st.tasks, key=lambda t: t.run)],
                 headers=export.TABLE_HEADERS, missingval="-"))
    html_path = e.params.path("daemon.html_file")
    say("")
    say(f"status page: {html_path}")
    say(f"try: cd {directory} && batchman show {special['incomplete']}   (or batchman list, batchman)")
    return 0


def _request(e, key: str, what: str) -> None:
    with e.store.transaction("batchman demo") as st:
        for t in st.tasks:
            if t.key == key:
                t.request = what
