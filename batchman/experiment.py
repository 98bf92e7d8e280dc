"""An experiment directory opened: its parameters, its status store and its file paths."""

from __future__ import annotations

import os
from dataclasses import dataclass

from batchman.page.live import LivePage
from batchman import params as P
from batchman.paths import Paths
from batchman.store.store import Store


@dataclass
class Experiment:
    root: str
    params: P.Params
    store: Store
    paths: Paths
    params_problem: str = ""      # not strict: why batchman.yaml was not used as it is (one line)


def store_for(params: P.Params) -> Store:
    html_path = params.path("daemon.html_file")
    refresh = int(max(5, min(300, params["daemon.delay"])))

    # one page per process, kept across its writes: each costs what changed (batchman.page.live)
    page = LivePage(stale_after=params.stale_after, refresh=refresh, title=params.experiment)
    store = Store(params.status_path, lock_timeout=params["daemon.lock_timeout"], html=page, html_path=html_path,
                  traces=(Paths(params).attempts,))     # attempt directories: a status file has been here
    page.journal = store.journal_path
    page.job_order = tuple(params.jobs.names())     # a run's rows in batchman.yaml's order, as `batchman list`
    # its tally, for the next process: beside the status file, not in the page's (public) directory
    page.saved = store.path + ".tally" if html_path else ""
    return store


def open_experiment(directory: str | None = None, strict: bool = True) -> Experiment:
    """The experiment at ``directory`` (or its nearest parent). ``strict``: a batchman.yaml that
    does not validate is refused (commands that start work); otherwise the last good parameters
    are used and ``params_problem`` says why (reading commands and requests)."""
    root = P.find_root(directory)
    if root is None:
        where = os.path.abspath(directory or os.getcwd())
        raise P.ParamError([f"no {P.CONFIG_NAME} in {where} or any parent directory; "
                            f"`batchman init` writes one (or use -C DIR)"])
    problem = ""
    if strict:
        params = P.load(root)
    else:
        from batchman.params_fallback import load_for_reading
        params, problem = load_for_reading(root)
    return Experiment(root, params, store_for(params), Paths(params), problem)
