"""Commands are routed by the view on top: each view declares its handlers (@handles), and
every view command the keymap binds in a context is handled by the views of that context."""

import pytest

from batchman.tui import commands
from batchman.tui.keys import default_keymap
from batchman.tui.views import base, dialogs, help, log, params, task, tasks  # noqa: F401 - register views
from tuihelp import screen


def all_views(cls=base.View):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_views(sub)


KM = default_keymap()
VIEW_BINDINGS = [b for b in KM.bindings if b.name in base.VIEW_COMMANDS]


@pytest.mark.parametrize("binding", VIEW_BINDINGS, ids=lambda b: f"{b.contexts[0]}:{b.key}:{b.command}")
def test_views_of_a_context_handle_its_view_commands(binding):
    owners = [v for v in all_views() if v.keyctx and v.keyctx[0] in binding.contexts]
    assert owners, binding
    for v in owners:
        assert binding.name in v.handlers, f"{v.__name__} ({v.keyctx[0]}) does not handle {binding.command}"


def test_no_app_wide_command_shadows_a_view_command():
    assert not set(commands.COMMANDS) & set(base.VIEW_COMMANDS)


def test_a_view_command_on_a_view_without_it_does_nothing(filled, app_for):
    app = app_for(filled)
    before = screen(app)
    commands.run(app, "log.follow")          # the task list has no log to follow
    assert screen(app) == before


def test_an_unknown_command_is_an_error(filled, app_for):
    with pytest.raises(commands.CommandError):
        commands.run(app_for(filled), "no.such")
