"""The status page's numbers and its journal history: pure functions, ``now`` passed in."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from batchman.core import states as S
from batchman.core.model import Attempt, Daemon, Status, Task
from batchman.page import summary as SM, timeline as TL

NOW = 1_800_000_000.0
H = 3600.0


def done(run, ended, state=S.COMPLETED, job="analysis", **kw):
    return Task(run=run, job=job, state=state, since=ended, finished_at=ended, **kw)


# ---- progress ---------------------------------------------------------------------
def test_progress_counts_done_pending_and_problems():
    tasks = [done(1, NOW - 10), done(2, NOW - 10, S.FAILED), Task(run=3, state=S.RUNNING),
             Task(run=4, state=S.NEW), Task(run=5, state=S.SKIPPED, since=NOW - 5)]
    p = SM.progress(tasks, NOW)
    assert (p.total, p.done, p.finished, p.pending, p.problems) == (5, 2, 3, 2, 1)
    assert p.counts == Counter({S.COMPLETED: 1, S.FAILED: 1, S.RUNNING: 1, S.NEW: 1, S.SKIPPED: 1})


def test_rate_estimate_and_failure_rate_from_the_recent_window():
    # 6 ends spread over the last 3 hours (2 of them failures), 2 of them in the last hour
    tasks = [done(r, NOW - r * 0.5 * H, S.FAILED if r in (2, 4) else S.COMPLETED) for r in range(1, 7)]
    tasks += [Task(run=100 + i, state=S.QUEUED) for i in range(4)]
    p = SM.progress(tasks, NOW)
    assert p.last_hour == 2                      # ended 0.5 h and 1 h ago
    assert p.rate_per_hour == pytest.approx(6 / 3.0)
    assert p.eta_s == pytest.approx(4 / 2.0 * H)
    assert p.failure_rate == pytest.approx(2 / 6)


def test_old_ends_do_not_make_a_rate_and_a_skip_is_no_end_of_work():
    tasks = [done(1, NOW - 10 * H), Task(run=2, state=S.SKIPPED, since=NOW - 60), Task(run=3, state=S.NEW)]
    p = SM.progress(tasks, NOW)
    assert p.rate_per_hour == 0 and p.eta_s is None and p.failure_rate is None and p.last_hour == 0


def test_a_burst_of_ends_is_not_taken_for_a_huge_rate():
    tasks = [done(r, NOW - 1) for r in range(10)] + [Task(run=99, state=S.NEW)]
    assert SM.progress(tasks, NOW).rate_per_hour == pytest.approx(10 / (10 * 60) * H)


def test_held_tasks_waiting_for_a_person_are_left_out_of_the_estimate():
    """A hold stops a task that is new, unstaged or staged: at the rate of ends it never ends, so
    the estimate is for the others (it counted them: 'end in ~2m' for a production whose last
    runs were held); a held task already staging or in the batch system still ends."""
    ended = [done(r, NOW - r * 0.5 * H) for r in range(1, 7)]              # 2 an hour
    held = [Task(run=10, held=True), Task(run=11, state=S.STAGED, held=True), Task(run=12, state=S.UNSTAGED, held=True)]
    going = [Task(run=20, state=S.RUNNING, held=True), Task(run=21, state=S.QUEUED), Task(run=22)]
    p = SM.progress(ended + held + going, NOW)
    assert (p.pending, p.held) == (6, 3)
    assert p.eta_s == pytest.approx(3 / 2.0 * H)
    p = SM.progress(ended + held, NOW)
    assert (p.pending, p.held, p.eta_s) == (3, 3, None) and p.rate_per_hour > 0


def test_nothing_pending_has_no_estimate():
    p = SM.progress([done(1, NOW - 60)], NOW)
    assert p.pending == 0 and p.eta_s is None and p.rate_per_hour > 0


def test_bar_segments_in_order_and_summing_to_the_whole():
    c = Counter({S.COMPLETED: 6, S.SKIPPED: 2, S.FAILED: 1, S.RUNNING: 1, S.NEW: 10})
    segs = SM.bar_segments(c, 20)
    assert [(g, n) for g, n, _ in segs] == [("completed", 8), ("problem", 1), ("in batch", 1), ("waiting", 10)]
    assert sum(w for _, _, w in segs) == pytest.approx(100.0)
    assert SM.bar_segments(Counter(), 0) == []


def test_every_state_belongs_to_exactly_one_group():
    members = [s for _, ms in SM.GROUPS for s in ms]
    assert sorted(members) == sorted(S.ALL)


# ---- problems ----------------------------------------------------------------------
def test_problems_grouped_by_state_class_and_reason_biggest_first_with_ranges():
    oom = [done(r, NOW, S.FAILED, failure_class="out-of-memory", error="exit 137: out of memory",
                past=(Attempt(n=1, retry="out-of-memory: retry 1 of 2 with 8000 MB"),)) for r in (2040, 2041, 2042, 2051)]
    other = [done(7, NOW, S.FAILED, failure="exit-nonzero", error="exit code 3"),
             done(8, NOW, S.ERROR, reason="no segments found"), done(9, NOW)]
    groups = SM.problem_groups(other + oom)
    assert [(g.state, g.cause, len(g.runs)) for g in groups] == [
        (S.FAILED, "out-of-memory", 4), (S.ERROR, S.ERROR, 1), (S.FAILED, "exit-nonzero", 1)]
    assert groups[0].ranges == "2040-2042,2051" and groups[0].retry.startswith("out-of-memory: retry 1")
    assert groups[1].reason == "no segments found"


def test_a_reason_is_its_first_line_and_none_is_said_so():
    g = SM.problem_groups([done(1, NOW, S.FAILED, error="line one\nline two"), done(2, NOW, S.FAILED)])
    assert {x.reason for x in g} == {"line one", "no reason recorded"}


def test_tasks_whose_reasons_differ_only_by_their_files_are_one_group():
    """A job's missing output names its own file: at 1,000,000 tasks a full disk would make a
    problem group of each such task (the page's list of groups as long as the campaign); the
    group's reason leaves the paths out, each task's row keeps them."""
    missing = [done(r, NOW, S.FAILED, failure="missing-outputs", failure_class="missing-outputs",
                    error=f"exit 0 but /data/out/reco{r}_{r % 7}.txt is missing") for r in range(100, 140)]
    other = [done(r, NOW, S.FAILED, failure="exit-nonzero", error=f"cannot open (/data/raw/run_{r}.dat): denied")
             for r in (7, 8)] + [done(9, NOW, S.FAILED, error="see http://wiki/x and raw/run_9*")]
    groups = SM.problem_groups(missing + other)
    assert [(g.cause, g.reason, len(g.runs)) for g in groups] == [
        ("missing-outputs", "exit 0 but … is missing", 40), ("exit-nonzero", "cannot open (…): denied", 2),
        (S.FAILED, "see http://wiki/x and raw/run_9*", 1)]
    assert missing[3].error == "exit 0 but /data/out/reco103_5.txt is missing"


# ---- rows, bulk, breakdowns ---------------------------------------------------------
def test_listed_puts_problems_then_active_and_leaves_bulk_and_the_overflow_as_ranges():
    tasks = ([Task(run=r, state=S.NEW) for r in range(10)] + [Task(run=r, state=S.RUNNING) for r in range(10, 20)]
             + [done(r, NOW, S.FAILED) for r in range(20, 23)] + [done(r, NOW) for r in range(30, 35)])
    rows, over = SM.listed(tasks, cap=8)
    assert [t.state for t in rows] == [S.FAILED] * 3 + [S.RUNNING] * 5
    assert over == {S.RUNNING: list(range(15, 20))}
    assert SM.bulk_runs(tasks) == {S.COMPLETED: list(range(30, 35)), S.NEW: list(range(10))}


def test_every_cause_gets_rows_biggest_first_and_the_rest_are_ranges():
    big = [done(r, NOW, S.FAILED, failure_class="timeout", error="too long") for r in range(100, 110)]
    small = [done(r, NOW, S.FAILED, failure_class="out-of-memory", error="oom") for r in (1, 2)]
    rows, over = SM.listed(small + big + [Task(run=50, state=S.RUNNING)], cap=100, per_group=3)
    assert [t.run for t in rows] == [100, 101, 102, 1, 2, 50]
    assert over == {S.FAILED: list(range(103, 110))}


def test_breakdown_per_job_and_per_dataset():
    tasks = [Task(run=1, job="reco", state=S.COMPLETED, meta={"dataset": "Al50"}),
             Task(run=1, job="hist", state=S.NEW, meta={"dataset": "Al50"}),
             Task(run=2, job="reco", state=S.FAILED, meta={"dataset": "Ti"}), Task(run=3, job="reco")]
    assert SM.breakdown(tasks, "job") == {"hist": Counter({S.NEW: 1}), "reco": Counter({S.COMPLETED: 1, S.FAILED: 1, S.NEW: 1})}
    assert SM.breakdown(tasks, "dataset") == {"": Counter({S.NEW: 1}), "Al50": Counter({S.COMPLETED: 1, S.NEW: 1}),
                                              "Ti": Counter({S.FAILED: 1})}


# ---- run times ----------------------------------------------------------------------
def test_run_times_only_of_completed_jobs_with_both_stamps():
    tasks = [done(1, NOW, started_at=NOW - 100), done(2, NOW), done(3, NOW, S.FAILED, started_at=NOW - 5),
             done(4, NOW, started_at=NOW + 5)]
    assert SM.run_times(tasks) == [(100.0, 1)]


@pytest.mark.parametrize("values,q,expected", [([], .5, 0.0), ([3.0], .95, 3.0), ([1, 2, 3, 4, 5], .5, 3.0),
                                               ([0, 10], .25, 2.5), ([1, 2, 3, 4, 5], 1.0, 5.0)])
def test_quantile(values, q, expected):
    assert SM.quantile(values, q) == pytest.approx(expected)


def test_slow_tail_names_the_slowest_runs_above_the_95th_percentile():
    times = [(float(d), 100 + d) for d in range(1, 101)]      # 1 .. 100 s
    limit, slowest = SM.slow_tail(times, show=3)
    assert limit == pytest.approx(95.05)
    assert slowest == [(100.0, 200), (99.0, 199), (98.0, 198)]
    assert SM.slow_tail([]) == (0.0, [])


# ---- the daemon line ------------------------------------------------------------------
def status_with(tasks, beat=None, n=1):
    ds = [Daemon(id=f"h:{i}", host="h", pid=10 + i, started=NOW - H, heartbeat=beat) for i in range(n)] if beat else []
    return Status(tasks=tasks, daemons=ds)


@pytest.mark.parametrize("tasks,beat,n,level,words", [
    ([done(1, NOW)], None, 1, "calm", "no daemon running (production finished)"),
    ([Task(run=1, state=S.QUEUED), done(2, NOW)], None, 1, "bad", "no daemon running, 1 task(s) pending"),
    ([Task(run=1, held=True), Task(run=1, job="b", state=S.STAGED, held=True), done(2, NOW)], None, 1, "calm",
     "no daemon running; 2 task(s) held: `batchman release` lets them go on"),
    ([Task(run=1, held=True), Task(run=2, state=S.STAGING, held=True)], None, 1, "bad",
     "no daemon running, 2 task(s) pending: start one"),       # (its staging goes on: a daemon follows it)
    ([Task(run=1, held=True), Task(run=2, state=S.RUNNING, held=True)], None, 1, "bad",
     "no daemon running, 2 task(s) pending: start one"),
    ([Task(run=1, held=True)], NOW - 30, 1, "ok", "daemon pid 10 on h"),
    ([Task(run=1, state=S.QUEUED)], NOW - 30, 1, "ok", "daemon pid 10 on h"),
    ([Task(run=1, state=S.QUEUED)], NOW - 301, 1, "bad", "daemon pid 10 on h"),
    ([Task(run=1, state=S.QUEUED)], NOW - 30, 3, "ok", "(+2 more)"),
])
def test_heartbeat_levels(tasks, beat, n, level, words):
    text, lvl, at = SM.heartbeat(status_with(tasks, beat, n), NOW, 300, SM.progress(tasks, NOW))
    assert lvl == level and words in text and at == beat


@pytest.mark.parametrize("ago,level,words", [
    (45, "calm", "no daemon running since a round 45s ago (a oneshot), 1 task(s) pending"),
    (300, "calm", "no daemon running since a round 5m00s ago (a oneshot), 1 task(s) pending"),
    (301, "bad", "no daemon running, 1 task(s) pending: start one with `batchman-daemon`"),
    (None, "bad", "no daemon running, 1 task(s) pending: start one with `batchman-daemon`"),
])
def test_a_oneshots_round_is_no_missing_daemon_until_stale_after(ago, level, words):
    """`batchman-daemon oneshot` from cron: between two rounds no daemon runs; the line said red
    'start one' after every round. As a daemon's heartbeat, its last round keeps it calm for
    daemon.stale_after (its words in the TUI and `batchman list` too: render.daemon_look)."""
    from batchman.page import render
    tasks = [Task(run=1, state=S.QUEUED), done(2, NOW)]
    st = Status(tasks=tasks, last_round=None if ago is None else NOW - ago)
    text, lvl, at = SM.heartbeat(st, NOW, 300, SM.progress(tasks, NOW))
    assert (text, lvl, at) == (words, level, None)
    assert render.daemon_look(st, NOW, 300, 1) == (words, level)
    held = Status(tasks=[Task(run=1, held=True)], last_round=None if ago is None else NOW - ago)
    assert SM.heartbeat(held, NOW, 300, SM.progress(held.tasks, NOW))[:2] == \
        ("no daemon running; 1 task(s) held: `batchman release` lets them go on", "calm")


def test_pause_line():
    assert SM.pause_line(Status()) == ""
    assert SM.pause_line(Status(paused=True, paused_by="anna")).startswith("PAUSED by anna:")


# ---- the journal -----------------------------------------------------------------------
def jline(t, old, new, g=1):
    return (json.dumps({"g": g, "t": t, "task": "1.a", "from": old, "to": new, "why": "", "by": "x", "s": "ab"}) + "\n").encode()


def test_fold_counts_group_changes_per_bucket_and_skips_bad_lines():
    b0 = TL.key(NOW)
    lines = [jline(NOW, S.NEW, S.UNSTAGED), jline(NOW + 1, S.NEW, S.STAGING), b"{torn\n",
             jline(NOW + TL.FINE + 3, S.RUNNING, S.COMPLETED)]
    deltas: dict = {}
    used = TL.fold(lines, deltas)
    assert used == sum(len(x) for x in lines)
    assert deltas == {b0: {"waiting": -1, "staging": 1}, b0 + TL.FINE: {"in batch": -1, "completed": 1}}


def test_fold_stops_at_a_generation_not_yet_written():
    lines = [jline(NOW, S.NEW, S.STAGING, g=4), jline(NOW, S.STAGING, S.STAGED, g=5), jline(NOW, S.STAGED, S.SUBMITTING, g=5)]
    deltas: dict = {}
    assert TL.fold(lines, deltas, upto=4) == len(lines[0]) and sum(deltas[TL.key(NOW)].values()) == 0


def test_series_counts_backwards_from_now():
    # one task went waiting -> in batch two hours ago, then in batch -> completed one hour ago
    deltas: dict = {}
    TL.fold([jline(NOW - 2 * H, S.NEW, S.QUEUED), jline(NOW - H, S.RUNNING, S.COMPLETED)], deltas)
    pts = TL.series(deltas, Counter({"completed": 1, "waiting": 4}), NOW - 3 * H, NOW, points=4)
    assert NOW % TL.BUCKET == 0        # the changes fall on the stamps: they count as done there
    assert [t for t, _ in pts] == pytest.approx([NOW - 3 * H, NOW - 2 * H, NOW - H, NOW])
    got = [(c["waiting"], c["in batch"], c["completed"]) for _, c in pts]
    assert got == [(5, 0, 0), (4, 1, 0), (4, 0, 1), (4, 0, 1)]
    assert TL.series({}, Counter({"waiting": 2}), NOW, NOW)[0][1] == {"waiting": 2}


def test_a_young_production_is_drawn_as_it_went():
    # the demo: 20 tasks done over half a minute. Each shows as done at most 10 s early (from
    # the start of its bucket), never late (5-minute buckets drew all 20 done at once, up to 5
    # minutes before they were).
    deltas: dict = {}
    TL.fold([jline(NOW + 2 + 1.5 * i, S.RUNNING, S.COMPLETED) for i in range(20)], deltas)
    start, width = TL.first_bucket(deltas)
    assert (start, width) == (NOW, TL.FINE)
    now = NOW + 40
    pts = TL.series(deltas, Counter({"completed": 20}), start - width, now, points=51)
    assert pts[0][1]["completed"] == 0 and pts[-1][1]["completed"] == 20
    for ts, counts in pts:
        assert sum(NOW + 2 + 1.5 * i <= ts for i in range(20)) <= counts["completed"]
        assert counts["completed"] <= sum(NOW + 2 + 1.5 * i <= ts + 10 for i in range(20))


def test_time_axis_labels_differ_for_a_short_span():
    from batchman.page import svg
    for span in (40.0, 900.0, 5 * 86400.0):
        labels = [svg._tick_label(NOW + span * i / 4, span) for i in range(5)]
        assert len(set(labels)) == 5, (span, labels)     # (minutes alone repeated over 40 s)


def test_old_buckets_merge_into_five_minutes_and_keep_every_change():
    import random
    rng = random.Random(7)
    times = sorted(NOW + rng.uniform(0, 2 * TL.FINE_SPAN) for _ in range(500))
    deltas: dict = {}
    TL.fold([jline(t, S.NEW, S.STAGING) for t in times], deltas)
    TL.coarsen(deltas)
    cutoff = max(deltas) - TL.FINE_SPAN
    assert sum(d["staging"] for d in deltas.values()) == 500
    for k, d in deltas.items():
        if k < cutoff:                      # old: 5-minute buckets, each holding its changes
            assert k % TL.BUCKET == 0       # (the one astride the cutoff: those before it)
            assert d["staging"] == sum(k <= t < k + TL.BUCKET and TL.key(t) < cutoff for t in times)
        else:
            assert d["staging"] == sum(k <= t < k + TL.FINE for t in times)
    assert TL.first_bucket(deltas)[1] == TL.BUCKET
    before = {k: dict(d) for k, d in deltas.items()}
    TL.coarsen(deltas)
    assert deltas == before                 # coarsening twice changes nothing


def test_load_reads_only_what_was_appended(tmp_path):
    j = tmp_path / "status.json.journal"
    j.write_bytes(jline(NOW, S.NEW, S.STAGING) + jline(NOW, S.STAGING, S.STAGED))
    first = TL.load(str(j), "ab")
    assert first == {TL.key(NOW): {"waiting": -1, "staging": 1}}
    # scribble over the lines already summarised (same length): they are not read again
    size = j.stat().st_size
    with open(j, "r+b") as f:
        f.write(b"x" * size)
    with open(j, "ab") as f:
        f.write(jline(NOW, S.STAGED, S.SUBMITTING) + b'{"g": 1, "t": 1')     # and a line being written
    second = TL.load(str(j), "ab")
    assert second == {TL.key(NOW): {"waiting": -1, "staging": 0, "in batch": 1}}
    # the half line is read once it is complete
    with open(j, "ab") as f:
        f.write(b'800000000, "from": "submitting", "to": "failed"}\n')
    assert TL.load(str(j), "ab")[TL.key(NOW)]["problem"] == 1


def test_a_summary_of_five_minute_buckets_is_taken_not_read_again(tmp_path):
    # written before the 10 s buckets: its buckets by number, 5 minutes each; the journal is not reread
    j = tmp_path / "j"
    j.write_bytes(jline(NOW + 7, S.NEW, S.STAGING) * 3)
    old = {"v": 1, "ino": j.stat().st_ino, "store": "ab", "offset": j.stat().st_size,
           "deltas": {str(int(NOW // TL.BUCKET)): {"staging": 5}}}
    (tmp_path / "j.page").write_text(json.dumps(old))
    assert TL.load(str(j), "ab") == {int(NOW): {"staging": 5}}
    with open(j, "ab") as f:
        f.write(jline(NOW + 20, S.NEW, S.STAGING))
    assert TL.load(str(j), "ab") == {int(NOW): {"staging": 5}, TL.key(NOW + 20): {"waiting": -1, "staging": 1}}


def test_load_starts_afresh_for_a_replaced_or_shorter_journal_or_another_store(tmp_path):
    j = tmp_path / "j"
    j.write_bytes(jline(NOW, S.NEW, S.STAGING) * 3)
    assert TL.load(str(j), "ab")[TL.key(NOW)]["staging"] == 3
    j.write_bytes(jline(NOW, S.NEW, S.STAGING))          # truncated in place
    assert TL.load(str(j), "ab")[TL.key(NOW)]["staging"] == 1
    assert TL.load(str(j), "cd")[TL.key(NOW)]["staging"] == 1   # another store: not its cache
    assert TL.load(str(tmp_path / "none"), "ab") == {}


@pytest.mark.parametrize("runs", [[], [1], [1, 2], [1, 2, 3, 5], [1, 3, 5], [7, 8, 10, 11, 12, 20], list(range(100))])
def test_ranges_says_what_runspec_compress_says(runs):
    from batchman.core.runspec import compress
    assert SM.ranges(runs) == compress(runs)
