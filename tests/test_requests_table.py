"""Which requests apply in which states: one table (states.REQUEST_APPLIES), and every place
that decides it (actions, the store's merge of queued lines, decide, the CLI, the TUI) asks it."""

import pytest

from batchman import actions as A
from batchman.core import states as S
from batchman.core.model import Status, Task
from batchman.store.store import apply_requests


@pytest.mark.parametrize("state", S.ALL)
def test_kill_applies_only_to_active_tasks(state):
    assert S.request_applies(S.KILL, state) == (state in S.ACTIVE)


@pytest.mark.parametrize("state", S.ALL)
def test_restart_and_purge_apply_everywhere_skip_not_to_skipped(state):
    assert S.request_applies(S.RESTART, state) and S.request_applies(S.PURGE, state)
    assert S.request_applies(S.SKIP, state) == (state != S.SKIPPED)


def test_every_request_has_a_row_and_unknown_ones_apply_nowhere():
    assert set(S.REQUEST_APPLIES) == set(S.REQUESTS) == set(S.REQUEST_REFUSAL)
    assert not S.request_applies("explode", S.RUNNING)


@pytest.mark.parametrize("state", S.ALL)
@pytest.mark.parametrize("what", S.REQUESTS)
def test_the_store_merges_a_queued_line_only_where_the_table_says(state, what):
    st = Status(generation=3, tasks=[Task(run=1, state=state)])
    apply_requests(st, [{"g": 3, "field": "request", "value": what, "keys": ["1.analysis"]}])
    assert (st.tasks[0].request == what) == S.request_applies(what, state)


def test_actions_queue_only_where_the_table_says(tmp_path):
    from batchman.store.store import Store
    store = Store(str(tmp_path / "status.json"))
    A.add_runs(store, [1, 2])
    with store.transaction("t") as st:
        st.tasks[1].state = S.COMPLETED
    assert A.queue_request(store, {"1.analysis", "2.analysis"}, S.KILL) == 1
    assert {t.run: t.request for t in store.read().tasks} == {1: "kill", 2: ""}
