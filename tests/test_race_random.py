"""Issue 15.6: two daemons and a writer interleaved at random, a few hundred seeds.

Every seed runs the real engine and store code (see race_sim.py): daemons started and
killed at crash points the seed chooses, runs added, killed, restarted, held and released,
one ``recover --force``; then nobody dies any more and every run must end. What must hold:
one job per attempt (the ledger each job writes, and the batch system's submissions),
every run ends, no request lost, the status file always parses.

A failing seed is printed; replay it alone with ``BATCHMAN_SEED=N pytest tests/test_race_random.py``.
``BATCHMAN_SEEDS=N`` runs seeds 0..N-1 (default 300), ``BATCHMAN_SEEDS=A-B`` seeds A..B-1.
"""

import os
import shutil
import tempfile
import time

import pytest

import race_sim
from batchman.backends.batch import local  # noqa: F401
from batchman.util import procs
from race_sim import Sim, experiment

SEEDS = int(os.environ.get("BATCHMAN_SEEDS", "300").split("-")[-1])


def seeds() -> list[int]:
    one = os.environ.get("BATCHMAN_SEED")
    span = os.environ.get("BATCHMAN_SEEDS", "")
    if "-" in span:                     # BATCHMAN_SEEDS=300-700: seeds 300..699
        a, b = span.split("-")
        return list(range(int(a), int(b)))
    return [int(one)] if one else list(range(SEEDS))


def test_two_daemons_and_a_writer_at_random(tmp_path, monkeypatch, request):
    # No power cut is simulated (a crash here is a process dying): fsync only costs time.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    monkeypatch.setattr(procs, "pid_alive", race_sim.pid_alive)    # the simulated daemons' processes
    t0 = time.monotonic()
    # Scratch files only: in memory where there is a tmpfs (the disk of a loaded CI machine
    # would set the pace: a rename there can take a millisecond).
    shm = "/dev/shm"
    root = tempfile.mkdtemp(prefix="batchman-race-", dir=shm) if os.access(shm, os.W_OK) else str(tmp_path)
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    e = experiment(root)
    for seed in seeds():
        sim = Sim(e, seed)
        try:
            sim.run()
            sim.check()
        except AssertionError as x:
            steps = "\n  ".join(sim.log[-int(os.environ.get("BATCHMAN_SIM_LOG", "40")):])
            pytest.fail(f"seed {seed}: {x}\n  last steps:\n  {steps}\n"
                        f"replay: BATCHMAN_SEED={seed} python -m pytest tests/test_race_random.py", pytrace=False)
    print(f"{len(seeds())} seeds in {time.monotonic() - t0:.1f} s")
