"""TapeRestStaging: the pure builders/parsers on literal JSON, then the backend against the HTTPS
double (tests/doubles/taperest_server.py) in each of its fault modes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from batchman.backends.base import BackendUnavailable, Rejected
from batchman.backends.staging import taperest_api as api
from batchman.backends.staging.remote import remote_path
from batchman.backends.staging.taperest import TapeRestStaging

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "doubles"))
from taperest_server import TapeRestDouble  # noqa: E402

# ------------------------------------------------------------------------------------------------
# pure

STATUS = """{"id": "r1", "createdAt": 1, "startedAt": 2, "files": [
  {"path": "/d/a", "state": "COMPLETED", "onDisk": true},
  {"path": "//d/b/", "state": "STARTED", "onDisk": false},
  {"path": "/d/c", "state": "FAILED", "error": "tape drive ate it"},
  {"path": "/d/e", "state": "CANCELLED"}]}"""


def test_stage_body_keeps_the_order_and_parsers_read_the_spec_shapes():
    assert api.stage_body(["/z", "/a"]) == {"files": [{"path": "/z"}, {"path": "/a"}]}
    assert api.stage_body(["/z"], "P1D") == {"files": [{"path": "/z", "diskLifetime": "P1D"}]}
    req = api.parse_stage_status(STATUS, "r1")
    got = {p: api.classify(fs) for p, fs in req.files.items()}
    assert got == {"/d/a": ("present", ""), "/d/b": ("pending", ""),
                   "/d/c": ("failed", "tape drive ate it"), "/d/e": ("", "")}
    assert api.parse_stage_created('{"requestId": "abc"}') == "abc"
    with pytest.raises(api.ApiError, match="requestId"):
        api.parse_stage_created("{}")


def test_discovery_picks_v1_and_says_which_versions_exist():
    doc = '{"endpoints": [{"uri": "https://x/v0", "version": "v0"}, {"uri": "https://x/api/v1", "version": "v1"}]}'
    assert api.parse_discovery(doc) == "https://x/api/v1"
    with pytest.raises(api.ApiError, match="no v1 endpoint.*v0"):
        api.parse_discovery('{"endpoints": [{"uri": "u", "version": "v0"}]}')
    assert api.discovery_url("https://h:8443/some/path") == "https://h:8443/.well-known/wlcg-tape-rest-api"


def test_locality_tells_lost_from_slow_and_urls_are_checked():
    assert api.classify_locality("LOST", "")[0] == "failed"
    assert "LOST" in api.classify_locality("LOST", "")[1]
    assert api.classify_locality("TAPE", "") == ("", "")
    assert api.classify_locality("DISK_AND_TAPE", "") == ("present", "")
    assert api.parse_archiveinfo('[{"path": "/a", "locality": "tape"}]') == {"/a": ("TAPE", "")}
    assert api.check_url("https://h:8443") == ""
    assert "not an https" in api.check_url("ftp://h")
    assert api.problem_text(400, b'{"title": "Bad Request", "detail": "no files"}') == "HTTP 400: Bad Request: no files"


def test_remote_path_maps_the_stub_directory():
    assert remote_path("/data/raw/run_1.dat.0", "/data/raw", "/pnfs/x/raw") == "/pnfs/x/raw/run_1.dat.0"
    assert remote_path("/data/raw/run_1.dat.0", "/data/raw", "") == "/data/raw/run_1.dat.0"


# ------------------------------------------------------------------------------------------------
# against the double

@pytest.fixture
def site(tmp_path, tls):
    tape, disk = tmp_path / "tape", tmp_path / "disk"
    (tape / "raw").mkdir(parents=True)
    disk.mkdir()
    for i in range(6):
        (tape / "raw" / f"run_1.dat.{i}").write_text(f"segment {i}\n")
    d = TapeRestDouble(str(tape), str(disk), tls).start()
    yield d
    d.stop()


def backend(site, tls, tmp_path, **kw) -> TapeRestStaging:
    kw.setdefault("timeout", 5.0)
    return TapeRestStaging(site.url, stub_root=site.tape, cache_root=site.disk, path_prefix="/",
                           ca_dir=tls["ca_dir"], ids_file=str(tmp_path / "ids.json"), **kw)


def stubs(site, n=6):
    return [os.path.join(site.tape, "raw", f"run_1.dat.{i}") for i in range(n)]


def until_present(b, files, limit=10.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        v = b.query(files)
        if v.present == set(files):
            return v
        time.sleep(0.05)
    raise AssertionError(f"not staged in {limit} s: {v}")


def test_one_bulk_request_in_order_then_present_then_released(site, tls, tmp_path):
    b = backend(site, tls, tmp_path)
    files = stubs(site)
    b.request(files[::-1])
    posts = site.calls("POST", "/api/v1/tape/stage")
    assert len(posts) == 1
    (req,) = site.requests.values()
    assert [f["path"] for f in req["files"]] == [f"/raw/run_1.dat.{i}" for i in range(5, -1, -1)]
    until_present(b, files)
    assert all(Path(b.cache_path(f)).read_text() == f"segment {f[-1]}\n" for f in files)
    b.release(files)
    assert site.pins == {}
    assert not any(Path(b.cache_path(f)).exists() for f in files)
    assert site.calls("DELETE"), "a request none of whose files is held any more is deleted"
    assert json.loads((tmp_path / "ids.json").read_text()) == {}


def test_slow_staging_is_pending_one_poll_per_request_and_survives_a_new_process(site, tls, tmp_path):
    site.delay = 0.3
    b = backend(site, tls, tmp_path)
    files = stubs(site)
    b.request(files[:3])
    b.request(files[3:])
    v = b.query(files)
    assert v.pending == set(files) and not v.present
    before = len(site.calls("GET", "/api/v1/tape/stage/"))
    fresh = backend(site, tls, tmp_path)            # oneshot daemon: a new process, ids from the file
    v = fresh.query(files)
    assert len(site.calls("GET", "/api/v1/tape/stage/")) == before + 2     # one poll per request
    assert v.pending | v.present == set(files)
    until_present(fresh, files)


def test_a_lost_request_is_neither_pending_nor_present_and_archiveinfo_asked_once(site, tls, tmp_path):
    site.delay = 5.0
    b = backend(site, tls, tmp_path)
    files = stubs(site, 3)
    b.request(files)
    site.lose_requests()
    v = b.query(files)
    assert not v.pending and not v.present and not v.failed      # AWOL after the grace period
    assert len(site.calls("POST", "/api/v1/tape/archiveinfo")) == 1


def test_a_lost_file_fails_with_the_servers_word(site, tls, tmp_path):
    files = stubs(site, 3)
    site.lost.add("/raw/run_1.dat.1")
    b = backend(site, tls, tmp_path)
    b.request(files)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5:
        v = b.query(files)
        if v.failed:
            break
    assert set(v.failed) == {files[1]} and "LOST" in v.failed[files[1]]
    site.lose_requests()                            # and when the request is gone: archiveinfo says LOST
    v = b.query(files)
    assert set(v.failed) == {files[1]} and "LOST" in v.failed[files[1]]
    assert v.present == {files[0], files[2]}        # DISK_AND_TAPE


def test_an_expired_token_is_unavailable_then_the_renewed_file_is_read_again(site, tls, tmp_path):
    tok = tmp_path / "token"
    tok.write_text("first\n")
    site.tokens = {"first"}
    b = backend(site, tls, tmp_path, token_file=str(tok))
    files = stubs(site, 2)
    b.request(files)
    site.expire("first")
    with pytest.raises(BackendUnavailable, match=f"not authorised.*{tok}"):
        b.query(files)
    site.tokens.add("second")
    tok.write_text("second\n")                       # the token renewer rewrites the file
    until_present(b, files)
    assert b.calls[-1][2] == 200


def test_a_hanging_server_is_unavailable_within_the_timeout(site, tls, tmp_path):
    b = backend(site, tls, tmp_path, timeout=0.5)
    site.hang = 3.0
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match="no answer within 0.5 s"):
        b.request(stubs(site, 1))
    assert time.monotonic() - t0 < 2.5
    assert json.loads((tmp_path / "ids.json").read_text() if (tmp_path / "ids.json").exists() else "{}") == {}


def test_tls_is_verified_by_default(site, tls, tmp_path):
    b = TapeRestStaging(site.url, stub_root=site.tape, path_prefix="/", timeout=5.0)   # system CAs only
    with pytest.raises(BackendUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        b.request(stubs(site, 1))


def test_a_refused_request_is_rejected_with_the_servers_words(tmp_path):
    import httpx

    def answer(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("wlcg-tape-rest-api"):
            return httpx.Response(200, json={"endpoints": [{"uri": "https://site/api/v1/tape", "version": "v1"}]})
        return httpx.Response(400, json={"title": "Bad Request", "detail": "path not in namespace"})

    b = TapeRestStaging("https://site", stub_root=str(tmp_path), path_prefix="/",
                        transport=httpx.MockTransport(answer), ids_file=str(tmp_path / "ids.json"))
    with pytest.raises(Rejected, match="HTTP 400: Bad Request: path not in namespace"):
        b.request([str(tmp_path / "x")])
    assert not (tmp_path / "ids.json").exists()
