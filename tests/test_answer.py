"""Issue 18: observe makes one pass over the batch system's answer for the jobs it lists as
neither queued nor running (daemon/answer.unlisted), shared by the markers read after the
answer and the finished jobs' look; the same jobs as a pass each, over random answers."""

import random

import pytest

from batchman.daemon import answer as A
from batchman.core.observed import ABSENT, FINISHED, QUEUED, RUNNING, JobInfo


def random_answer(seed: int):
    rng = random.Random(seed)
    ask = {f"j{i}": rng.choice(["", str(i)]) for i in range(rng.randint(0, 30))}
    names = list(ask) + [f"x{i}" for i in range(rng.randint(0, 3))]      # (a job not asked, too)
    jobs = {n: JobInfo(n, "1", rng.choice([QUEUED, RUNNING, FINISHED, ABSENT])) for n in names if rng.random() < 0.8}
    every = {n: JobInfo(n, "1", rng.choice([QUEUED, RUNNING, FINISHED, ABSENT])) for n in ask}   # (as backends answer)
    other = dict(rng.sample(list(every.items()), len(every)))           # the same, in another order
    swapped = dict(list(every.items())[1:] + [("x9", JobInfo("x9", "1", QUEUED))])  # as many, one asked left out
    return ask, rng.choice([jobs, jobs, {}, None, every, every, other, swapped])


@pytest.mark.parametrize("seed", range(200))
def test_the_jobs_read_after_the_answer_are_those_a_pass_of_their_own_finds(seed):
    ask, jobs = random_answer(seed)
    every = list(ask) if jobs is None else (
        [n for n, i in jobs.items() if i.state not in (QUEUED, RUNNING) and n in ask] + sorted(ask.keys() - jobs.keys()))
    assert A.not_listed(ask, jobs, A.unlisted(jobs)) == every == A.not_listed(ask, jobs)


@pytest.mark.parametrize("seed", range(200))
def test_the_finished_jobs_are_those_a_pass_of_their_own_finds(seed):
    ask, jobs = random_answer(seed)
    listed_not = A.unlisted(jobs)
    for n in list(jobs or {})[::3]:       # (markers read after the answer take some out of it)
        del jobs[n]
    jobs = jobs or {}
    assert {n for n in listed_not if (i := jobs.get(n)) is not None and i.state == FINISHED} == \
        {n for n, i in jobs.items() if i.state == FINISHED}


@pytest.mark.parametrize("seed", range(200))
def test_one_look_at_each_state_says_the_unlisted_and_the_finished_jobs(seed):
    _, jobs = random_answer(seed)
    unlisted, done = A.said(jobs)
    assert unlisted == [n for n, i in (jobs or {}).items() if i.state not in (QUEUED, RUNNING)] == A.unlisted(jobs)
    assert done == [n for n, i in (jobs or {}).items() if i.state == FINISHED]
    for n in list(jobs or {})[::3]:       # (markers read after the answer take some out of it)
        del jobs[n]
    assert [n for n in done if n in (jobs or {})] == [n for n, i in (jobs or {}).items() if i.state == FINISHED]


@pytest.mark.parametrize("seed", range(200))
def test_the_jobs_read_after_the_answer_among_those_with_a_directory_are_those_of_the_pass(seed):
    ask, jobs = random_answer(seed)
    rng = random.Random(seed)
    there = {n for n in list(ask) + ["y", "x0"] if rng.random() < 0.4}
    assert A.not_listed_in(there, ask, jobs) == sorted(n for n in A.not_listed(ask, jobs) if n in there)
    if jobs is not None and jobs.keys() <= ask.keys():
        assert A.about(ask, jobs, A.unlisted(jobs)) == len(A.not_listed(ask, jobs))


class Counted(dict):
    """An answer that counts the look-ups of a name in it."""
    looked = 0

    def __contains__(self, name):
        Counted.looked += 1
        return dict.__contains__(self, name)


def test_an_answer_of_every_asked_job_in_the_order_asked_is_known_complete_without_a_look_up_each():
    """(270,000 asked jobs at 1,000,000 tasks: ~100 ms of look-ups a round, ~28 ms side by side.)"""
    ask = {f"j{i}": str(i) for i in range(1000)}
    states = [QUEUED, RUNNING, FINISHED, ABSENT]
    jobs = Counted((n, JobInfo(n, i, states[int(i) % 4])) for n, i in ask.items())
    Counted.looked = 0
    assert A.not_listed(ask, jobs) == [n for n, i in ask.items() if int(i) % 4 >= 2]
    assert Counted.looked == 0
    assert A.answers_all(ask, jobs) and Counted.looked == 0
    shuffled = Counted(reversed(list(jobs.items())))
    assert A.answers_all(ask, shuffled) and Counted.looked == len(ask)      # (another order: each looked up)
    del shuffled["j7"]
    assert not A.answers_all(ask, shuffled)
    assert A.not_listed(ask, shuffled)[-1] == "j7"
