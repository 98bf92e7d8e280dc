"""core.pacing: token buckets and the daemon's next wake-up, as tables (time is passed in)."""

import pytest

from batchman import params as P
from batchman.core.pacing import Bucket, Pacer, Wakeup, next_wakeup, query_due, query_interval


# ----------------------------------------------------------------------------- Bucket
# (burst, rate, [(now, wanted, cap), ...], [granted, ...])
TAKE = [
    ("burst at once, then nothing", 30, 2.0, [(0, 50, 0), (0, 50, 0)], [30, 0]),
    ("refills at the rate", 30, 2.0, [(0, 30, 0), (1.0, 10, 0), (1.0, 10, 0)], [30, 2, 0]),
    ("half a token is not a token", 30, 2.0, [(0, 30, 0), (0.25, 5, 0), (0.5, 5, 0)], [30, 0, 1]),
    ("refill stops at burst", 5, 2.0, [(0, 5, 0), (100, 50, 0)], [5, 5]),
    ("cap is an upper bound", 30, 2.0, [(0, 50, 25), (0, 50, 25)], [25, 5]),
    ("cap does not spend tokens it did not grant", 30, 2.0, [(0, 50, 10), (0, 50, 0)], [10, 20]),
    ("rate 0: no limit", 1, 0.0, [(0, 500, 0), (0, 500, 0)], [500, 500]),
    ("rate 0 with a cap", 1, 0.0, [(0, 500, 25)], [25]),
    ("nothing wanted", 30, 2.0, [(0, 0, 0), (0, 30, 0)], [0, 30]),
    ("negative wanted grants nothing", 3, 1.0, [(0, -4, 0), (0, 3, 0)], [0, 3]),
    ("clock going backwards earns nothing", 4, 1.0, [(10, 4, 0), (5, 4, 0), (11, 4, 0)], [4, 0, 1]),
    ("200 jobs at 30 + 2/s", 30, 2.0, [(0, 200, 0), (10, 170, 0), (85, 150, 0)], [30, 20, 30]),
]


@pytest.mark.parametrize("why,burst,rate,calls,granted", TAKE, ids=[t[0] for t in TAKE])
def test_bucket_take(why, burst, rate, calls, granted):
    b = Bucket.full(burst, rate, now=0.0)
    assert [b.take(n, now, cap) for now, n, cap in calls] == granted


# (burst, rate, spent at 0, now, n, ready_at)
READY = [
    ("tokens there: now", 30, 2.0, 0, 0.0, 1, 0.0),
    ("empty: one token after 1/rate", 30, 2.0, 30, 0.0, 1, 0.5),
    ("empty, later: counts from the spend", 30, 2.0, 30, 0.2, 1, 0.5),
    ("several tokens", 30, 2.0, 30, 0.0, 4, 2.0),
    ("more than burst: waits for burst only", 3, 1.0, 3, 0.0, 10, 3.0),
    ("unlimited: now", 1, 0.0, 1, 7.0, 5, 7.0),
]


@pytest.mark.parametrize("why,burst,rate,spent,now,n,at", READY, ids=[t[0] for t in READY])
def test_bucket_ready_at(why, burst, rate, spent, now, n, at):
    b = Bucket.full(burst, rate, now=0.0)
    b.take(spent, 0.0)
    assert b.ready_at(now, n) == pytest.approx(at)


def test_burst_below_one_is_one():
    b = Bucket.full(0, 1.0, now=0.0)
    assert (b.burst, b.take(5, 0.0)) == (1, 1)


# ----------------------------------------------------------------------------- Pacer
def test_pacer_from_defaults_uses_the_slurm_limiter_defaults_and_caps():
    v = P.defaults()
    pacer = Pacer.from_values(v, now=0.0)
    assert {k: (b.burst, b.rate) for k, b in pacer.buckets.items()} == {
        "submit": (v["batch.submit_burst"], v["batch.submit_rate"]),
        "kill": (v["batch.kill_burst"], v["batch.kill_rate"]),
        "stage": (v["staging.request_burst"], v["staging.request_rate"])}
    assert (v["batch.submit_burst"], v["batch.submit_rate"]) == (30, 2.0)
    # the per-iteration cap (25) bounds the first grant; the bucket the rest
    assert [pacer.grant("submit", 200, t) for t in (0.0, 0.0, 0.0, 1.0)] == [25, 5, 0, 2]


def test_pacer_kinds_are_independent():
    pacer = Pacer.from_values(P.defaults(), now=0.0)
    pacer.grant("submit", 100, 0.0)
    assert pacer.grant("kill", 100, 0.0) == 25 and pacer.grant("stage", 100, 0.0) == 25


# ----------------------------------------------------------------------------- queries
# (min_query_interval, delay, last_query, now, due)
QUERY = [
    ("never asked", 0.0, 60.0, None, 5.0, True),
    ("no floor: once per delay", 0.0, 60.0, 0.0, 59.0, False),
    ("no floor: due after delay", 0.0, 60.0, 0.0, 60.0, True),
    ("floor below delay sets the pace", 10.0, 60.0, 0.0, 10.0, True),
    ("floor below delay, too early", 10.0, 60.0, 0.0, 9.9, False),
    ("floor above delay: never more often", 120.0, 60.0, 0.0, 60.0, False),
    ("floor above delay: due at floor", 120.0, 60.0, 0.0, 120.0, True),
]


