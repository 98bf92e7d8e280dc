"""The batchman command as a user types it, for the CLI tests (with conftest.py's ``exp_dir``)."""

from click.testing import CliRunner

from batchman.cli.commands import main


def run(*args, input=None):
    """``batchman ARGS...`` in the current directory, through click's CliRunner."""
    return CliRunner().invoke(main, list(args), input=input)
