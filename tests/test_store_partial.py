"""Issue 18: `batchman list --state S --json` at a million tasks decodes only the tasks that can be
in state S (store/partial.py), then replays the change log over them. It must give what the full
read followed by a selection on state gives, whatever the file, the log and the requests hold."""

import random

import msgspec
import pytest

from batchman.core import model
from batchman.core.model import Attempt, Segment, Task
from batchman.store import changes, partial, snapshot, store as store_mod
from batchman.store.store import Store

STATES = ["new", "unstaged", "queued", "running", "completed", "failed", "aborted", "error"]
FAILED = [b'"failed"']
IN_FAILED = partial.by_states(["failed"]).keep


def array(*tasks: Task) -> bytes:
    return msgspec.json.encode(list(tasks))


# ---- the choice within one line of tasks: pure ---------------------------------------------------
def test_a_task_is_a_candidate_when_it_holds_the_state_as_a_json_string_anywhere():
    tasks = [Task(run=1, state="failed"),
             Task(run=2, state="completed", past=[Attempt(n=1, state="failed")]),    # a past attempt
             Task(run=3, state="running", reason='the word failed, and "failed" quoted'),  # escaped
             Task(run=4, state="aborted", killed_in="failed", counters={"state": "failed"}),
             Task(run=5, state="failed", job="reco", seg=7)]
    raws = partial.candidates(array(*tasks), FAILED)
    assert [msgspec.json.decode(r)["run"] for r in raws] == [1, 2, 4, 5]
    assert [(t.run, t.seg) for t in partial.choose(array(*tasks), FAILED, IN_FAILED)] == [(1, None), (5, 7)]


def test_an_array_not_written_by_msgspec_has_each_task_looked_into():
    spaced = array(Task(run=1), Task(run=2, state="failed"), Task(run=3)).replace(b"},{", b"}, {")
    assert [t.run for t in partial.choose(spaced, FAILED, IN_FAILED)] == [2]


def test_a_line_without_the_state_is_not_decoded_at_all(monkeypatch):
    monkeypatch.setattr(partial, "_raw", None)          # any decoding would fail
    assert partial.choose(array(Task(run=1, state="running")), FAILED, IN_FAILED) == []


# ---- a line the writer marked: each {"run": begins a task -----------------------------------------
def written_lines(tmp_path, monkeypatch, tasks, chunk):
    monkeypatch.setattr(snapshot, "CHUNK", chunk)
    path = str(tmp_path / "status.json")
    snapshot.write(path, model.Status(experiment="e", tasks=tasks))
    with open(path, "rb") as f:
        return f.read().split(b"\n")[1:-2]


NESTED = {"inputs": [{"file": "a"}, {"run": 7, "state": "failed"}, {"run": 8}]}


def test_the_writer_marks_a_line_whose_only_objects_beginning_with_run_are_its_tasks(tmp_path, monkeypatch):
    tasks = [Task(run=r, counters=NESTED if r == 3 else {"events": 1, "run": 1}) for r in range(6)]
    lines = written_lines(tmp_path, monkeypatch, tasks, 2)
    assert [line.startswith(snapshot.MARK) for line in lines] == [True, False, True]
    one, = written_lines(tmp_path, monkeypatch, tasks[:2], 2)     # a file of one line: never
    assert not one.startswith(snapshot.MARK)


def test_a_marked_line_gives_its_tasks_in_the_state_without_being_parsed(tmp_path, monkeypatch):
    tasks = [Task(run=1, state="failed", past=[Attempt(n=1, state="failed")], counters={"x": "failed"}),
             Task(run=2, state="completed", past=[Attempt(n=1, state="failed")]),
             Task(run=3, state="running", reason='"failed" },{"run":9,"state":"failed"}'),
             Task(run=4, state="failed", job="reco", seg=7, killed_in="failed"),
             Task(run=5, state="aborted", killed_in="failed"), Task(run=6, state="failed")]
    line, rest = written_lines(tmp_path, monkeypatch, tasks + [Task(run=7)], 6)
    monkeypatch.setattr(partial, "_raw", None)          # any parse of the whole line would fail
    framed = b"[" + line[:-1] + b"]" if line.endswith(b",") else b"[" + line + b"]"
    assert [(t.run, t.seg) for t in partial.choose(framed, FAILED, IN_FAILED)] == [(1, None), (4, 7), (6, None)]
    assert [t.run for t in partial.choose(framed, [b'"aborted"', b'"failed"'], lambda t: t.state == "aborted")] == [5]


