"""Issue 18: `batchman show RUN` reads the journal of transitions for one task's history. A journal
of a million tasks has ~10 million lines; only those holding the task's key are decoded
(store/journal.py). The entries must be exactly those of the whole read, whatever the buffer's
size, a torn last line, other tasks whose key holds this one's, or text that mentions it."""

import random

import pytest

from batchman.store import journal
from batchman.store.journal import Transition


def write(path, rnd, n=300):
    keys = ["1.analysis", "11.analysis", "1.analysisx", "1.reco.2", "21.reco.2", "3.analysis"]
    data = b""
    for g in range(1, n + 1):
        t = Transition(rnd.choice(keys), "new", "queued", rnd.choice(["", "see 1.analysis", "é 1.reco.2 ☂"]),
                       1000.0 + g, "daemon")
        data += journal.lines([t] * rnd.randint(1, 3), g, "s1")
    if rnd.random() < 0.5:
        data += b'{"g": 9999, "task": "1.analysis", "fro'          # torn by a crash
    path.write_bytes(data)


def whole(path, keys, upto):
    return [e for e in journal.read(str(path)) if e["task"] in keys and (upto is None or e["g"] <= upto)]


@pytest.mark.parametrize("seed", range(12))
def test_the_entries_of_a_few_tasks_are_those_of_the_whole_read(tmp_path, monkeypatch, seed):
    rnd = random.Random(seed)
    path = tmp_path / "status.json.journal"
    write(path, rnd)
    monkeypatch.setattr(journal, "BLOCK", rnd.choice([1, 7, 64, 1000, 1 << 20]))
    for keys in ({"1.analysis"}, {"1.reco.2", "1.reco"}, {"3.analysis", "11.analysis"}, {"404.analysis"}):
        upto = rnd.choice([None, 150])
        got = journal.read(str(path), keys, upto)
        assert got == whole(path, keys, upto), (keys, upto)
    assert journal.read(str(path), {"1.analysis"}), "each seed's journal holds entries of 1.analysis"


def test_only_the_lines_of_the_keys_are_decoded(tmp_path, monkeypatch):
    path = tmp_path / "j"
    write(path, random.Random(1), 2000)
    decoded = []
    real = journal.json.loads
    monkeypatch.setattr(journal.json, "loads", lambda s: decoded.append(s) or real(s))
    got = journal.read(str(path), {"3.analysis"})
    assert got and len(decoded) == len(got) < 2000
