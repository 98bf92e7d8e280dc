"""Issue 16.5: a corrupt status file. The TUI said "0 task(s): none yet: press a to add runs"
with the real error only in the message line, and never mentioned `batchman recover`."""

import os

import batchman.actions as A
from tuihelp import screen

SMALL = (80, 24)


def corrupt(exp):
    with open(exp.store.path, "wb") as f:
        f.write(b"\x00\x01 this is not a status file")


def test_corrupt_status_file_is_the_main_message_with_recover(exp, app_for):
    A.add_runs(exp.store, [1000, 1001])
    A.add_runs(exp.store, [1002])            # a second write: the good copy is kept as the backup
    corrupt(exp)
    app = app_for(exp)
    s = screen(app, SMALL)
    assert "none yet" not in s and "press a to add runs" not in s
    assert "status file unreadable" in s.splitlines()[0]
    body = "".join(s.split())              # the error wraps in the list area (long paths too)

    def shown(text):
        return "".join(text.split()) in body
    assert shown("The status file cannot be read: no task is shown and no change can be made.")
    assert shown(f"the status file {exp.store.path} is unreadable")
    assert shown(f"The previous good copy is {exp.store.path}.bak")     # where the backup is
    assert shown(f"batchman recover -C {exp.root}")
    assert "batchman recover rebuilds it" in s.splitlines()[-1]


def test_the_list_comes_back_when_the_file_is_readable_again(exp, app_for):
    A.add_runs(exp.store, [1000, 1001])
    A.add_runs(exp.store, [1002])
    good = open(exp.store.path, "rb").read()
    app = app_for(exp)
    assert " 1001 " in screen(app, SMALL)
    corrupt(exp)
    os.utime(exp.store.path, (1, 1))
    app.tick()
    s = screen(app, SMALL)
    assert " 1001 " not in s and "batchman recover" in s
    with open(exp.store.path, "wb") as f:
        f.write(good)
    app.tick()
    s = screen(app, SMALL)
    assert " 1001 " in s and "3 task(s): 3 new" in s and "recover" not in s