def test_an_object_in_counters_that_begins_as_a_task_is_never_taken_for_one(tmp_path, monkeypatch):
    tasks = [Task(run=1, state="completed", counters=NESTED), Task(run=2, state="failed"), Task(run=3)]
    line, rest = written_lines(tmp_path, monkeypatch, tasks, 2)
    assert not line.startswith(snapshot.MARK) and rest.startswith(snapshot.MARK)
    got = partial.choose(b"[" + line.rstrip(b",") + b"]", FAILED, IN_FAILED)
    assert [t.run for t in got] == [2]


def test_a_few_runs_are_picked_by_their_beginning_and_many_by_every_tasks_run(tmp_path, monkeypatch):
    tasks = [Task(run=1, added_at=1.0), Task(run=10), Task(run=100, counters={"x": [{"y": 1}, {"run": 1}]}),
             Task(run=1, job="reco", seg=3), Task(run=11)]
    pick = partial.by_runs({1, 11})
    for line in written_lines(tmp_path, monkeypatch, tasks, 2) + [msgspec.json.encode(tasks)[1:-1]]:
        framed = b"[" + line.rstrip(b",") + b"]"
        assert {(t.run, t.job) for t in partial.choose(framed, pick.needles, pick.keep)} <= {(1, "analysis"), (1, "reco"), (11, "analysis")}
    whole = partial.choose(msgspec.json.encode(tasks), pick.needles, pick.keep)          # one line written otherwise: parsed
    assert sorted((t.run, t.job) for t in whole) == [(1, "analysis"), (1, "reco"), (11, "analysis")]
    got = [t for line in written_lines(tmp_path, monkeypatch, tasks, 2)
           for t in partial.choose(b"[" + line.rstrip(b",") + b"]", pick.needles, pick.keep)]
    assert sorted((t.run, t.job) for t in got) == [(1, "analysis"), (1, "reco"), (11, "analysis")]
    assert partial.by_runs(()) is None
    many = partial.by_runs({1, 11, 12, 13, 14, 15})
    assert many.many and not many.needles and len(many.runs) > partial.MOST_RUNS
    for line in written_lines(tmp_path, monkeypatch, tasks, 2) + [msgspec.json.encode(tasks)[1:-1]]:
        framed = b"[" + line.rstrip(b",") + b"]"
        want = [(t.run, t.job) for t in msgspec.json.decode(framed, type=list[Task]) if t.run in many.runs]
        assert [(t.run, t.job) for t in partial.choose_runs(framed, many.runs, many.keep)] == want


def test_many_runs_in_a_marked_line_are_cut_out_without_parsing_it_and_a_line_of_none_is_left(tmp_path, monkeypatch):
    tasks = [Task(run=r, job="reco" if r % 2 else "analysis", reason='"x"},{"run":3,' if r == 4 else "") for r in range(1, 9)]
    first, second = written_lines(tmp_path, monkeypatch, tasks, 4)
    assert first.startswith(snapshot.MARK) and second.startswith(snapshot.MARK)
    monkeypatch.setattr(partial, "_raw", None)          # any parse of a whole line would fail
    decoded = []
    real = partial._tasks
    monkeypatch.setattr(partial, "_tasks", type("D", (), {"decode": lambda self, b: decoded.append(b) or real.decode(b)})())
    runs = frozenset({2, 3, 4, 11, 12, 13})
    got = [t for line in (first, second) for t in partial.choose_runs(b"[" + line.rstrip(b",") + b"]", runs, lambda t: True)]
    assert [(t.run, t.job) for t in got] == [(2, "analysis"), (3, "reco"), (4, "analysis")]
    assert len(decoded) == 1            # the second line holds none of the runs: nothing decoded
    assert got[2].reason == '"x"},{"run":3,'


def test_new_cannot_be_chosen_from_the_bytes_it_is_left_out_of():
    assert partial.needles(("new", "failed")) is None and partial.needles(()) is None
    assert partial.needles(("failed", "aborted", "failed")) == [b'"aborted"', b'"failed"']