@pytest.mark.parametrize("why,floor,delay,last,now,due", QUERY, ids=[t[0] for t in QUERY])
def test_query_due(why, floor, delay, last, now, due):
    assert query_due(now, last, floor, delay) is due


def test_query_interval():
    assert (query_interval(0.0, 60.0), query_interval(5.0, 60.0), query_interval(90.0, 60.0)) == (60.0, 5.0, 90.0)


# ----------------------------------------------------------------------------- next_wakeup
def _pacer(spent: dict[str, int]) -> Pacer:
    v = P.defaults()
    v.update({"batch.max_submit_per_iteration": 0, "batch.max_kill_per_iteration": 0,
              "staging.max_requests_per_iteration": 0})
    p = Pacer.from_values(v, now=0.0)
    for k, n in spent.items():
        p.grant(k, n, 0.0)
    return p


# (spent at 0, waiting, jobs_in_batch, last_query, floor, deadlines, now, expected (at, reason))
WAKE = [
    ("idle: the longest sleep", {}, {}, False, None, 0.0, [], 0.0, (60.0, "delay")),
    ("waiting work, tokens left (held by a cap): at once", {}, {"submit": 5}, False, None, 0.0, [], 0.0, (0.0, "submit")),
    ("submit bucket empty: one token later", {"submit": 30}, {"submit": 5}, False, None, 0.0, [], 0.0, (0.5, "submit")),
    ("empty bucket but nothing waits: sleep on", {"submit": 30}, {"submit": 0}, False, None, 0.0, [], 0.0, (60.0, "delay")),
    ("earliest of two buckets", {"submit": 30, "kill": 30}, {"submit": 3, "kill": 1}, False, None, 0.0, [], 0.2, (0.5, "submit")),
    ("jobs in batch, never asked: now", {}, {}, True, None, 0.0, [], 3.0, (3.0, "query")),
    ("jobs in batch, no floor: a delay after the last query", {}, {}, True, 10.0, 0.0, [], 20.0, (70.0, "query")),
    ("jobs in batch, floor 15: at the floor", {}, {}, True, 10.0, 15.0, [], 20.0, (25.0, "query")),
    ("floor above delay: delay still the longest sleep", {}, {}, True, 10.0, 300.0, [], 20.0, (80.0, "delay")),
    ("overdue query: now, never in the past", {}, {}, True, 0.0, 5.0, [], 20.0, (20.0, "query")),
    ("caller's deadline first", {"submit": 30}, {"submit": 1}, True, 0.0, 15.0, [(0.3, "retry")], 0.0, (0.3, "retry")),
    ("past deadline: now", {}, {}, False, None, 0.0, [(-5.0, "grace")], 1.0, (1.0, "grace")),
    ("deadline after delay: delay", {}, {}, False, None, 0.0, [(500.0, "settle")], 1.0, (61.0, "delay")),
]


@pytest.mark.parametrize("why,spent,waiting,jobs,last,floor,deadlines,now,want", WAKE, ids=[t[0] for t in WAKE])
def test_next_wakeup(why, spent, waiting, jobs, last, floor, deadlines, now, want):
    w = next_wakeup(now, delay=60.0, pacer=_pacer(spent), waiting=waiting, jobs_in_batch=jobs,
                    last_query=last, min_query_interval=floor, deadlines=deadlines)
    assert (round(w.at, 6), w.reason) == want


def test_next_wakeup_without_pacer_is_the_delay():
    assert next_wakeup(5.0, delay=30.0) == Wakeup(35.0, "delay")


# ----------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("key,value,words", [
    ("batch.submit_burst", 0, "too small"), ("batch.submit_rate", -1, "too small"),
    ("batch.kill_burst", 2.5, "not a whole number"), ("staging.request_rate", "fast", "not a number"),
    ("daemon.watch_interval", -0.5, "too small"),
])
def test_bad_pacing_parameter_names_its_key(key, value, words, tmp_path):
    section, name = key.split(".")
    with pytest.raises(P.ParamError) as e:
        P.validate({section: {name: value}}, str(tmp_path))
    assert len(e.value.problems) == 1
    assert e.value.problems[0].startswith(key + ":") and words in e.value.problems[0]


def test_init_file_comments_and_round_trips_the_pacing_parameters(tmp_path):
    import yaml
    text = P.render_yaml()
    for key in ("submit_burst", "submit_rate", "kill_burst", "kill_rate", "request_burst", "request_rate", "watch_interval"):
        assert f"\n  {key}: " in text
    assert "SLURM's own rate limiter" in text.replace("\n  # ", " ")
    v = P.validate(yaml.safe_load(text), str(tmp_path)).values
    assert (v["batch.submit_burst"], v["staging.request_rate"], v["daemon.watch_interval"]) == (30, 2.0, 2.0)


@pytest.mark.parametrize("waiting, gather, at", [
    (10, 0.0, 0.5),     # no gathering: one token (2/s)
    (10, 2.0, 2.0),     # the tokens of 2 s: 4 at once, the same rate with a quarter of the wake-ups
    (1, 2.0, 0.5),      # but never more than what waits
    (100, 60.0, 15.0),  # nor more than a burst (30 tokens at 2/s)
])
def test_next_wakeup_gathers_tokens_for_held_work(waiting, gather, at):
    w = next_wakeup(0.0, delay=60.0, pacer=_pacer({"submit": 30}), waiting={"submit": waiting}, gather=gather)
    assert (round(w.at, 6), w.reason) == (at, "submit")
