"""contrib/jobwrap/batchman-jobwrap end to end: the daemon, the local batch and staging backends,
and a fake analysis that reads its segments slowly through the wrapper's progress file."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from batchman.core import states as S

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from e2e_helpers import daemon_run, env_for, make_experiment  # noqa: E402

pytestmark = pytest.mark.slow

WRAPPER = Path(__file__).resolve().parents[2] / "contrib" / "jobwrap" / "batchman-jobwrap"

# A slow analysis following the progress-file contract, paced by what the wrapper does. STOP_AFTER=k: stops (exit 0) after k segments.
FAKE = r"""#!/bin/bash
set -u
echo "run $1 in $PWD" > analysis.started
[ -f setup.conf ] || { echo "no runtime setup" >&2; exit 9; }
i=0
for f in $BATCHMAN_FILES; do
  if [ -n "${STOP_AFTER:-}" ] && [ "$i" -ge "$STOP_AFTER" ]; then exit 0; fi
  echo "$i" >> "$BATCHMAN_PROGRESS_FILE"
  for _ in $(seq 200); do [ -f "$f" ] && break; sleep 0.05; done
  [ -f "$f" ] || { echo "segment $i never arrived" >&2; exit 4; }
  # pace on the wrapper, not the clock: the previous segment goes once this one is announced
  # (on a loaded machine the wrapper's poll could otherwise miss the last segments altogether)
  if [ -n "${prev:-}" ]; then for _ in $(seq 600); do [ -f "$prev" ] || break; sleep 0.05; done; fi
  prev=$f
  sleep "${SEG_SLEEP:-0.6}"
  cat "$f" > /dev/null
  echo "done $i" >> "$BATCHMAN_PROGRESS_FILE"
  i=$((i+1))
done
"""


def setup(tmp_path, runs, nseg):
    (tmp_path / "fake_analysis").write_text(FAKE)
    (tmp_path / "fake_analysis").chmod(0o755)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cmd = f"{WRAPPER} --analysis {tmp_path / 'fake_analysis'} --poll 0.05 --scratch {scratch} --"
    e = make_experiment(tmp_path, runs, segments=nseg, **{"batch.command": cmd, "batch.local_slots": 2})
    (tmp_path / "Runtime").mkdir()
    (tmp_path / "Runtime" / "setup.conf").write_text("db=1\n")
    for p in (tmp_path / "raw").iterdir():
        p.write_bytes(os.urandom(256 * 1024))     # big enough that copies take a moment
    return e, scratch


class Sampler:
    """Counts segment files (complete or being copied) per scratch directory, every few ms."""

    def __init__(self, scratch: Path):
        self.scratch, self.max, self.samples, self.stop = scratch, {}, 0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            for d in list(self.scratch.glob("*/data")):
                try:
                    n = len(os.listdir(d))
                except OSError:
                    continue
                self.max[d.parent.name] = max(self.max.get(d.parent.name, 0), n)
            self.samples += 1
            time.sleep(0.005)

    def done(self):
        self.stop.set()
        self.t.join()


def test_wrapper_keeps_at_most_two_segments_on_scratch_and_writes_stats(tmp_path):
    e, scratch = setup(tmp_path, [1, 2], nseg=5)
    s = Sampler(scratch)
    try:
        r = daemon_run(tmp_path, "loop", env=env_for(tmp_path), timeout=120)
    finally:
        s.done()
    assert r.returncode == 0, r.stdout
    st = {t.run: t for t in e.store.read().tasks}
    assert all(t.state == S.COMPLETED for t in st.values()), [(t.run, t.state, t.reason) for t in st.values()]
    assert all(t.analysed == 5 for t in st.values())
    for t in st.values():
        text = (tmp_path / "stats" / f"{t.run}.{t.job}.{t.attempt}.stats").read_text()
        assert "segments_analysed = 5" in text
        assert t.counters.get("segments_done") == 5 and t.counters.get("segments_total") == 5
    assert len(s.max) == 2 and s.samples > 100
    assert max(s.max.values()) == 2, s.max          # the next segment was copied ahead, never more
    assert list(scratch.iterdir()) == []             # scratch cleaned up
    log = (tmp_path / "logs" / "1.analysis.1.err").read_text()
    assert "segment 4 copied" in log and "segment 3 deleted" in log


def test_analysis_that_stops_early_makes_the_run_incomplete(tmp_path):
    e, scratch = setup(tmp_path, [7], nseg=4)
    r = daemon_run(tmp_path, "loop", env=env_for(tmp_path, STOP_AFTER=2, SEG_SLEEP=0.2), timeout=120)
    assert r.returncode == 0, r.stdout
    (t,) = e.store.read().tasks
    assert t.state == S.INCOMPLETE and t.analysed == 2 and t.exit_code == 0
    assert "analysed 2 of 4" in t.reason


def _wrapper_module():
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("batchman_jobwrap", str(WRAPPER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("text,rc,total,expected", [
    ("", 0, 3, 0),
    ("0\ndone 0\n1\ndone 1\n2\ndone 2\n", 0, 3, 3),
    ("0\ndone 0\n1\n", 0, 3, 1),              # started 1, never finished it
    ("0\n1\n2\n", 0, 3, 3),                   # only starts announced: exit 0 counts the last one
    ("0\n1\n2\n", 1, 3, 2),                   # ... a crash does not
    ("junk\n0\n\n1\n", 0, 5, 2),
])
def test_progress_file_contract(text, rc, total, expected):
    assert _wrapper_module().segments_analysed(text, rc, total) == expected
