"""The `batchman` command: the click group of ``main`` and every command, one module per theme:

  main       the group, -C and --debug, errors to one-line messages
  options    shared options (--state, --job, --file, --json, --yes, ...) and task selection
  reading    list, show, export-html
  requests   kill, restart, purge, skip, hold, release, priority, pause, resume
  adding     add, run, watch, report (from inside a job)
  setup      check, demo (init is here)
  repair     adopt, recover

Exit codes: 0 done, 1 refused or failed (the message names what and why), 2 bad usage.
"""

from __future__ import annotations

import os

import click

from batchman import params as P
from batchman.cli.main import main
from batchman.cli import adding, reading, repair, requests, setup  # noqa: F401 - they register their commands
from batchman.cli import notify_cmds
from batchman.util.files import atomic_write

__all__ = ["main"]


# ---- init / check ---------------------------------------------------------------
@main.command()
@click.option("--print", "to_stdout", is_flag=True, help="Print the file instead of writing it.")
@click.option("--force", is_flag=True, help="Overwrite an existing batchman.yaml (with --example: every file of the example).")
@click.option("--example", "example", metavar="NAME",
              help="Copy a complete example experiment here instead: laptop, hallc-replay, lcls-arp, "
                   "alcap-production, per-file (--list-examples describes them).")
@click.option("--list-examples", is_flag=True, help="List the examples and what each shows.")
@click.pass_context
def init(ctx, to_stdout, force, example, list_examples):
    """Write a commented batchman.yaml with every parameter and its default,
    or copy an example experiment (--example NAME) to start from."""
    if list_examples or example:
        from batchman import examples as X
        try:
            if list_examples:
                for name in X.list_examples():
                    click.echo(f"{name:18} {X.describe(name)}")
                return
            if to_stdout:
                click.echo(X.config_text(example))
                return
            root = os.path.abspath(ctx.obj.get("dir") or os.getcwd())
            written = X.copy_example(example, root, force=force)
        except X.ExampleError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"copied example {example!r} into {root}: {', '.join(written)}\n"
                   f"next: read README.md there (what it shows, what to change, the commands to run)")
        return
    text = P.render_yaml()
    if to_stdout:
        click.echo(text)
        return
    root = os.path.abspath(ctx.obj.get("dir") or os.getcwd())
    path = os.path.join(root, P.CONFIG_NAME)
    if os.path.exists(path) and not force:
        raise click.ClickException(f"{path} exists already; edit it, or use --force to start from the defaults")
    os.makedirs(root, exist_ok=True)
    atomic_write(path, text)
    click.echo(f"wrote {path}\nnext: edit it (stub_dir, cache_dir, command, backend...), then `batchman check`")


notify_cmds.register(main)


if __name__ == "__main__":  # pragma: no cover
    main()
