"""The layers stay honest: who may import whom inside batchman.

The rules (the closing note of issue 13 repeats them):

* ``batchman.core`` is pure: it imports only ``batchman.core``, msgspec and standard modules
  without side effects (no os, subprocess, time, socket, threading ...).
* ``batchman.util`` imports nothing of batchman.
* ``batchman.backends`` imports only the core, util and other backend modules: never the store,
  the daemon, a face (cli, tui, page), the demo or the shared actions.
* ``batchman.store`` never imports the daemon or a face, and it alone imports ``filelock``
  (others take a side file's lock through ``batchman.store.lock``).
* ``batchman.daemon`` never imports a face, and only its entry point (``batchman.daemon.main``)
  imports click: the steps of an iteration know nothing of a command line.
* Nothing below the faces imports them, except ``batchman.experiment``, which wires the page
  renderer into the store.

Imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "batchman"

PURE_STDLIB = {
    "__future__", "re", "dataclasses", "typing", "math", "difflib", "shlex", "string",
    "posixpath", "collections", "enum", "itertools", "functools", "operator", "bisect", "heapq", "fnmatch",
    "array",        # (a typed list of numbers: core/triggers.Scan keeps a million places in 8 bytes each)
}
FACES = ("batchman.cli", "batchman.tui", "batchman.page")


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module named by an import statement of ``source``, made absolute."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # `from batchman.core import states` names the module batchman.core.states
            found |= {f"{prefix}.{a.name}" for a in node.names if prefix.startswith("batchman")}
    return found


def _under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(module: str, imported: set[str]) -> list[str]:
    """The rules above, for one module and what it imports."""
    bad = []
    ours = {m for m in imported if _under(m, "batchman")}
    if _under(module, "batchman.core"):
        for m in imported:
            top = m.split(".")[0]
            if _under(m, "batchman"):
                if not _under(m, "batchman.core"):
                    bad.append(f"{module} (core) imports {m}")
            elif top not in PURE_STDLIB and top != "msgspec":
                bad.append(f"{module} (core) imports {m}, a module with side effects or a library")
    if _under(module, "batchman.util"):
        bad += [f"{module} (util) imports {m}" for m in ours]
    if _under(module, "batchman.backends"):
        bad += [f"{module} (backend) imports {m}" for m in ours
                if not _under(m, "batchman.backends", "batchman.core", "batchman.util")]
    if _under(module, "batchman.store"):
        bad += [f"{module} (store) imports {m}" for m in ours if _under(m, "batchman.daemon", *FACES)]
    if not _under(module, "batchman.store"):
        bad += [f"{module} imports filelock: only batchman.store takes the lock" for m in imported
                if _under(m, "filelock")]
    if _under(module, "batchman.daemon"):
        bad += [f"{module} (daemon) imports {m}" for m in ours if _under(m, *FACES)]
        if module != "batchman.daemon.main":
            bad += [f"{module} (daemon) imports {m}: only batchman.daemon.main may" for m in imported
                    if _under(m, "click")]
    if not _under(module, *FACES, "batchman.experiment", "batchman.demo"):
        bad += [f"{module} imports the face {m}" for m in ours if _under(m, *FACES)]
    return sorted(set(bad))


def all_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, module_name(path)


def test_every_module_keeps_the_layer_rules():
    bad = []
    for path, module in all_modules():
        bad += violations(module, imports_of(path.read_text(), module, path.name == "__init__.py"))
    assert not bad, "layer rules broken:\n" + "\n".join(bad)


@pytest.mark.parametrize("module, source, expected", [
    ("batchman.core.decide", "from batchman.store import Store", "imports batchman.store"),
    ("batchman.core.decide", "import os", "imports os"),
    ("batchman.core.decide", "def f():\n    import subprocess", "imports subprocess"),
    ("batchman.core.decide", "from batchman.backends.base import JobInfo", "imports batchman.backends"),
    ("batchman.core.decide", "import yaml", "imports yaml"),
    ("batchman.core.model", "from ..tui import app", "imports batchman.tui"),
    ("batchman.backends.batch.slurm", "from batchman.store import Store", "imports batchman.store"),
    ("batchman.backends.batch.slurm", "from batchman.cli import commands", "imports batchman.cli"),
    ("batchman.backends.batch.slurm", "from batchman import actions", "imports batchman.actions"),
    ("batchman.util.files", "from batchman.core import states", "imports batchman.core"),
    ("batchman.store.store", "from batchman.daemon import engine", "imports batchman.daemon"),
    ("batchman.daemon.engine", "from batchman.page import render", "imports the face batchman.page"),
    ("batchman.tui.app", "import filelock", "only batchman.store takes the lock"),
    ("batchman.daemon.recover", "def f():\n    from filelock import FileLock", "only batchman.store takes the lock"),
    ("batchman.daemon.observe", "import click", "imports click"),
    ("batchman.daemon.loop", "def f():\n    from click import echo", "imports click"),
])
def test_the_checker_catches_each_kind_of_breach(module, source, expected):
    found = violations(module, imports_of(source, module))
    assert any(expected in v for v in found), found


def test_the_checker_accepts_what_the_rules_allow():
    ok = imports_of("import re\nimport msgspec\nfrom batchman.core import states as S\n"
                    "from .model import Task", "batchman.core.decide")
    assert violations("batchman.core.decide", ok) == []
    assert violations("batchman.store.lock", imports_of("import filelock", "batchman.store.lock")) == []
    assert violations("batchman.daemon.main", imports_of("import click", "batchman.daemon.main")) == []
    assert violations("batchman.backends.batch.slurm",
                      imports_of("from batchman.backends.base import Runner", "batchman.backends.batch.slurm")) == []
