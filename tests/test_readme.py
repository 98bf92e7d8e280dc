"""The README's two promises: one command runs the demo, and the test command is exactly what
.ci/run runs (so a change to one without the other fails here, not on a new user's machine)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def command_under(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```\n(.+?)\n```", section, re.S).group(1).strip()


def test_the_test_command_is_exactly_what_ci_runs():
    cmd = command_under("## Run the tests")
    last = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln.strip()][-1]
    assert "\n" not in cmd and last.strip() == cmd


def test_the_demo_command_installs_into_a_venv_and_runs_the_demo():
    cmd = command_under("## Try it")
    assert "\n" not in cmd and cmd.startswith("python3 -m venv ") and cmd.endswith("batchman demo")
