"""How `batchman` and `batchman-daemon` end on an error a person can act on: one line naming
what is wrong (exit code 1), never a traceback unless ``--debug`` asks for it.

Both entry points wrap their work in :func:`plain_errors`; each keeps only what is its own
(the daemon's exit code 3 when its status file is lost, its exit code 130 on a second Ctrl-C).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import click

from batchman.backends.base import BackendError
from batchman.core.runspec import RunSpecError
from batchman.params import ParamError
from batchman.report import ReportError
from batchman.store.errors import StoreError, disk_full, in_words
from batchman.util import procs

# Errors whose text already says what is wrong and what to do.
PLAIN = (StoreError, ParamError, RunSpecError, ReportError, BackendError)


@contextlib.contextmanager
def plain_errors(debug: Callable[[], bool], status_path: Callable[[], str | None] = lambda: None) -> Iterator[None]:
    """Our errors become ``click.ClickException`` (one line, exit code 1); an OSError names its
    file (a full disk or quota: else the directory of ``status_path()``, the status file of the
    experiment opened, if any); a reader gone away (``... | head -1``) ends the process quietly
    with exit code 0. ``debug()`` (asked once the error came: `batchman --debug` is known only
    then): our errors and OSErrors propagate with their traceback."""
    try:
        yield
    except BrokenPipeError:
        procs.reader_gone()
    except PLAIN as e:
        if debug():
            raise
        raise click.ClickException(str(e)) from None
    except OSError as e:      # a file or directory we could not use: say which, no traceback
        if debug():
            raise
        raise click.ClickException(in_words(e, status_path() if disk_full(e) else None)) from None