def test_the_log_replaces_moves_adds_and_removes_chosen_tasks():
    head = model.Status(schema=1, generation=4, store_id="s1")
    chosen = {k: Task(run=int(k[0]), state="failed") for k in ("1.analysis", "2.analysis", "4.reco.2", "5.analysis")}
    rec = changes.Record(g=5, s="s1", head=msgspec.structs.replace(head, generation=5),
                         put=[Task(run=1, state="new"), Task(run=3, state="failed"),
                              Task(run=4, job="reco", seg=2, state="completed"),      # its key alone read
                              Task(run=5, state="running", past=[Attempt(n=1, state="failed")])], gone=["2.analysis"])
    old = changes.Record(g=4, s="s1", head=head, put=[Task(run=9, state="failed")])   # already in the file
    got = partial.replay(head, chosen, [changes.encode(old), changes.encode(rec)], partial.by_states(["failed"]))
    assert got.generation == 5 and list(chosen) == ["3.analysis"]
    with pytest.raises(partial._Again):                 # a gap: the file was compacted meanwhile
        partial.replay(head, {}, [changes.encode(msgspec.structs.replace(rec, g=6))], partial.by_states(["failed"]))


# ---- against the full read, over random files and logs ---------------------------------------------
@pytest.fixture
def small_lines(monkeypatch):
    monkeypatch.setattr(store_mod, "LOG_FROM", 0)
    monkeypatch.setattr(store_mod, "COMPACT_MIN", 0)
    monkeypatch.setattr(store_mod, "CHECK", True)
    monkeypatch.setattr(store_mod.snapshot, "CHUNK", 4)


def random_task(rnd: random.Random, run: int) -> Task:
    t = Task(run=run, job=rnd.choice(["analysis", "reco"]), seg=rnd.choice([None, None, 0, 3]),
             state=rnd.choice(STATES), segments=[Segment(f"raw/{run}.dat", rnd.random() < 0.5)])
    if rnd.random() < 0.3:
        t.past = [Attempt(n=1, state=rnd.choice(STATES), reason='"failed" once')]
    if rnd.random() < 0.2:
        t.counters = {"state": rnd.choice(STATES), "failed": 1}
    if rnd.random() < 0.2:
        t.killed_in = rnd.choice(STATES)
    if rnd.random() < 0.05:             # objects that begin as a task does, one in a failed state
        t.counters = {"inputs": [{"file": "a"}, {"run": run + 1, "state": "failed"}, {"run": 5}]}
    return t


def change(rnd: random.Random, s: Store, runs: list[int]) -> None:
    """One random write (state changes, additions, a purge, a compaction) or queued request."""
    what = rnd.random()
    if what < 0.1:
        s.compact()
    elif what < 0.2:
        tasks = s.read().tasks
        if tasks:
            s.queue_requests({rnd.choice(tasks).key}, *rnd.choice([("request", "kill"), ("priority", 5)]))
    else:
        with s.transaction("t") as st:
            for t in rnd.sample(st.tasks, min(len(st.tasks), rnd.randint(0, 4))):
                t.state = rnd.choice(STATES)
            for _ in range(rnd.randint(0, 3)):
                runs.append(runs[-1] + 1)
                st.tasks.append(random_task(rnd, runs[-1]))
            if what > 0.85 and len(st.tasks) > 10:
                gone = set(rnd.sample(range(len(st.tasks)), 2))
                st.tasks = [t for i, t in enumerate(st.tasks) if i not in gone]
                s.purged(2)


def by_key(tasks: list[Task]) -> list[bytes]:
    return [model.encode(t) for t in sorted(tasks, key=lambda t: (t.run, t.job, -1 if t.seg is None else t.seg))]


@pytest.mark.parametrize("seed", range(6))
def test_the_partial_read_gives_the_tasks_of_the_full_read_in_those_states_or_runs(tmp_path, small_lines, seed):
    rnd = random.Random(seed)
    s = Store(str(tmp_path / "status.json"), lock_timeout=2)
    runs = [1000]
    with s.transaction("t") as st:
        st.tasks = [random_task(rnd, r) for r in range(1000, 1030)]
        runs.extend(range(1000, 1030))
    for step in range(40):
        change(rnd, s, runs)
        full = Store(s.path).read()
        for states in (("failed",), ("failed", "aborted"), ("running",), (rnd.choice(STATES[1:]),)):
            got = partial.read(Store(s.path), partial.by_states(states))
            assert got is not None, (seed, step)
            want = [t for t in full.tasks if t.state in states]
            assert by_key(got.tasks) == by_key(want), (seed, step, states)
            assert model.encode(changes.head_of(got)) == model.encode(changes.head_of(full))
        for most in (partial.MOST_RUNS, 3 * partial.MOST_RUNS):       # by needles, then by every run
            some = set(rnd.sample(runs, min(len(set(runs)), rnd.randint(1, most))))
            got = partial.read(Store(s.path), partial.by_runs(some))
            assert by_key(got.tasks) == by_key([t for t in full.tasks if t.run in some]), (seed, step, some)
        head = partial.read(Store(s.path), partial.HEAD)
        assert head.tasks == [] and model.encode(changes.head_of(head)) == model.encode(changes.head_of(full))


