"""contrib/systemd: the timer's service runs `batchman watch-daemon` on the instance's directory."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from e2e_helpers import make_experiment

UNITS = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "systemd")


def unit(name: str) -> configparser.ConfigParser:
    c = configparser.ConfigParser(interpolation=None, strict=False)
    c.optionxform = str
    c.read(os.path.join(UNITS, name))
    return c


def test_the_service_command_exits_non_zero_while_runs_wait_for_a_dead_daemon(tmp_path):
    root = tmp_path / "exp"
    make_experiment(root, [1])
    argv = shlex.split(unit("batchman-watch-daemon@.service")["Service"]["ExecStart"].replace("%f", str(root)))
    assert argv[:2] == ["/usr/bin/env", "batchman"]
    argv = [sys.executable, "-m", "batchman.cli.commands"] + argv[2:]     # the venv's batchman
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 1 and "no daemon is alive" in r.stderr


def test_the_timer_starts_its_service_every_few_minutes():
    t = unit("batchman-watch-daemon@.timer")
    assert t["Timer"]["OnUnitActiveSec"] == "5min" and t["Install"]["WantedBy"] == "timers.target"


def test_systemd_accepts_the_units(tmp_path):
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed (Debian: systemd)")
        pytest.skip("systemd-analyze is not installed")
    for suffix in ("service", "timer"):
        shutil.copy(os.path.join(UNITS, f"batchman-watch-daemon@.{suffix}"), tmp_path / f"batchman-watch-daemon@tmp-x.{suffix}")
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "batchman-watch-daemon@tmp-x.service"),
                        str(tmp_path / "batchman-watch-daemon@tmp-x.timer")], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
