#!/usr/bin/env python3
"""What one look at every live task or every asked job costs in a steady daemon iteration of
bench_campaign's mix (issue 18): the part of the iteration that follows the number of tasks, not
the number of changes.

    python benchmarks/bench_passes.py --tasks 1000000 [--dir DIR] [--tmp TMP]

Builds bench_campaign's campaign of --tasks tasks (or copies DIR, a campaign it built: --keep),
runs a daemon (its stand-ins: 1 % of the jobs end at each query) for four iterations, keeps what
the last one planned over and asked the batch system about, and times, on those objects (median
of 7):

  planner's look      plan._changing over the live tasks (what plan_budget does first), and over
                      only the tasks it yields: the difference is what following only the tasks
                      that may change would save
  answer: states      daemon/answer.said: which jobs the answer lists as neither queued nor
                      running, and which finished
  answer: complete    daemon/answer.not_listed: whether every asked job was answered
  answer: look-up     a look-up of each asked job in the answer (what not_listed did before
                      answers_all)
  page: state pass    the page's comparison of every task's state with the one it counted
                      (page/tally.py, when more tasks changed than it finds one by one)
  page: written       the positions of the tasks the last iteration wrote, found by run from
                      where the last one was (page/where.py: what the page does instead of the
                      pass when few enough were written)
  page: still counted those tasks compared with what the tally counted (Tally._same: a task
                      written in fields the page does not count is left where it is)

and two passes a daemon in its loop made that the benchmark's stand-ins never showed (no done
files, no counters), beside what replaced them:
  done files          the job names of every live task in the batch system (which done files to
                      remove), against a look at the jobs seen done (1 % of the jobs)
  counters            the live tasks whose jobs reported counters (1 % of the jobs), against a
                      look-up of each reported job by name
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from itertools import compress
from operator import attrgetter, ne

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_campaign as BC  # noqa: E402 - also puts the repository on sys.path

from batchman.core import plan as PL  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.daemon import answer as A  # noqa: E402
from batchman.daemon import intents as I  # noqa: E402
from batchman.daemon import observe as O  # noqa: E402
from batchman.daemon import record as R  # noqa: E402
from batchman.daemon.engine import Engine  # noqa: E402
from batchman.daemon.inbatch import InBatch  # noqa: E402
from batchman.page import where as W  # noqa: E402
from batchman.page.live import LivePage  # noqa: E402
from batchman.page.tally import Tally  # noqa: E402


def captured(root: str, n: int) -> dict:
    """Four iterations of a daemon on ``root``; what the last one planned over and asked."""
    params = BC.P.load(root)
    store = BC.store_for(params)
    queued = {t.job_name for t in store.read().tasks if t.state == S.QUEUED}
    eng = Engine(params, store, BC.CampaignBatch(max(1, n // 100), queued), BC.CampaignStaging(), mode="bench")
    got: dict = {}
    plan_budget, query, page = PL.plan_budget, O.Observer._query_batch, LivePage.__call__

    def planning(tasks, obs, pol, only=None, tokens=None, unretried=None, room=None):
        got.update(live=tasks, obs=obs, unretried=dict(unretried or {}), grace=pol.submit_grace)
        return plan_budget(tasks, obs, pol, only, tokens, unretried, room)

    def asking(self, ask, obs, *a, **kw):
        query(self, ask, obs, *a, **kw)
        got["ask"], got["jobs"] = dict(ask), dict(obs.jobs or {})     # (before markers read take some out)

    def paging(self, status, changed=None, touched=None, origin=None, base=None):
        got["touched"] = touched
        return page(self, status, changed, touched, origin, base)

    I.P.plan_budget, O.Observer._query_batch, LivePage.__call__ = planning, asking, paging
    try:
        for _ in range(4):
            eng.run_once()
    finally:
        I.P.plan_budget, O.Observer._query_batch, LivePage.__call__ = plan_budget, query, page
    got["tasks"] = store.read().tasks
    return got


def timed(fn, repeat: int = 7) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def passes(got: dict) -> list[tuple[str, float, str]]:
    live, obs, unretried, grace = got["live"], got["obs"], got["unretried"], got["grace"]
    jobs, ask, tasks = got["jobs"], got["ask"], got["tasks"]
    yields, unlisted = list(PL._changing(live, obs, unretried, grace)), A.unlisted(jobs)     # (as observe has it)
    counted, state = list(map(attrgetter("state"), tasks)), attrgetter("state")
    runs, touched = list(map(attrgetter("run"), tasks)), got["touched"] or []
    upto = W.sorted_upto(runs)
    ids = W.ids_of(tasks)
    tally, found = Tally(tasks), W.positions(tasks, runs, upto, len(tasks), touched) or []
    inbatch = InBatch(live)
    seen = dict.fromkeys(list(inbatch.named)[::100], {"events": 1})     # (1 % of the jobs: ended, or reporting)
    return [
        ("planner's look, every live task", timed(lambda: list(PL._changing(live, obs, unretried, grace))),
         f"{len(live):,} live tasks"),
        ("planner's look, what it yields", timed(lambda: list(PL._changing(yields, obs, unretried, grace))),
         f"{len(yields):,} tasks"),
        ("answer: states (said)", timed(lambda: A.said(jobs)), f"{len(jobs):,} jobs"),
        ("answer: complete (not_listed)", timed(lambda: A.not_listed(ask, jobs, unlisted)), f"{len(ask):,} asked"),
        ("answer: a look-up of each asked job", timed(lambda: all(map(jobs.__contains__, ask))), ""),
        ("page: state pass over every task", timed(lambda: list(compress(range(len(tasks)),
                                                                           map(ne, map(state, tasks), counted)))),
         f"{len(tasks):,} tasks"),
        ("page: written, found from the last", timed(lambda: W.positions(tasks, runs, upto, len(tasks), touched)),
         f"{len(touched):,} tasks written" + ("" if W.positions(tasks, runs, upto, len(tasks), touched) is not None
                                              else " (not all found: the page would make the pass)")),
        ("page: written, by the ids of the places", timed(lambda: W.positions(tasks, runs, upto, len(tasks), touched,
                                                                        ids)), "(the tally keeps them)"),
        ("done files: every live task's job", timed(lambda: {t.job_name for t in live if t.state in S.IN_BATCH
                                                               and t.job_name}), f"{len(live):,} live tasks"),
        ("done files: the jobs seen done", timed(lambda: [n for n in seen if (t := inbatch.task_of(n)) is None
                                                          or t.state not in S.IN_BATCH]),
         f"{len(seen):,} jobs"),
        ("counters: every live task", timed(lambda: [t for t in live if t.job_name in seen]), ""),
        ("counters: each job reported", timed(lambda: R.counted(seen, inbatch)), f"{len(seen):,} jobs"),
        ("page: still counted as they are", timed(lambda: [i for i in found if not tally._same(i, tasks[i])]),
         f"{len(found):,} positions"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--tasks", type=int, default=1_000_000, help="campaign size (default 1,000,000)")
    ap.add_argument("--dir", help="a campaign bench_campaign built for this size (copied, not changed)")
    ap.add_argument("--tmp", default=None, help="where to build or copy it (default: the system's temp dir)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-passes-", dir=a.tmp)
    try:
        root = os.path.join(work, "c")
        if a.dir:
            BC.clone(a.dir, root)
        else:
            print(f"building {a.tasks:,} tasks in {root} ...", file=sys.stderr)
            os.makedirs(root)
            BC.build(root, a.tasks)
        print(BC.machine_line(BC.machine()))
        for what, s, note in passes(captured(root, a.tasks)):
            print(f"  {what:38s} {s * 1e3:7.1f} ms   {note}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
