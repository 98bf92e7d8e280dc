"""Issue 16.1 in the terminal UI: when the parameters in use are not batchman.yaml's, the
header says so on its first banner line: the daemon's (it keeps its previous settings, the
status file's params_problem) and the screen's own (opened on a broken file, read with the
last good values)."""

import os
import time

from batchman import params as P
from batchman.experiment import open_experiment
from tuihelp import screen

SMALL = (80, 24)


def lines(app):
    s = screen(app, SMALL).splitlines()
    assert len(s) == 24 and all(len(x) <= 80 for x in s)
    return s


def break_the_file(root):
    path = os.path.join(root, P.CONFIG_NAME)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace("\n  delay: ", "\n  dealy: ", 1))


def test_the_daemons_kept_settings_show_first_in_the_header(filled, app_for):
    app = app_for(filled)
    assert "parameters in use" not in screen(app, SMALL)
    with filled.store.transaction("batchman-daemon") as st:
        st.params_problem = "unknown parameter 'daemon.dealy'"
        st.params_problem_since = time.time() - 300
    app.tick()
    s = lines(app)
    assert s[2].startswith(" parameters in use are not the file's: unknown parameter 'daemon.dealy'")
    assert s[3].startswith(" 10 shown")
    assert "unknown parameter 'daemon.dealy' (the daemon keeps its previous ones since" in screen(app, (200, 40))
    with filled.store.transaction("batchman-daemon") as st:
        st.params_problem, st.params_problem_since = "", None      # fixed: the daemon took the file
    app.tick()
    assert "parameters in use" not in screen(app, SMALL)


def test_a_screen_opened_on_a_broken_file_says_it_reads_with_the_last_good_values(filled, app_for):
    break_the_file(filled.root)
    e = open_experiment(filled.root, strict=False)             # what `batchman` alone does
    assert e.params_problem
    app = app_for(e)
    s = lines(app)
    assert s[2].startswith(" parameters in use are not the file's: unknown parameter 'daemon.dealy'")
    assert "using the last good parameters" in screen(app, (300, 40))
    assert "10 shown" in s[3]                                    # the tasks are there to act on
    with e.store.transaction("batchman-daemon") as st:
        st.params_problem = "unknown parameter 'daemon.dealy'"   # the daemon's word on the same key: said once
    app.tick()
    assert screen(app, (400, 24)).count("daemon.dealy") == 1
