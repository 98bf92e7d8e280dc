"""Tasks held compactly (issue 18): the empty dicts and tuples of a task are shared, its state
string is shared, and the files scripts read look exactly as they did."""

import copy
import json
import pickle

import msgspec
import pytest

from batchman.core import model
from batchman.core import states as S
from batchman.core.model import EMPTY, Attempt, Task
from batchman.experiment import open_experiment

from clihelp import run  # noqa: E402 - with the exp_dir fixture of conftest.py

DICTS = ("counters", "used", "resources", "retries", "meta")
TUPLES = ("past", "inputs", "outputs")
FULL = {"counters": {"events": 5}, "used": {"memory_mb": 100}, "resources": {"memory_mb": 200},
        "retries": {"timeout": 1}, "meta": {"dataset": "A"}, "past": (Attempt(n=1, state=S.FAILED),),
        "inputs": ("/in/a",), "outputs": ("/out/a", "/out/b")}


def _decode_tasks(data: bytes) -> list[Task]:
    return model.decode(b'{"schema":1,"tasks":' + data + b"}").tasks


# ---- pure: what a decoded or changed task holds -----------------------------------------------
def test_decoded_tasks_without_containers_share_one_empty_dict_and_tuple_each():
    a, b = _decode_tasks(b'[{"run":1},{"run":2,"state":"completed"}]')
    for f in DICTS:
        assert getattr(a, f) is EMPTY and getattr(b, f) is EMPTY, f
    for f in TUPLES:
        assert getattr(a, f) == () and getattr(a, f) is getattr(b, f), f


def test_decoded_containers_are_plain_dicts_and_tuples():
    t, = _decode_tasks(b'[{"run":1,"meta":{"d":"A"},"outputs":["/o"],"past":[{"n":1}],"inputs":[]}]')
    assert type(t.meta) is dict and t.meta == {"d": "A"}
    assert t.outputs == ("/o",) and t.past == (Attempt(n=1),) and t.inputs == ()


def test_decoded_states_are_the_constants_themselves():
    tasks = _decode_tasks(b'[{"run":1,"state":"completed","killed_in":"running","past":[{"n":1,"state":"failed"}]},'
                          b'{"run":2,"state":"completed"}]')
    assert tasks[0].state is S.COMPLETED and tasks[1].state is S.COMPLETED
    assert tasks[0].killed_in is S.RUNNING and tasks[0].past[0].state is S.FAILED


def test_a_file_with_a_state_no_batchman_knows_is_refused():
    with pytest.raises(msgspec.ValidationError, match="state"):
        _decode_tasks(b'[{"run":1,"state":"finished"}]')


def test_the_shared_empty_dict_refuses_changes_in_place():
    t = Task(run=1)
    for change in (lambda: t.meta.__setitem__("k", "v"), lambda: t.counters.update(a=1),
                   lambda: t.retries.setdefault("x", 1), lambda: t.used.pop("x", None), t.resources.clear):
        with pytest.raises(TypeError, match="assign a new dict"):
            change()
    assert EMPTY == {} and len(EMPTY) == 0


def test_an_assigned_empty_container_becomes_the_shared_one_and_a_list_a_tuple():
    t = Task(run=1, **FULL)
    model.CHANGED.clear()
    for f in DICTS:
        setattr(t, f, {})
        assert getattr(t, f) is EMPTY, f
    t.outputs, t.inputs, t.past = ["/o"], [], [Attempt(n=2)]
    assert t.outputs == ("/o",) and t.inputs == () and t.past == (Attempt(n=2),)
    assert model.CHANGED == {id(t): t}


def test_fields_set_at_once_are_as_set_one_by_one_and_the_task_recorded_changed():
    """model.update (a decision's fields): the same task as setattr of each, recorded once."""
    fields = {**{f: {} for f in DICTS}, "outputs": ["/o"], "inputs": [], "past": [Attempt(n=2)],
              "state": S.RUNNING, "exit_code": 3, "reason": "r"}
    one, many = Task(run=1, **FULL), Task(run=1, **FULL)
    model.CHANGED.clear()
    for f, v in fields.items():
        setattr(one, f, v)
    model.CHANGED.clear()
    model.update(many, fields)
    assert many == one and model.CHANGED == {id(many): many}
    assert all(getattr(many, f) is EMPTY for f in DICTS) and many.outputs == ("/o",) and many.inputs == ()
    with pytest.raises(AttributeError):
        model.update(many, {"no_such_field": 1})


def test_a_task_copies_and_pickles_keeping_the_shared_empty_dict():
    t = Task(run=1, outputs=("/o",))
    for other in (copy.copy(t), copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
        assert other == t and other.meta is EMPTY and other.counters is EMPTY
    assert copy.deepcopy(EMPTY) is EMPTY and type(dict(EMPTY)) is dict


# ---- the JSON scripts read: unchanged -------------------------------------------------------
def test_empty_containers_are_still_left_out_of_a_task_s_json():
    t = Task(run=1, **FULL)
    for f in DICTS:
        setattr(t, f, {})
    t.past, t.inputs, t.outputs = [], [], ()
    assert model.encode(t) == b'{"run":1}'
    assert model.encode(Attempt(n=1, resources=model.frozen({}))) == b'{"n":1}'


def test_filled_containers_are_json_objects_and_arrays():
    assert json.loads(model.encode(Task(run=1, **FULL))) == {
        "run": 1, "counters": {"events": 5}, "used": {"memory_mb": 100}, "resources": {"memory_mb": 200},
        "retries": {"timeout": 1}, "meta": {"dataset": "A"}, "past": [{"n": 1, "state": "failed"}],
        "inputs": ["/in/a"], "outputs": ["/out/a", "/out/b"]}


def test_status_file_and_list_json_read_by_a_script_are_unchanged(exp_dir):
    store = open_experiment(str(exp_dir)).store
    with store.transaction("test") as st:
        st.tasks = [Task(run=1, state=S.COMPLETED, **FULL), Task(run=2, state=S.FAILED, **FULL)]
    with store.transaction("test") as st:
        t = st.index()["2.analysis"]
        for f in DICTS:
            setattr(t, f, {})
        t.past, t.inputs, t.outputs = [], [], []
    with open(exp_dir / "status.json", encoding="utf-8") as f:     # small: rewritten whole, no change log
        tasks = {t["run"]: t for t in json.load(f)["tasks"]}
    full = json.loads(model.encode(Task(run=1, **FULL)))
    assert all(tasks[1][k] == full[k] for k in FULL)
    assert not any(k in tasks[2] for k in FULL), tasks[2]
    listed = {t["run"]: t for t in json.loads(run("list", "--json").output)["tasks"]}
    assert listed[1]["outputs"] == ["/out/a", "/out/b"] and listed[1]["meta"] == {"dataset": "A"}
    assert (listed[2]["outputs"], listed[2]["inputs"], listed[2]["meta"], listed[2]["counters"]) == ([], [], {}, {})
