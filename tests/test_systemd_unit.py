"""contrib/systemd/batchman-daemon@.service: a template user unit, one daemon per experiment
directory (the instance is the path-escaped directory), restarted on failure, logging to the
journal. Checked by `systemd-analyze verify` where systemd is installed (it is on the CI machine:
there a missing systemd-analyze fails the test), and always by reading its keys."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "contrib" / "systemd" / "batchman-daemon@.service"


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    cur = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            cur = out.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and cur is not None, f"not KEY=VALUE in a section: {line!r}"
        cur.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_keys_one_daemon_per_directory_forever_restarted_in_the_journal():
    assert UNIT.name.endswith("@.service")          # a template: the instance is the directory
    s = sections(UNIT.read_text())
    assert set(s) == {"Unit", "Service", "Install"}
    svc = s["Service"]
    [exec_start] = svc["ExecStart"]
    argv = exec_start.split()
    assert "batchman-daemon" in argv and "--forever" in argv
    assert argv[argv.index("-C") + 1] == "%f"        # %f: the unescaped instance, as an absolute path
    assert svc["WorkingDirectory"] == ["%f"]
    assert svc["Restart"] == ["on-failure"] and svc["Type"] == ["simple"]
    assert svc["StandardOutput"] == ["journal"] and svc["StandardError"] == ["journal"]
    assert svc["KillMode"] == ["process"]            # jobs of the local backend outlive a restart
    assert s["Unit"]["ConditionPathExists"] == ["%f/batchman.yaml"]
    assert s["Install"]["WantedBy"] == ["default.target"]   # a user unit: started with the user manager


def verify(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    rt = tmp_path / "runtime"
    rt.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run(["systemd-analyze", "verify", "--user", "--man=no", str(path)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(rt)})


def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path):
    if shutil.which("systemd-analyze") is None:
        why = "systemd-analyze not installed (Debian: apt-get install systemd); the unit's keys are checked above"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {why}", pytrace=False)
        pytest.skip(why)
    shutil.copy(UNIT, tmp_path / UNIT.name)
    instance = tmp_path / "batchman-daemon@home-me-work-replay.service"
    r = verify(instance, tmp_path)
    ours = [ln for ln in (r.stdout + r.stderr).splitlines() if "batchman-daemon@" in ln]
    assert r.returncode == 0 and ours == [], r.stdout + r.stderr
    # and it would say something about a broken unit (it exits 0 on bad values: read its output)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / UNIT.name).write_text(UNIT.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    r = verify(bad / instance.name, tmp_path)
    assert "restart specifier" in r.stdout + r.stderr