def test_a_file_of_the_old_layout_or_cut_short_is_left_to_the_full_read(tmp_path, small_lines):
    s = Store(str(tmp_path / "status.json"), lock_timeout=2)
    with s.transaction("t") as st:
        st.tasks = [Task(run=r, state="failed") for r in range(10)]
    assert len(partial.read(Store(s.path), partial.by_states(("failed",))).tasks) == 10
    with open(s.path, "rb") as f:
        data = f.read()
    with open(s.path, "wb") as f:
        f.write(data[:-20])
    assert partial.read(Store(s.path), partial.by_states(("failed",))) is None
    with open(s.path, "wb") as f:
        f.write(msgspec.json.encode(msgspec.json.decode(data)))     # one line, as before issue 18
    assert partial.read(Store(s.path), partial.by_states(("failed",))) is None
    with open(s.path, "wb") as f:
        f.write(msgspec.json.format(data, indent=2))                # a person ran it through jq .
    assert partial.read(Store(s.path), partial.by_states(("failed",))) is None
    assert len(Store(s.path).read().tasks) == 10
    assert partial.read(Store(s.path), partial.by_states(("new",))) is None


# ---- a request queued on a few tasks of many -----------------------------------------------------
def test_requests_find_their_tasks_by_run_without_the_index_of_every_key(tmp_path):
    s = Store(str(tmp_path / "status.json"), lock_timeout=2)
    with s.transaction("t") as st:
        st.tasks = [Task(run=r, job=j, seg=g, state="running") for r in range(50)
                    for j, g in (("analysis", None), ("reco", 1), ("reco", 2))]
    fresh = Store(s.path)
    assert fresh.queue_requests({"7.reco.2", "9.analysis", "nosuch", "x.y"}, "request", "kill") == 2
    st = fresh.read()
    assert st.known_index() is None                      # neither the queue nor the overlay built it
    assert sorted(t.key for t in st.tasks if t.request) == ["7.reco.2", "9.analysis"]
    from batchman.store import requests
    assert sorted(requests.by_key(st, {"7.reco.1", "8.analysis", "77.analysis"})) == ["7.reco.1", "8.analysis"]
    assert requests.by_key(st, {"1.analysis"}) is not st.index() and requests.by_key(st, set()) is st.index()


def test_the_process_that_queued_a_request_has_it_without_looking_for_its_tasks_again(tmp_path, monkeypatch):
    from batchman.store import requests
    s = Store(str(tmp_path / "status.json"), lock_timeout=2)
    with s.transaction("t") as st:
        st.tasks = [Task(run=r, state="running") for r in range(20)]
    looks, real = [], requests.by_key
    monkeypatch.setattr(requests, "by_key", lambda status, keys: looks.append(keys) or real(status, keys))
    assert s.queue_requests({"3.analysis"}, "request", "kill") == 1
    assert s.queue_requests({"4.analysis"}, "priority", 4) == 1
    got = s.read()
    assert len(looks) == 2 and got.tasks[3].request == "kill" and got.tasks[4].priority == 4
    other = Store(s.path).read()                           # another process applies the file's lines
    assert other.tasks[3].request == "kill" and other.tasks[4].priority == 4


@pytest.mark.parametrize("shuffled", [False, True])
def test_requests_find_their_tasks_by_bisection_in_a_list_in_run_order_else_by_a_pass(shuffled):
    from batchman.store import requests
    tasks = [Task(run=r, job=j, seg=g) for r in range(50) for j, g in (("analysis", None), ("reco", 1), ("reco", 2))]
    if shuffled:
        random.Random(2).shuffle(tasks)
    st = model.Status(tasks=tasks)
    for keys in ({"7.reco.2", "9.analysis"}, {"0.analysis", "49.reco.2"}, {"7.reco.2", "nosuch"}, {"77.analysis"}):
        want = {t.key: t for t in tasks if t.key in keys}
        got = requests.by_bisection(tasks, keys)
        assert got is None or got == want
        assert (got is not None) == (not shuffled and len(want) == len(keys))
        assert requests.by_key(st, keys) == want
