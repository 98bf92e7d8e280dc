"""The example experiments of ``examples/`` (``batchman init --example NAME``).

The top-level ``examples/`` directory of the source tree is the source of truth. A built
wheel carries a copy as ``batchman/_examples/`` (made by setup.py's build step), so
``batchman init --example`` works after a plain ``pip install .`` too. Files an example run
produces (status file, logs, staged data, outputs) are never copied.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path

CONFIG_NAME = "batchman.yaml"

# What running an example in place produces; never shipped, never copied.
GENERATED = ("__pycache__", "*.pyc", ".batchman", "status.json*", "status.html", "logs", "stats",
             "tape", "cache", "out", "ROOTfiles", "hdf5", "xtc", "midas", "jstate", "scratch", "*.lock")


class ExampleError(ValueError):
    """An example cannot be copied; the message says what is wrong and what to do."""


def examples_dir() -> Path:
    """Where the examples are: the wheel's copy, else the source tree's examples/."""
    here = Path(__file__).resolve().parent
    for d in (here / "_examples", here.parent / "examples"):
        if d.is_dir():
            return d
    raise ExampleError("no examples found in this installation (neither batchman/_examples nor examples/); "
                       "reinstall batchman with `pip install .` from a source tree that has examples/")


def is_generated(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pat) for pat in GENERATED)


def list_examples() -> list[str]:
    """Names of the examples, sorted (every directory of examples/ holding a batchman.yaml)."""
    d = examples_dir()
    return sorted(p.name for p in d.iterdir() if (p / CONFIG_NAME).is_file())


def describe(name: str) -> str:
    """The first sentence of the example's README (after its title), even when it is wrapped
    over several lines."""
    readme = examples_dir() / name / "README.md"
    try:
        lines = readme.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    para: list[str] = []
    for line in map(str.strip, lines):
        if line and not line.startswith("#"):
            para.append(line)
        elif para:
            break
    text = " ".join(para)
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def example_files(name: str) -> list[str]:
    """The files of one example, relative to its directory, sorted."""
    src = _source(name)
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not is_generated(d))
        for f in sorted(filenames):
            if not is_generated(f):
                out.append(os.path.relpath(os.path.join(dirpath, f), src))
    return out


def _source(name: str) -> Path:
    known = list_examples()
    if name not in known:
        raise ExampleError(f"no example named {name!r}; choose one of: {', '.join(known)} "
                           "(`batchman init --list-examples` describes them)")
    return examples_dir() / name


def config_text(name: str) -> str:
    """The example's batchman.yaml (for ``init --example NAME --print``)."""
    return (_source(name) / CONFIG_NAME).read_text(encoding="utf-8")


def copy_example(name: str, dest: str | os.PathLike, force: bool = False) -> list[str]:
    """Copy example ``name`` into ``dest`` (created if missing); return the files written.

    Refuses, changing nothing, when ``dest`` already has a batchman.yaml or any file the
    example would write, unless ``force``. Executable bits are kept.
    """
    src = _source(name)
    files = example_files(name)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ExampleError(f"{dest} is a file, not a directory; name a directory to copy the example into")
    if not force:
        clash = [f for f in files if (dest / f).exists() or (dest / f).is_symlink()]
        if clash:
            what = (f"{dest / CONFIG_NAME} exists already" if CONFIG_NAME in clash
                    else f"{len(clash)} file(s) of the example exist already in {dest} ({', '.join(clash[:3])}"
                         + (", ..." if len(clash) > 3 else "") + ")")
            raise ExampleError(f"{what}; nothing was copied. Use an empty directory, or --force to overwrite")
        for f in files:     # a file where the example needs a directory
            for parent in Path(f).parents:
                if str(parent) != "." and (dest / parent).exists() and not (dest / parent).is_dir():
                    raise ExampleError(f"{dest / parent} is a file but the example needs a directory there; "
                                       "nothing was copied. Use an empty directory")
    written = []
    for f in files:
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        shutil.copy2(src / f, target)     # follows symlinks: the copy holds the file itself
        written.append(f)
    return written
