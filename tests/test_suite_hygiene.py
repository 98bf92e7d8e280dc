"""What one test leaves behind in the process must not reach the next (tests/conftest.py).

The two cases run in this order (pytest keeps a file's order): the first changes a task in place
and writes nothing; the second finds nothing of it."""

import gc

from batchman.core import model
from batchman.core.model import Task


def test_a_test_that_changes_a_task_without_writing_it():
    t = Task(run=1)
    t.state = "failed"
    assert model.CHANGED.get(id(t)) is t


def test_the_next_test_finds_no_changed_task_left_over():
    assert model.CHANGED == {}


def test_a_test_that_switches_the_collector_off():
    gc.disable()            # as batchman-daemon oneshot does, to its end
    assert not gc.isenabled()


def test_the_next_test_finds_the_collector_on():
    assert gc.isenabled()
