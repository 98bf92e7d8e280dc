"""Helpers for the TUI tests: build experiments, change the file as another writer, read the screen."""

from __future__ import annotations

import os

from batchman import params as P
from batchman.experiment import open_experiment
from batchman.store.store import Store

SIZE = (120, 40)



def make_experiment(root, **overrides):
    values = P.defaults()
    values.update(overrides)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, P.CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(P.render_yaml(values))
    return open_experiment(str(root))


def change(store: Store, who: str = "test writer", **by_run):
    """Another writer: set fields of tasks by run, e.g. change(store, r1003=dict(state='failed'))."""
    with store.transaction(who) as st:
        for t in st.tasks:
            fields = by_run.get(f"r{t.run}")
            if fields:
                if "state" in fields and fields["state"] != t.state:
                    store.record(t.key, t.state, fields["state"], fields.get("reason", "test"), who)
                for k, v in fields.items():
                    setattr(t, k, v)


def screen(app, size=SIZE) -> str:
    return app.render(size)


def line_of(app, needle: str, size=SIZE) -> str:
    for line in screen(app, size).splitlines():
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not on screen:\n{screen(app, size)}")


def task(exp, run: int):
    return next(t for t in Store(exp.store.path).read().tasks if t.run == run)
