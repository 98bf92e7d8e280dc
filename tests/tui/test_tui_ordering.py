"""The task list's orders and text search (batchman.tui.ordering): the same results as the plain
Python definitions they replace, made once per status."""

import random
import threading
import time

import pytest

from batchman.core import states as S
from batchman.core.model import Task
from batchman.core.model import Status
from batchman.tui import ordering, tasklist
from batchman.tui.ordering import Orders, by_run, find_key, find_run, resort, search_text

_RANK = {s: i for i, s in enumerate(S.ALL)}
_SEG = (lambda t: -1 if t.seg is None else t.seg)
REFERENCE = {"run": lambda t: (t.run, t.job, _SEG(t)),
             "state": lambda t: (_RANK[t.state], t.run, t.job, _SEG(t)),
             "time": lambda t: (t.since, t.run, t.job, _SEG(t))}


def tasks(n: int = 300, seed: int = 1) -> list[Task]:
    """Shuffled tasks, several jobs per run, ties in time, odd text in errors and reasons."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        run = 1000 + i // 3
        out.append(Task(run=run, job=rnd.choice(["reco", "ana", "merge"]) + str(i % 3), state=rnd.choice(S.ALL),
                        since=float(rnd.randrange(5)), job_id=str(4700 + i) if i % 2 else "",
                        error=rnd.choice(["", "Exit Code 3", "node\nDIED", "İstanbul"]),
                        request=rnd.choice(["", S.KILL]), reason=rnd.choice(["seen running", "xx"])))
    rnd.shuffle(out)
    return out


@pytest.mark.parametrize("sort", ["run", "state", "time"])
def test_orders_are_the_full_key_sorts(sort):
    ts = tasks()
    assert Orders(ts).by(sort) == sorted(ts, key=REFERENCE[sort])
    assert resort(by_run(ts[:40]), sort) == sorted(ts[:40], key=REFERENCE[sort])


@pytest.mark.parametrize("needle", ["1001", "reco", "kill", "exit code", "died", "istanbul", "i̇stanbul",
                                    "running 47", "4701 ", "xx10", "x", "", "nowhere"])
def test_text_search_finds_what_the_per_task_text_holds(needle):
    ts = tasks()
    expect = [t for t in by_run(ts) if needle in search_text(t).lower()]
    assert Orders(ts).matching(needle) == expect


def test_text_search_never_matches_across_two_tasks():
    a, b = Task(run=1, reason="ab"), Task(run=2, reason="cd")
    assert Orders([a, b]).matching("ab\x002") == Orders([a, b]).matching("ab2") == []


def test_orders_are_made_once_per_status_and_a_request_remakes_only_the_search_text_it_changed(monkeypatch):
    monkeypatch.setattr(ordering, "CHUNK", 50)
    o = Orders(tasks())
    for sort in ("run", "state", "time", "run", "state"):
        o.by(sort)
    o.matching("reco")
    made = list(o._text)
    o.matching("ana")
    assert o.made == 3 and o._text == made
    run = o.by("run")
    run[120].request = "restart"                 # queued in place (Store._overlay), in piece 2 of 6
    o.requests_changed()
    o.by("time")
    assert o.made == 3
    assert o.matching("restart") == [run[120]]
    assert [a is b for a, b in zip(o._text, made)] == [True, True, False, True, True, True]


@pytest.mark.parametrize("n", [0, 1, 7, 21, 22])
def test_search_text_in_pieces_made_ahead_or_at_the_search_finds_the_same(monkeypatch, n):
    monkeypatch.setattr(ordering, "CHUNK", 7)
    ts = tasks(n)
    expect = [t for t in by_run(ts) if "1" in search_text(t).lower()]
    ahead = Orders(ts)
    ahead.prepare()
    assert len(ahead._text) == -(-n // 7)
    half = Orders(ts)
    half._text_step()                     # a thread made one piece, the search the rest
    assert ahead.matching("1") == half.matching("1") == Orders(ts).matching("1") == expect
    dropped = Orders(ts)
    dropped.drop()
    dropped.prepare()
    assert dropped._text == []


def segment_tasks(seed: int = 2) -> list[Task]:
    """Per: segment tasks (several segments of a run and job, shuffled) among run tasks."""
    rnd = random.Random(seed)
    out = [Task(run=1000 + i // 7, job=rnd.choice(["reco", "ana"]), seg=rnd.choice([None, i % 7, 100 - i % 7]),
                state=rnd.choice(S.ALL), since=float(rnd.randrange(3))) for i in range(200)]
    out = list({t.key: t for t in out}.values())
    rnd.shuffle(out)
    return out


@pytest.mark.parametrize("sort", ["run", "state", "time"])
def test_a_runs_segment_tasks_follow_in_segment_order_and_are_found_by_their_key(sort):
    ts = segment_tasks()
    order = Orders(ts).by(sort)
    assert order == sorted(ts, key=REFERENCE[sort])
    for i in range(len(order)):
        assert find_key(order, order[i].key, sort == "run") == i
    assert find_key(order, "1003.reco.555") is None


def test_state_order_puts_a_state_batchman_does_not_know_last_by_run():
    ts = [Task(run=3, state="weird"), Task(run=1, state="zzz"), Task(run=2, state=S.NEW), Task(run=0, state="weird")]
    assert [t.run for t in Orders(ts).by("state")] == [2, 0, 1, 3]


def test_find_run_and_key_with_several_jobs_per_run():
    order = by_run(tasks())
    first = next(i for i, t in enumerate(order) if t.run == 1050)
    assert find_run(order, 1050) == first
    assert find_run(order, 1050, start=first + 1) == first + 1
    assert find_run(order, 99) is None
    for sorted_ in (False, True):
        assert find_run(order, 1050, run_sorted=sorted_) == first
        assert find_run(order, 1050, start=first + 1, run_sorted=sorted_) == first + 1
        assert find_run(order, 99, run_sorted=sorted_) is find_run(order, 2000, run_sorted=sorted_) is None
        for i in (0, first, first + 1, first + 2, len(order) - 1):
            assert find_key(order, order[i].key, sorted_) == i
        assert find_key(order, "1050.nosuchjob", sorted_) is None


def test_the_index_makes_a_long_lists_search_text_in_a_thread_and_the_filter_uses_it(monkeypatch):
    monkeypatch.setattr(ordering, "CHUNK", 5)
    monkeypatch.setattr(tasklist, "CHUNK", 5)
    monkeypatch.setattr(ordering, "QUIET", 0.05)
    ts = tasks(40)
    idx = tasklist.TaskIndex()
    idx.set_status(Status(tasks=ts))
    idx.prepare_search()
    idx._search.join(5)
    assert not idx.orders.needs_text()
    pieces = list(idx.orders._text)
    idx.set_text_filter("reco")
    assert idx.order == [t for t in by_run(ts) if "reco" in search_text(t).lower()]
    assert idx.orders._text == pieces                 # made once, by the thread
    idx.clear_filters()
    idx.set_status(Status(tasks=ts[:3]))              # short: made at the first search, no thread
    idx.prepare_search()
    assert not idx._search.is_alive() and idx.orders.needs_text()


def reference_order(ts, text, states, runs, sort):
    """The list as the TUI made it before issue 18: a filter pass each, one sort by the full key."""
    out = [t for t in ts if (not states or t.state in states) and (runs is None or t.run in runs)
           and (not text or text.lower() in search_text(t).lower())]
    return sorted(out, key=REFERENCE[sort])


@pytest.mark.parametrize("sort", ["run", "state", "time"])
@pytest.mark.parametrize("text,states,runs", [("", "", None), ("reco", "", None), ("", "running", None),
                                              ("", "failed,running,new", None), ("Exit", "problem", None),
                                              ("", "active", frozenset(range(1000, 1040))),
                                              ("ana", "", frozenset(range(1020, 1060))), ("", "error,weird?", None)])
def test_the_index_shows_what_one_filter_pass_and_one_full_sort_would(monkeypatch, sort, text, states, runs):
    monkeypatch.setattr(ordering, "CHUNK", 16)           # blocks and search text in several pieces
    ts = tasks(200)
    idx = tasklist.TaskIndex()
    idx.set_status(Status(tasks=ts))
    idx.set_sort(sort)
    chosen = frozenset() if not states or "?" in states else tasklist.parse_states(states)
    idx.set_states(chosen)
    idx.text, idx.runs = text, runs
    idx.rebuild()
    assert idx.order == reference_order(ts, text, chosen, runs, sort)


def test_the_search_text_made_a_column_at_a_time_is_the_per_task_text():
    ts = tasks() + [Task(run=7, job="x", error="A\tB  C", reason="ÄÖ")]
    assert ordering.search_piece(ts) == ordering.SEP.join(search_text(t) for t in ts).lower()


def test_a_list_whose_runs_only_grow_is_taken_as_it_is_and_others_are_sorted():
    ts = [Task(run=r, job="b" if r % 2 else "a") for r in range(10)]
    assert by_run(ts) == ts and by_run(ts) is not ts
    twice = [Task(run=5, job="b"), Task(run=5, job="a"), Task(run=6)]
    assert [t.job for t in by_run(twice)] == ["a", "b", "analysis"]


def test_a_state_filter_before_the_blocks_are_made_is_the_one_after():
    ts = tasks()
    first, blocked = Orders(ts), Orders(ts)
    blocked.prepare()
    for states in ({"failed"}, {"failed", "running", "new"}, {"weird?"}, set(S.ALL)):
        assert first.of_states(states) == blocked.of_states(states)
    assert first._blocked == 0 and blocked._blocked >= len(ts)


def test_the_blocks_by_state_wait_for_a_quiet_screen_and_the_search_text_does_not():
    o = Orders(tasks())
    o.busy(0.3)
    t = threading.Thread(target=o.prepare)
    t.start()
    time.sleep(0.15)
    assert o._text and o._blocked == 0
    t.join(5)
    assert not o.needs_text() and o._blocked >= len(o.tasks)


# ---- made ahead in the main loop's steps (the TUI's first status, issue 18) ----------------------
@pytest.mark.parametrize("ordered", [True, False])
def test_warm_counts_and_the_run_order_in_pieces_are_what_they_would_be_at_once(ordered):
    ts = sorted(tasks(), key=REFERENCE["run"]) if ordered else tasks()
    ts = [t for i, t in enumerate(ts) if not ordered or i == 0 or t.run != ts[i - 1].run]   # one task a run
    o = Orders(ts)
    assert len(list(o.warm(piece=7))) == -(-len(ts) // 7)
    assert o.counts() == Orders(ts).counts()
    assert ("run" in o._sorted) == ordered          # in order: no sort is made, the list is copied
    assert o.by("run") == sorted(ts, key=REFERENCE["run"])


def test_steps_make_the_search_text_and_the_blocks_a_piece_a_time_and_no_thread_meanwhile(monkeypatch):
    monkeypatch.setattr(ordering, "CHUNK", 40)
    ts = tasks(300)
    o = Orders(ts)
    index = tasklist.TaskIndex()
    index.orders = o
    gen = o.steps()
    next(gen)
    assert o.stepping and not o._dropped
    index.prepare_search()
    assert not index._search.is_alive()             # the main loop does it: no thread
    rest = list(gen)
    pieces = -(-300 // 40)          # each a step: the text, the blocks, the pieces by time; then the merge
    assert len(rest) + 1 == 3 * pieces + 300 // 40 and not o.stepping and not o.needs_text()
    made = o.made
    assert o.matching("exit code 3") == [t for t in o.by("run") if "exit code 3" in search_text(t).lower()]
    assert o.by("state") == sorted(ts, key=REFERENCE["state"])
    assert o.by("time") == sorted(ts, key=REFERENCE["time"]) and o.made == made      # both made ahead


@pytest.mark.parametrize("sort", ["state", "time"])
def test_find_task_by_bisection_finds_what_find_key_finds(sort):
    ts = tasks(400, seed=5)          # ties in time, several jobs per run, states batchman knows
    ts += [Task(run=1000, job="reco0", seg=s, state=S.RUNNING, since=2.0) for s in (3, 1)]
    order = Orders(ts).by(sort)
    for t in ts:
        assert ordering.find_task(order, t, sort) == find_key(order, t.key), t.key
    moved = Task(run=ts[0].run, job=ts[0].job, seg=ts[0].seg, state=ts[0].state, since=-1.0)
    assert ordering.find_task(order, moved, "time") is None        # changed since: left to find_key
    assert ordering.find_task(order, Task(run=5), sort) is None
    assert ordering.find_task(Orders(ts).by("run"), ts[0], "run") is None


def _in_job_order(order):
    """REFERENCE's keys with a run's jobs in ``order`` (batchman.yaml's), the others after by name."""
    rank = {j: i for i, j in enumerate(order)}
    job = lambda t: (rank.get(t.job, len(rank)), t.job)      # noqa: E731
    return {"run": lambda t: (t.run, job(t), _SEG(t)),
            "state": lambda t: (_RANK[t.state], t.run, job(t), _SEG(t)),
            "time": lambda t: (t.since, t.run, job(t), _SEG(t))}


@pytest.mark.parametrize("order", [("reco0", "ana1", "merge2"), ("merge2", "reco1"), ("zz",), ()])
@pytest.mark.parametrize("sort", ["run", "state", "time"])
def test_a_runs_jobs_come_in_batchman_yamls_order_as_in_batchman_list(sort, order):
    """The TUI listed a run's jobs by name (a per-file run's merge step before its reco[*] row)
    where `batchman list` follows batchman.yaml; now both do (jobs not in it after, by name)."""
    ts = tasks() + [Task(run=1001 + i % 5, job="reco1", seg=i, state=S.RUNNING) for i in range(12)]
    random.Random(3).shuffle(ts)
    ref = _in_job_order(order)[sort]
    assert Orders(ts, order).by(sort) == sorted(ts, key=ref)
    for states in ({S.RUNNING}, {S.RUNNING, S.FAILED, S.NEW}):
        got = Orders(ts, order).of_states(states, sort)
        got = resort(got, sort) if sort == "time" else got       # (run order: the index sorts it, as rebuild)
        assert got == sorted([t for t in ts if t.state in states], key=ref)
    idx = tasklist.TaskIndex(lambda: False, lambda: order)
    idx.set_status(Status(tasks=ts))
    idx.set_sort(sort)
    assert idx.order == sorted(ts, key=ref)
