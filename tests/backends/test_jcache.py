"""JcacheStaging: pure parsers on literal text, then the backend against tests/doubles/jcache."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest

from batchman.backends.base import BackendUnavailable, Runner
from batchman.backends.staging.jcache import (
    JcacheStaging, cache_path_for, chunk_files, expand_cmd, files_argvs, parse_pending, parse_stub,
)

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"

# ------------------------------------------------------------------------------------------------
# pure functions

PENDING_TEXT = """\
get request: 100230264
user: jdoe
status: running
/mss/hallc/spring17/raw/coin_all_02049.dat -> /cache/hallc/spring17/raw/coin_all_02049.dat running
/mss/hallc/spring17/raw/coin_all_02050.dat -> /cache/hallc/spring17/raw/coin_all_02050.dat pending
/mss/hallc/spring17/raw/coin_all_02051.dat -> /cache/hallc/spring17/raw/coin_all_02051.dat done

get request: 100230265
user: jdoe
status: pending
/mss/hallc/spring17/raw/coin_all_02052.dat -> /cache/hallc/spring17/raw/coin_all_02052.dat failed
/mss/hallc/spring17/raw/coin_all_02053.dat -> /cache/hallc/spring17/raw/coin_all_02053.dat hit
"""

REAL_STUB = """\
bitfileIndex=137024448
sourcePath=/net/cdaq/cdaql3data/coda/data/raw/coin_all_02049.dat
size=11610259456
crc32=245794d3
md5=0011834b5f2fc1848dbc00799f4f3f3c
owner=halldata
creationTime=2018-01-20 05:40:28
bfid=120179753
volser=800175
filePosition=943607
volumeSet=c-spring17-raw
stubPath=/mss/hallc/spring17/raw/coin_all_02049.dat
dup.bitfileIndex=88474873
dup.md5=0011834b5f2fc1848dbc00799f4f3f3c
"""


def test_parse_pending_blocks():
    reqs = parse_pending(PENDING_TEXT)
    assert [r.request_id for r in reqs] == ["100230264", "100230265"]
    assert reqs[0].user == "jdoe" and reqs[0].status == "running"
    assert reqs[0].files == {
        "/mss/hallc/spring17/raw/coin_all_02049.dat": "running",
        "/mss/hallc/spring17/raw/coin_all_02050.dat": "pending",
        "/mss/hallc/spring17/raw/coin_all_02051.dat": "done",
    }
    assert reqs[1].files["/mss/hallc/spring17/raw/coin_all_02052.dat"] == "failed"
    assert reqs[1].files["/mss/hallc/spring17/raw/coin_all_02053.dat"] == "hit"


def test_parse_pending_empty_and_noise():
    assert parse_pending("") == []
    assert parse_pending("No pending request found for jdoe\n") == []


def test_parse_pending_tolerates_variants():
    # no status word (arrow only) -> the request's status; cache path first; bare header "request:"
    text = ("request: 17124386\nstatus: pending\n/cache/a/b.dat -> /mss/a/b.dat\n"
            "/mss/a/c.dat PENDING\n")
    (r,) = parse_pending(text)
    assert r.request_id == "17124386"
    assert r.files == {"/cache/a/b.dat": "pending", "/mss/a/c.dat": "pending"}


def test_parse_stub_real_example():
    info = parse_stub(REAL_STUB)
    assert info["size"] == 11610259456
    assert info["volume"] == "800175"
    assert info["file_index"] == 943607
    assert info["fields"]["creationTime"] == "2018-01-20 05:40:28"   # split at the first '=' only


def test_parse_stub_partial():
    assert parse_stub("md5=abc\nsourcePath=/x\n") == {
        "size": None, "volume": None, "file_index": None, "fields": {"md5": "abc", "sourcePath": "/x"}}
    assert parse_stub("bitfileIndex=5\nsize=oops\n")["file_index"] == 5
    assert parse_stub("bitfileIndex=5\nsize=oops\n")["size"] is None


def test_argv_builders():
    assert expand_cmd(("jcache", "pendingRequest", "-u", "{user}"), user="jdoe") == \
        ["jcache", "pendingRequest", "-u", "jdoe"]
    assert expand_cmd("env -u DEBUG jcache get -D 14", user="x") == \
        ["env", "-u", "DEBUG", "jcache", "get", "-D", "14"]
    files = [f"/mss/x/f{i:04d}" for i in range(250)]
    argvs = files_argvs(["jcache", "get"], files, 100, 10**6)
    assert [len(a) - 2 for a in argvs] == [100, 100, 50]
    assert sum((a[2:] for a in argvs), []) == files
    # the argv length limit splits earlier
    chunks = chunk_files(files, 100, 200)
    assert all(sum(len(f) + 1 for f in c) <= 200 for c in chunks)
    assert sum(chunks, []) == files
    assert cache_path_for("/mss/hallc/raw/a.dat") == "/cache/hallc/raw/a.dat"
    assert cache_path_for("/mss/hallc/raw/a.dat", "/mss/", "/cache/mss") == "/cache/mss/hallc/raw/a.dat"


# ------------------------------------------------------------------------------------------------
# against the double

class Lib:
    def __init__(self, root: Path):
        self.root = root
        self.mss = root / "mss"
        self.cache = root / "cache"
        self.state = root / "state"
        for d in (self.mss, self.cache, self.state):
            d.mkdir(parents=True)

    def stubs(self, n: int, size: int = 64, prefix: str = "hallc/raw/run") -> list[str]:
        out = []
        for i in range(n):
            p = self.mss / f"{prefix}{i:05d}.dat"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"bitfileIndex={1000 + i}\nsourcePath=/daq/{p.name}\nsize={size}\n"
                         f"crc32=0\nvolser=8001{i % 7:02d}\nfilePosition={i}\nstubPath={p}\n")
            out.append(str(p))
        return out

    def control(self, **kw) -> None:
        (self.state / "control.json").write_text(json.dumps(kw))

    def calls(self, cmd: str | None = None) -> list[list[str]]:
        log = self.state / "calls.log"
        if not log.exists():
            return []
        argvs = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
        return [a for a in argvs if cmd is None or (a and a[0] == cmd)]

    def runner(self, timeout: float = 20.0, **env) -> Runner:
        return Runner(timeout=timeout, env={
            "PATH": f"{DOUBLES}{os.pathsep}{os.environ.get('PATH', '')}",
            "JCACHE_DOUBLE_DIR": str(self.state), "JCACHE_DOUBLE_MSS": str(self.mss),
            "JCACHE_DOUBLE_CACHE": str(self.cache), "JCACHE_DOUBLE_USER": "jdoe", **env})

    def backend(self, runner: Runner | None = None, **kw) -> JcacheStaging:
        return JcacheStaging(runner or self.runner(), user="jdoe", mss_root=str(self.mss),
                             cache_root=str(self.cache), **kw)


@pytest.fixture
def lib(tmp_path):
    return Lib(tmp_path)


def wait_for(cond, timeout=10.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    return cond()


def test_request_pending_then_present(lib):
    files = lib.stubs(3, size=100)
    lib.control(delay=0.4)
    b = lib.backend()
    b.request(files)
    assert len(lib.calls("get")) == 1
    v = b.query(files)
    assert v.pending == set(files) and not v.present and not v.failed
    v = wait_for(lambda: (lambda v: v if v.present == set(files) else None)(b.query(files)))
    assert v.present == set(files) and not v.pending
    for f in files:
        assert os.path.getsize(b.cache_path(f)) == 100
    assert b.cache_path(files[0]).startswith(str(lib.cache))


def test_size_check_against_stub(lib):
    files = lib.stubs(2, size=100)
    lib.control(delay=60, partial=True)          # half-written copies visible while staging
    b = lib.backend()
    b.request(files)
    assert all(os.path.exists(b.cache_path(f)) for f in files)
    v = b.query(files)
    assert not v.present and v.pending == set(files)
    # a complete copy nobody asked for (e.g. an older stage) counts as present
    f = lib.stubs(1, size=10, prefix="other/x")[0]
    Path(b.cache_path(f)).parent.mkdir(parents=True)
    Path(b.cache_path(f)).write_bytes(b"x" * 10)
    assert b.query([f]).present == {f}
    Path(b.cache_path(f)).write_bytes(b"x" * 9)
    assert b.query([f]).present == set()


def test_lost_request_is_awol(lib):
    files = lib.stubs(2)
    lib.control(lose="*", delay=3.0)      # long enough to be seen listed on a loaded machine
    b = lib.backend()
    b.request(files)
    assert b.query(files).pending == set(files)       # listed until it vanishes
    v = wait_for(lambda: (lambda v: v if not v.pending else None)(b.query(files)))
    assert not v.present and not v.pending and not v.failed
    # a fresh process (no memory of request ids) sees the same
    v = lib.backend().query(files)
    assert not v.present and not v.pending and not v.failed


def test_failed_request(lib):
    files = lib.stubs(3)
    lib.control(fail=f"*{Path(files[1]).name}")
    b = lib.backend()
    b.request(files)
    v = wait_for(lambda: (lambda v: v if len(v.present) == 2 else None)(b.query(files)))
    assert v.present == {files[0], files[2]}
    assert set(v.failed) == {files[1]} and "failed" in v.failed[files[1]]
    assert not os.path.exists(b.cache_path(files[1]))


def test_failed_shown_while_request_open(lib):
    files = lib.stubs(2)
    lib.control(fail=f"*{Path(files[0]).name}", delay=2.0)   # margin for a loaded machine
    b = lib.backend(max_status_calls=0)
    b.request(files)
    v = wait_for(lambda: (lambda v: v if v.failed else None)(b.query(files)), 20)
    assert set(v.failed) == {files[0]} and v.pending == {files[1]}


def test_unreachable(lib):
    files = lib.stubs(2)
    b = lib.backend(lib.runner(JCACHE_DOUBLE_UNREACHABLE="1"))
    with pytest.raises(BackendUnavailable, match="[Cc]onnect"):
        b.request(files)
    with pytest.raises(BackendUnavailable):
        b.query(files)
    with pytest.raises(BackendUnavailable):
        b.release(files)
    with pytest.raises(BackendUnavailable):
        b.cancel(files)


def test_hang_times_out(lib):
    files = lib.stubs(1)
    lib.control(hang="pendingRequest")
    b = lib.backend(lib.runner(timeout=1.0))
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match="timed out"):
        b.query(files)
    assert time.monotonic() - t0 < 5
    b.request(files)                                   # other commands still answer


def test_missing_stub_not_asked_for_and_reported_failed(lib):
    files = lib.stubs(1)
    b = lib.backend()
    nope = str(lib.mss / "hallc/nope.dat")
    b.request(files + [nope])
    assert [c[1:] for c in lib.calls("get")] == [files]          # only the existing stub
    v = b.query(files + [nope])
    assert v.failed == {nope: "no such stub file"}


def test_number_of_calls(lib):
    files = lib.stubs(300, size=4)
    lib.control(delay=3600)
    b = lib.backend(max_files=100)
    b.request(files)
    assert len(lib.calls("get")) == math.ceil(300 / 100)
    r = lib.backend(max_files=64)
    r.request(files[:10])
    assert len(lib.calls("get")) == 4
    n = len(lib.calls())
    v = b.query(files)
    assert v.pending == set(files)
    assert len(lib.calls()) == n + 1 and lib.calls()[-1][0] == "pendingRequest"
    assert lib.calls()[-1] == ["pendingRequest", "-u", "jdoe"]
    n = len(lib.calls())
    b.query(files[:1])
    assert len(lib.calls()) == n + 1
    b.release(files)
    assert len(lib.calls("unpin")) == 3


def test_release_unpins(lib):
    files = lib.stubs(3)
    b = lib.backend()
    b.request(files)
    assert wait_for(lambda: b.query(files).present == set(files))
    b.release(files)
    (call,) = lib.calls("unpin")
    assert call[1:] == files
    state = json.loads((lib.state / "state.json").read_text())
    assert all("jdoe" not in state["pins"].get(f, []) for f in files)


def test_cancel_keeps_other_tasks_files(lib):
    files = lib.stubs(4)
    lib.control(delay=3600)
    b = lib.backend()
    b.request(files)                                   # one request holding four files
    b.cancel(files[:2])
    assert len(lib.calls("cancel")) == 1
    v = b.query(files)
    assert v.pending == set(files[2:])                 # re-requested
    assert not v.present and not v.failed
    assert len(lib.calls("get")) == 2
    b.cancel(files[2:])
    assert b.query(files).pending == set()


def test_cache_deleted_after_staging_is_not_present(lib):
    files = lib.stubs(1)
    b = lib.backend()
    b.request(files)
    assert wait_for(lambda: b.query(files).present == set(files))
    os.unlink(b.cache_path(files[0]))
    v = b.query(files)
    assert not v.present and not v.pending            # the caller requests it again
    b.request(files)
    assert wait_for(lambda: b.query(files).present == set(files))


def test_concurrent_callers_share_state(lib):
    """Several processes calling the double at once: the file lock keeps the state whole."""
    import concurrent.futures as cf
    files = lib.stubs(40, size=8)
    lib.control(delay=3600)
    b = lib.backend(max_files=5)
    with cf.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda c: b.request(c), [files[i:i + 5] for i in range(0, 40, 5)]))
    assert b.query(files).pending == set(files)


def test_tape_order_groups_by_volume_and_sorts_by_position():
    from batchman.backends.staging.jcache import tape_order
    info = {"a": {"volume": "V2", "file_index": 9}, "b": {"volume": "V1", "file_index": 5},
            "c": {"volume": "V2", "file_index": 1}, "d": {}, "e": {"volume": "V1", "file_index": 2}}
    assert tape_order(["a", "b", "c", "d", "e"], info) == [["c", "a"], ["e", "b"], ["d"]]


def test_requests_list_files_tape_by_tape_in_position_order(tmp_path, monkeypatch):
    """Stubs carrying volser/filePosition: the batched get lists each tape's files together, by position."""
    from batchman.backends.base import Runner
    from batchman.backends.staging.jcache import JcacheStaging
    calls = []

    class Rec(Runner):
        def __call__(self, argv, **kw):
            calls.append(argv)
            import subprocess
            return subprocess.CompletedProcess(argv, 0, "", "")
    stubs = []
    for name, vol, pos in [("r1.0", "VA", 30), ("r1.1", "VB", 2), ("r2.0", "VA", 10), ("r2.1", "VB", 1)]:
        p = tmp_path / name
        p.write_text(f"bitfileIndex=1\nsize=10\nvolser={vol}\nfilePosition={pos}\n")
        stubs.append(str(p))
    j = JcacheStaging(Rec(), user="me", mss_root=str(tmp_path), cache_root=str(tmp_path / "c"))
    j.request(stubs)
    gets = [c for c in calls if "get" in c]
    assert [[a.rsplit("/", 1)[-1] for a in c if a.startswith(str(tmp_path))] for c in gets] == \
        [["r2.0", "r1.0", "r2.1", "r1.1"]]
