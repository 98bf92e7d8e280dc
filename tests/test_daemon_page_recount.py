"""The page's periodic recount in a living daemon (issue 18): the loop leaves it out of its rounds
and does it between them, as it folds the change log; every task is compared with the page's
tally in full there (at 1,000,000 tasks the round it fell in took ~2.8 s instead of ~0.8 s:
`python benchmarks/bench_campaign.py --sizes 1000000 --only-iter`, 'recount')."""

from batchman.core import states as S
from batchman.daemon.engine import Engine
from batchman.daemon.loop import loop
from batchman.page.tally import Tally

from e2e_helpers import make_experiment
from test_engine_survey import Staging
from test_observe_done import Batch     # every job running unless told otherwise


def test_the_loop_compares_the_pages_tally_between_its_rounds_not_in_them(tmp_path, monkeypatch):
    e = make_experiment(tmp_path, range(1, 6))
    with e.store.transaction("test") as st:
        for t in st.tasks:
            t.state, t.attempt, t.job_name, t.job_id = S.COMPLETED, 1, f"bm.{st.store_id}.{t.run}.{t.job}.1", str(t.run)
        st.tasks[0].state = S.RUNNING            # (work left: the loop goes on)
    eng = Engine(e.params, e.store, Batch(), Staging(), mode="test")
    page = e.store.render_html
    page.rebuild_after = 0.0                     # (due at every chance)
    events: list[str] = []
    stop: list = []
    unlike, run_once = Tally.unlike, eng.run_once

    def spied_unlike(tally, tasks):
        events.append("compare")
        return unlike(tally, tasks)

    def spied_round(*a, **k):
        events.append("round")
        try:
            return run_once(*a, **k)
        finally:
            events.append("end")
            if events.count("round") == 3:
                stop.append("enough")
    monkeypatch.setattr(Tally, "unlike", spied_unlike)
    monkeypatch.setattr(eng, "run_once", spied_round)
    loop(eng, 0.01, False, False, lambda text: None, stop)
    assert page.between_rounds
    inside = [events[i] for i in range(len(events)) if events[:i].count("round") > events[:i].count("end")]
    assert "compare" not in inside, events
    assert events.count("compare") >= 2, events    # after the first round and the second (the third: stop)


def test_a_round_outside_the_loop_does_its_pages_recount_itself(tmp_path, monkeypatch):
    """oneshot, and any process that writes: the periodic recount in the page it renders."""
    e = make_experiment(tmp_path, range(1, 4))
    eng = Engine(e.params, e.store, Batch(), Staging(), mode="test")
    e.store.render_html.rebuild_after = 0.0
    compared: list[int] = []
    unlike = Tally.unlike
    monkeypatch.setattr(Tally, "unlike", lambda tally, tasks: compared.append(1) or unlike(tally, tasks))
    eng.run_once(set())
    eng.run_once(set())
    assert compared and not e.store.render_html.between_rounds
