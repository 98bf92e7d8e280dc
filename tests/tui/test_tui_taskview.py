"""One task: history with reasons, segments with the staged flag, job details from the
batch system (in a thread, errors as text), the log following new lines; the parameter dialog."""

import os

import yaml

from batchman import params as P
from batchman.backends.base import BackendUnavailable
from tuihelp import change, screen, task


def test_task_view_history_segments_and_actions(filled, app_for):
    app = app_for(filled)
    app.type("g1001<enter><enter>")
    app.wait_background()
    s = screen(app)
    assert "run 1001  job analysis" in s and "state staging for 2m05s  (staging requested)" in s
    assert "segments (2, 1 staged)" in s
    assert "staged   raw/run_1001.dat.0" in s and "on tape  raw/run_1001.dat.1" in s
    assert "-> new        added" in s and "new -> staging    staging requested  (test writer)" in s
    app.type("x")
    assert task(filled, 1001).request == "kill"
    app.tick()
    assert "staging [kill]" in screen(app)
    app.type("<esc>")
    assert "seg state" in screen(app)


def test_task_view_follows_the_file(filled, app_for):
    app = app_for(filled)
    app.type("g1003<enter><enter>")
    app.wait_background()
    change(filled.store, r1003=dict(state="new", reason="restart requested", error=""))
    app.tick()
    app.wait_background()
    s = screen(app)
    assert "state new" in s and "failed -> new        restart requested" in s


def test_job_details_in_background(filled, app_for, monkeypatch):
    class Fake:
        def details(self, job_id):
            return f"JobId={job_id} JobState=RUNNING\nNodeList=node7"
    monkeypatch.setattr("batchman.backends.factory.make_batch", lambda params: Fake())
    app = app_for(filled)
    app.type("g1002<enter><enter>d")
    app.wait_background()
    s = screen(app)
    assert "JobId=4711 JobState=RUNNING" in s and "NodeList=node7" in s


def test_job_details_error_is_text(filled, app_for, monkeypatch):
    class Down:
        def details(self, job_id):
            raise BackendUnavailable("scontrol: timed out after 60 s")
    monkeypatch.setattr("batchman.backends.factory.make_batch", lambda params: Down())
    app = app_for(filled)
    app.type("g1002<enter><enter>d")
    app.wait_background()
    assert "could not ask the batch system: scontrol: timed out after 60 s" in screen(app)
    app.type("<esc>g1000<enter><enter>d")
    assert "this task has no batch job id (yet)" in screen(app)


def test_log_view_follows_new_lines(filled, app_for):
    app = app_for(filled)
    path = filled.paths.log(1002, "analysis", 1, "out")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(f"line {i}\n" for i in range(100)))
    app.type("g1002<enter><enter>l")
    s = screen(app)
    assert "out log of run 1002" in s and "line 99" in s and "following" in s
    with open(path, "a") as f:
        f.write("event 100 done\npartial")
    app.tick()
    s = screen(app)
    assert "event 100 done" in s and "partial" in s
    app.type("f")
    with open(path, "a") as f:
        f.write(" line\nlater\n")
    app.tick()
    assert "later" not in screen(app) and "paused" in screen(app)
    app.type("f")
    assert "later" in screen(app)
    app.type("<tab>")
    assert "(no log yet:" in screen(app) and "err log" in screen(app)
    app.type("<esc><esc>")
    assert "seg state" in screen(app)


def test_params_dialog_tabs_validate_and_save(filled, app_for):
    app = app_for(filled)
    app.type("P")
    s = screen(app)
    assert "daemon" in s and "staging" in s and "policies" in s and "delay" in s
    app.type("<tab><tab>")
    assert "max_jobs" in screen(app)
    dialog = app.top()
    dialog.fields["batch.max_jobs"].set_edit_text("many")
    dialog.fields["daemon.delay"].set_edit_text("-1")
    app.type("<ctrl s>")
    s = screen(app)
    # the CLI's own messages (params.validate)
    expected = P.ParamError
    try:
        P.validate({"batch": {"max_jobs": "many"}, "daemon": {"delay": -1}}, filled.root)
    except expected as e:
        for problem in e.problems:
            assert problem in s
    assert "not saved: 2 problem(s)" in s
    dialog.fields["batch.max_jobs"].set_edit_text("7")
    dialog.fields["daemon.delay"].set_edit_text("2.5")
    app.type("<shift tab>")
    assert "verify_queue" in screen(app)
    app.type("<f2>")
    assert "saved" in screen(app) and "parameters" not in screen(app).splitlines()[2]
    loaded = P.load(filled.root)
    assert loaded["batch.max_jobs"] == 7 and loaded["daemon.delay"] == 2.5
    assert loaded["staging.verify_queue"] is True
    with open(os.path.join(filled.root, P.CONFIG_NAME)) as f:
        assert yaml.safe_load(f)["batch"]["max_jobs"] == 7
    assert app.params["batch.max_jobs"] == 7


def test_params_dialog_cancel_writes_nothing(filled, app_for):
    path = os.path.join(filled.root, P.CONFIG_NAME)
    before = open(path).read()
    app = app_for(filled)
    app.type("P")
    app.top().fields["batch.max_jobs"].set_edit_text("9")
    app.type("<esc>")
    assert open(path).read() == before
