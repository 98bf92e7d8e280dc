"""Every binding names an existing command that takes its arguments; help lists every key."""

import pytest

from batchman.tui import commands
from batchman.tui.keys import CONTEXTS, Keymap, default_keymap
from tuihelp import screen

KM = default_keymap()


@pytest.mark.parametrize("binding", KM.bindings, ids=lambda b: f"{b.contexts[0]}:{b.key}:{b.command}")
def test_commands_exist(binding):
    assert commands.check(binding.command) is None
    assert binding.help


def test_every_context_has_bindings_and_every_binding_a_known_context():
    used = {c for b in KM.bindings for c in b.contexts}
    assert used == set(CONTEXTS)


def test_unknown_context_is_refused():
    with pytest.raises(ValueError):
        Keymap().add("x", "help", ["nowhere"], "?")


def test_later_binding_replaces_earlier_in_the_same_context():
    km = Keymap()
    km.add("x", "help", ["global"], "one")
    km.add("x", "quit", ["global"], "two")
    assert km.get(("global",), "x").command == "quit"
    assert len(km.bindings) == 1


def test_help_lists_every_key(filled, app_for):
    app = app_for(filled)
    app.type("?")
    view = app.top()
    def text_of(w):   # a line is a Text, or Columns of key and help
        return " ".join(text_of(c) for c, _ in w.contents) if hasattr(w, "contents") else str(w.text)
    text = "\n".join(text_of(w) for w in view.lines)
    for b in KM.bindings:
        assert b.help in text
    assert "Everywhere" in screen(app) and "this help: every key" in screen(app)
    app.type("<esc>")
    assert "1000 analysis" in screen(app)
