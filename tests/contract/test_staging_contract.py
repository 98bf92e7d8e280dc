"""The staging contract: what the daemon relies on from every staging backend, run against local,
jcache (tests/doubles/jcache), command (small site scripts), tape-rest (the HTTPS double of the
WLCG Tape REST API) and xrootd (a real xrootd server).

Adding a backend = one ``_make_<name>`` below and its name in ``BACKENDS``. A real system that
is not installed skips its cases with one line, except under CI (then they fail)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from batchman.backends.base import BackendUnavailable, Runner, StagingView
from batchman.backends.staging.local import LocalStaging

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "doubles"))
from taperest_server import TapeRestDouble  # noqa: E402
from xrootd_site import XrootdSite, require  # noqa: E402

BACKENDS = ["local", "jcache", "command", "tape-rest", "xrootd"]


def _load(path: Path, name: str):
    """A sibling test module as a plain module, for its site helpers (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_cmd = _load(TESTS / "backends" / "test_command_staging.py", "_contract_command_site")
_jc = _load(TESTS / "backends" / "test_jcache.py", "_contract_jcache_lib")


@dataclass
class Harness:
    kind: str
    backend: object
    files: Callable[[int], list[str]]              # n new stub files on "tape"
    calls: Callable[[], int] | None                 # external calls so far (None: runs none)
    unreachable: Callable[[], object] | None        # the same backend, its system unreachable
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def _make_local(tmp: Path) -> Harness:
    stubs, cache = tmp / "stubs", tmp / "cache"
    stubs.mkdir()
    cache.mkdir()
    return Harness("local", LocalStaging(str(stubs), str(cache)), _writer(stubs, "seg"), None, None)


def _make_jcache(tmp: Path) -> Harness:
    lib = _jc.Lib(tmp)
    batch = iter(range(1000))
    return Harness("jcache", lib.backend(), lambda n: lib.stubs(n, prefix=f"hallc/raw/b{next(batch)}_run"),
                   lambda: len(lib.calls()),
                   lambda: _jc.JcacheStaging(Runner(timeout=5, env={"PATH": str(tmp / "nowhere")}), user="jdoe",
                                             mss_root=str(lib.mss), cache_root=str(lib.cache)))


def _make_command(tmp: Path) -> Harness:
    site = _cmd.Site(tmp)

    def down():
        site.fault("down")
        return site.backend()
    return Harness("command", site.backend(), site.files, lambda: len(site.calls()), down)


def _make_tape_rest(tmp: Path, tls: dict[str, str]) -> Harness:
    tape, disk = tmp / "tape", tmp / "disk"
    tape.mkdir()
    disk.mkdir()
    d = TapeRestDouble(str(tape), str(disk), tls).start()
    from batchman.backends.staging.taperest import TapeRestStaging

    def make(url=d.url):
        return TapeRestStaging(url, stub_root=str(tape), cache_root=str(disk), path_prefix="/",
                               ca_dir=tls["ca_dir"], timeout=5, ids_file=str(tmp / "ids.json"))
    b = make()
    calls = lambda: len([c for c in d.log if not c[1].startswith("/.well-known")])   # noqa: E731
    return Harness("tape-rest", b, _writer(tape, "seg"), calls,
                   lambda: make("https://127.0.0.1:9"), [d.stop])


def _make_xrootd(tmp: Path) -> Harness:
    require()
    site = XrootdSite(delay=0.02)
    site.start()
    from batchman.backends.staging.xrootd import XrootdStaging
    runner = Runner(timeout=30)

    def make(url=site.url, r=runner):
        return XrootdStaging(r, url, stub_root=site.tape, cache_root=site.disk, path_prefix="/data",
                             ids_file=str(tmp / "ids.json"))
    return Harness("xrootd", make(), _writer(Path(site.tape), "seg"), lambda: len(runner.records),
                   lambda: make("root://127.0.0.1:9", Runner(timeout=3)), [site.stop])


def _writer(where: Path, stem: str) -> Callable[[int], list[str]]:
    count = [0]

    def files(n: int) -> list[str]:
        out = []
        for _ in range(n):
            p = where / f"{stem}{count[0]:04d}"
            p.write_text(f"data {count[0]}\n")
            count[0] += 1
            out.append(str(p))
        return out
    return files


@pytest.fixture(params=BACKENDS)
def staging(request, tmp_path):
    kw = {"tls": request.getfixturevalue("tls")} if request.param == "tape-rest" else {}   # (conftest.py)
    h = globals()["_make_" + request.param.replace("-", "_")](tmp_path, **kw)
    yield h
    for fn in h.cleanup:
        fn()


def until(h: Harness, files: list[str], pred: Callable[[StagingView], bool], timeout=20.0) -> StagingView:
    t0 = time.monotonic()
    while True:
        v = h.backend.query(files)
        if pred(v):
            return v
        assert time.monotonic() - t0 < timeout, f"{h.kind}: not reached in {timeout} s: {v}"
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------------

def test_requested_files_become_present_at_their_cache_path(staging):
    files = staging.files(5)
    staging.backend.request(files)
    v = until(staging, files, lambda v: v.present == set(files))
    assert not v.failed and not (v.pending & v.present)
    for f in files:
        assert os.path.isfile(staging.backend.cache_path(f)), f


def test_files_never_requested_are_neither_pending_nor_failed(staging):
    v = staging.backend.query(staging.files(3))
    assert not v.pending and not v.failed


def test_empty_lists_run_nothing(staging):
    before = staging.calls() if staging.calls else 0
    staging.backend.request([])
    assert staging.backend.query([]) == StagingView()
    staging.backend.release([])
    staging.backend.cancel([])
    assert (staging.calls() if staging.calls else 0) == before


def test_one_request_for_many_files_and_a_bounded_query(staging):
    if staging.calls is None:
        pytest.skip(f"{staging.kind} runs no external command")
    files = staging.files(20)
    before = staging.calls()
    staging.backend.request(files)
    assert staging.calls() - before <= 1, "staging requests are batched, not per file"
    before = staging.calls()
    staging.backend.query(files)
    assert staging.calls() - before <= 2


def test_release_twice_is_no_error_and_nothing_stays_pending(staging):
    files = staging.files(3)
    staging.backend.request(files)
    until(staging, files, lambda v: v.present == set(files))
    staging.backend.release(files)
    staging.backend.release(files)
    v = staging.backend.query(files)
    assert not v.pending and not v.failed


def test_cancelled_files_stop_being_pending(staging):
    files = staging.files(4)
    staging.backend.request(files)
    staging.backend.cancel(files)
    until(staging, files, lambda v: not v.pending and not v.failed)


def test_an_unreachable_system_is_backend_unavailable(staging):
    if staging.unreachable is None:
        pytest.skip(f"{staging.kind} has no system to be unreachable")
    with pytest.raises(BackendUnavailable):
        staging.unreachable().request(staging.files(2))
