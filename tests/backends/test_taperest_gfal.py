"""The Tape REST double is faithful: Debian's real gfal2 client (gfal2-util-scripts +
gfal2-plugin-http, over davix) stages, polls and evicts through it over verified TLS.

Skipped with one line when gfal2 is not installed, except under CI (then it fails)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "doubles"))
from taperest_server import TapeRestDouble  # noqa: E402

GFAL_PYTHON = "/usr/bin/python3"       # gfal2's Python bindings are Debian's, not the venv's


def _gfal_usable() -> str:
    if not shutil.which("gfal-bringonline"):
        return "gfal-bringonline not installed (apt-get install gfal2-util-scripts gfal2-plugin-http)"
    r = subprocess.run([GFAL_PYTHON, "-c", "import gfal2, gfal2_util"], capture_output=True)
    return "" if r.returncode == 0 else f"{GFAL_PYTHON} cannot import gfal2 (python3-gfal2 missing)"


@pytest.fixture(scope="module")
def gfal():
    why = _gfal_usable()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture
def site(tmp_path, gfal, tls):
    (tmp_path / "tape" / "raw").mkdir(parents=True)
    (tmp_path / "disk").mkdir()
    for i in range(3):
        (tmp_path / "tape" / "raw" / f"f{i}").write_text(f"data {i}\n")
    d = TapeRestDouble(str(tmp_path / "tape"), str(tmp_path / "disk"), tls, delay=0.5).start()
    d.env = {**os.environ, "X509_CERT_DIR": tls["ca_dir"], "GFAL_PYTHONBIN": GFAL_PYTHON}
    yield d
    d.stop()


def gfal_run(site, *argv, timeout=60):
    r = subprocess.run(list(argv), env=site.env, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def test_gfal_bringonline_waits_until_the_double_says_ready(site):
    url = f"{site.url}/raw/f0"
    rc, out = gfal_run(site, "gfal-bringonline", "--polling-timeout", "30", url)
    assert rc == 0, out
    assert f"{url} READY" in out
    assert (Path(site.disk) / "raw" / "f0").read_text() == "data 0\n"
    assert [m for m, p in site.log if p.startswith("/api/v1/tape/stage")][:2] == ["POST", "GET"]


def test_gfal_bringonline_of_a_lost_file_fails_with_the_doubles_error(site):
    site.lost.add("/raw/f1")
    rc, out = gfal_run(site, "gfal-bringonline", "--polling-timeout", "30", f"{site.url}/raw/f1")
    assert "LOST" in out and "READY" not in out, out


def test_gfal_archivepoll_reads_archiveinfo(site):
    rc, out = gfal_run(site, "gfal-archivepoll", f"{site.url}/raw/f2")
    assert rc == 0 and "READY" in out, out                     # on tape: archived
    site.lost.add("/raw/f2")
    rc, out = gfal_run(site, "gfal-archivepoll", f"{site.url}/raw/f2")
    assert "READY" not in out, out
    assert ("POST", "/api/v1/tape/archiveinfo/") in site.log


def test_gfal_evict_releases_the_pin(site):
    url = f"{site.url}/raw/f0"
    assert gfal_run(site, "gfal-bringonline", "--polling-timeout", "30", url)[0] == 0
    assert site.pins == {"/raw/f0": 1}
    rc, out = gfal_run(site, "gfal-evict", url)
    assert rc == 0, out
    assert site.pins == {} and not (Path(site.disk) / "raw" / "f0").exists()
