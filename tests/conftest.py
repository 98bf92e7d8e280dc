import contextlib
import os
import sys
from pathlib import Path

import pytest

# Every write of the status file in the tests (and in the daemons and commands they start) is
# checked against the file: the change it appends must be all that changed (issue 18's change
# log; batchman/store/compact.py:check_write).
os.environ.setdefault("BATCHMAN_STORE_CHECK", "1")

from clusterhelp import cluster_turn, gridengine_wait_answers, read_env_sh, slurm_wait_answers  # noqa: E402
from source_watch import section, stamp  # noqa: E402


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = (os.path.join(ROOT, "batchman"), os.path.join(ROOT, "tests"))
_AT_START = stamp(*SOURCES)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test names the sources written since the session started: the processes it
    started may have run other code than this one (tests/source_watch.py)."""
    report = (yield).get_result()
    if report.failed:
        written = section(_AT_START, *SOURCES)
        if written:
            report.sections.append(written)


def pytest_terminal_summary(terminalreporter):
    """The same at the end, failures or not: tests that passed may have run the edited text."""
    written = section(_AT_START, *SOURCES)
    if written:
        terminalreporter.write_sep("=", written[0], yellow=True)
        terminalreporter.write_line(written[1])


@pytest.fixture(autouse=True)
def _changes_not_carried_over():
    """Each test leaves no task in ``model.CHANGED`` (the tasks changed in place since a
    store last wrote them). A test that changes tasks without writing them (the pure ones, by the
    thousand) left them there, held for ever (up to store/changes.forget_stale's 100,000), and
    every later store write in the session walked them all: a test late in the suite ran up to
    8x slower than alone (test_race_random: 252 s in the suite, 31 s alone)."""
    from batchman.core import model
    yield
    model.CHANGED.clear()


@pytest.fixture(autouse=True)
def _collector_as_found():
    """Each test leaves the cyclic garbage collector as it found it. ``batchman-daemon oneshot``
    switches it off to its end (a process about to exit: daemon/main._run); run in the test
    process, it stayed off for the rest of the session, and a later test that checks the daemon
    switches it on again after an iteration (test_engine_survey) failed after test_oneshot."""
    import gc
    was = gc.isenabled()
    yield
    if was:
        gc.enable()


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A test CA and a server certificate for the HTTPS doubles (tests/doubles/taperest_server.py:
    two RSA keys by openssl, ~1 s): made once a session, only read by the tests (ca_dir, ca, cert, key)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "doubles"))
    from taperest_server import make_tls
    return make_tls(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def python():
    return sys.executable


@pytest.fixture
def exp_dir(tmp_path, monkeypatch):
    """A fresh experiment made by ``batchman init``, and the current directory."""
    from click.testing import CliRunner
    from batchman.cli.commands import main
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["init"])
    assert r.exit_code == 0, r.output
    return tmp_path


SLURM_DIR = Path(os.environ.get("BATCHMAN_SLURM_DIR", "/tmp/batchman-slurm"))
GE_DIR = Path(os.environ.get("BATCHMAN_GE_DIR", "/tmp/batchman-gridengine"))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """A real-cluster test waits for its turn on the shared cluster (alone if it stops a daemon,
    marker ``cluster_outage``) and, in CI, for the cluster to answer -- before pytest-timeout's
    clock starts (tryfirst: this wrapper is outside its), so another session's outage is waited
    out instead of failing this test."""
    with contextlib.ExitStack() as stack:
        exclusive = item.get_closest_marker("cluster_outage") is not None
        wait = 300.0 if os.environ.get("CI") else 0.0
        # (nothing may raise here: a hook wrapper that raises breaks the session. A cluster that
        # stays down fails the test's own fixtures, with their message.)
        with contextlib.suppress(AssertionError, OSError):
            if item.get_closest_marker("slurm") and (SLURM_DIR / "env.sh").exists():
                stack.enter_context(cluster_turn(SLURM_DIR / "tests.lock", exclusive))
                if wait:
                    slurm_wait_answers(read_env_sh(SLURM_DIR / "env.sh"), timeout=wait)
            if item.get_closest_marker("gridengine") and GE_DIR.is_dir():
                stack.enter_context(cluster_turn(GE_DIR / "tests.lock", exclusive))
                if wait:
                    gridengine_wait_answers(timeout=wait)
        yield


@pytest.fixture
def tmux():
    """``tmux(*args)`` on a server of this test's own, killed after it (a real terminal: the
    TUI end to end, a daemon's terminal that closes)."""
    import shutil
    import subprocess
    import time
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed; the end-to-end terminal tests need it in CI")
        pytest.skip("tmux not installed")
    sock = f"batchman-test-{os.getpid()}-{time.time_ns()}"

    def t(*args, check=True):
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=check, timeout=10)
    yield t
    t("kill-server", check=False)
