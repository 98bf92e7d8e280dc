"""Nothing lost, nothing twice: the daemon SIGKILLed at every step of an iteration, then restarted."""

import random
import signal
import time

import pytest

from batchman.core import states as S
from batchman.daemon.engine import CRASH_POINTS
from batchman.core.model import decode

from e2e_helpers import daemon, daemon_run, env_for, job_starts, make_experiment

pytestmark = pytest.mark.slow
RUNS = [1, 2, 3, 4]


# The status kept as a file plus a change log (issue 18) at this small size, folded at every
# daemon's end: every crash point of an iteration, and the two of a compaction.
LOG_MODE = {"BATCHMAN_STORE_LOG_FROM": "0", "BATCHMAN_STORE_COMPACT_MIN": "0"}
COMPACT_POINTS = ("compact-written", "compact-file-renamed")


def check_end_state(tmp_path, e):
    decode((tmp_path / "status.json").read_bytes())     # the file parses
    st = e.store.read()                                  # with its change log, if any
    assert {t.run: t.state for t in st.tasks} == {r: S.COMPLETED for r in RUNS}
    assert all(t.intent is None for t in st.tasks)
    assert all(t.attempt == 1 for t in st.tasks)
    # each run's analysis started exactly once: never submitted twice, none forgotten
    assert job_starts(tmp_path) == {(f"{r}.analysis", 1): 1 for r in RUNS}


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at_each_step_then_restart(tmp_path, point):
    sigkill_then_restart(tmp_path, BATCHMAN_CRASH_AT=point)


@pytest.mark.parametrize("point", CRASH_POINTS + COMPACT_POINTS)
def test_sigkill_at_each_step_with_a_change_log(tmp_path, monkeypatch, point):
    from batchman.store import store as store_mod
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)        # this process's reads and checks alike
    monkeypatch.setattr(store_mod, "COMPACT_MIN", 0)
    where = "BATCHMAN_STORE_CRASH" if point in COMPACT_POINTS else "BATCHMAN_CRASH_AT"
    sigkill_then_restart(tmp_path, **LOG_MODE, **{where: point})
    assert (tmp_path / "status.json.log").exists()      # the log was in use


def sigkill_then_restart(tmp_path, **crash_env):
    point = next(v for k, v in crash_env.items() if "CRASH" in k)
    e = make_experiment(tmp_path, RUNS, **{"batch.local_slots": 4})
    crashed = 0
    for _ in range(40):
        r = daemon_run(tmp_path, "quietone", env=env_for(tmp_path, SLEEP=0.3, **crash_env))
        if r.returncode == -signal.SIGKILL:
            crashed += 1
            if crashed >= 3:
                break
        st = e.store.read()
        if all(t.state == S.COMPLETED for t in st.tasks):
            break
        time.sleep(0.1)
    assert crashed >= 1, f"the daemon never reached {point}"
    assert not e.store.is_locked()               # the kernel dropped the dead daemon's lock
    clean_env = {k: v for k, v in crash_env.items() if "CRASH" not in k}
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path, SLEEP=0.3, **clean_env))
    assert r.returncode == 0, r.stdout + r.stderr
    check_end_state(tmp_path, e)


def test_sigkill_at_random_moments(tmp_path):
    e = make_experiment(tmp_path, RUNS, **{"batch.local_slots": 2, "staging.local_delay": 0.1, "daemon.delay": 0.1})
    rng = random.Random(7)
    for _ in range(12):
        d = daemon(tmp_path, "loop", env=env_for(tmp_path, SLEEP=0.4))
        time.sleep(rng.uniform(0.05, 0.6))
        d.send_signal(signal.SIGKILL)
        d.communicate()
        decode((tmp_path / "status.json").read_bytes())   # parses after every kill
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path, SLEEP=0.4))
    assert r.returncode == 0
    check_end_state(tmp_path, e)
