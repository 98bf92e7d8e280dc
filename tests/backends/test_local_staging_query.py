"""Issue 18: the local staging backend answers a query of 200,000 files with one listing of its
marks and a cheap path mapping, not two normalisations and two looks per file."""

import os

import pytest

from batchman.backends.staging.local import LocalStaging


@pytest.mark.parametrize("stub", [
    "/data/raw/run_1.dat.0", "/data/raw/sub/run_1.dat.0", "/mss/exp/raw/run_1.dat.0", "/data/raw2/x",
    "/data/rawx", "/data", "/data/raw", "/data/raw/", "/data/raw/./x", "/data/raw/../y/x", "/data//raw/x",
    "/data/raw/.hidden", "relative/x", "/",
])
def test_a_stub_maps_to_the_cache_as_relpath_says(stub):
    s = LocalStaging("/data/raw", "/cache")
    assert s._rel(stub) == os.path.relpath(os.path.abspath(stub), "/data/raw")


def test_a_query_lists_the_marks_once_and_tells_present_pending_and_neither(tmp_path, monkeypatch):
    (tmp_path / "raw" / "sub").mkdir(parents=True)
    s = LocalStaging(str(tmp_path / "raw"), str(tmp_path / "cache"))
    files = [str(tmp_path / "raw" / n) for n in ("a", "sub/b", "c")]
    assert s.query(files).present == set() and s.query(files).pending == set()   # no cache, no marks yet
    os.makedirs(s.pending_dir)
    open(s._mark(files[1]), "w").close()
    open(s.cache_path(files[0]), "w").close()
    looked = []
    real = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: looked.append(p) or real(p))
    v = s.query(files)
    assert v.present == {files[0]} and v.pending == {files[1]}
    assert not [p for p in looked if p.startswith(s.pending_dir)]      # the marks: listed, not looked up


def test_many_files_the_cache_directories_are_listed_and_the_answers_are_a_look_per_file(tmp_path, monkeypatch):
    from batchman.backends.staging import local as L
    raw, cache = tmp_path / "raw", tmp_path / "cache"
    (raw / "sub").mkdir(parents=True)
    s = LocalStaging(str(raw), str(cache))
    files = [str(raw / f"f{i}") for i in range(L.LIST_FROM)] + [str(raw / "sub" / f"g{i}") for i in range(9)]
    files += [str(tmp_path / "elsewhere" / "h"), "/h", str(raw) + "//k", str(raw / "." / "f3"), "relative/f"]
    os.makedirs(s.pending_dir)
    (cache / "sub").mkdir()
    for f in files[::3]:
        open(s.cache_path(f), "w").close() if os.path.isdir(os.path.dirname(s.cache_path(f))) else None
    for f in files[1::3]:
        open(s._mark(f), "w").close()
    os.symlink(str(tmp_path / "gone"), s.cache_path(files[2]))     # listed, yet no file: not present
    one_by_one = [s.query([f]) for f in files]
    looked = []
    real = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: looked.append(p) or real(p))
    v = s.query(files)
    assert v.present == set().union(*(w.present for w in one_by_one))
    assert v.pending == set().union(*(w.pending for w in one_by_one))
    assert len(v.present) > 30 and len(v.pending) > 30
    assert len(looked) < len(files) // 2          # the present ones and the odd stubs only
