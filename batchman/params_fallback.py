"""Parameters for reading commands and requests when batchman.yaml does not validate.

A typo made at 3 a.m. must never stop an operator from listing, killing or pausing a
production. Commands that only read or queue requests use, in this order: the file itself;
the last copy of it that validated (``params.LAST_GOOD``, kept by ``params.load``); the
defaults plus every part of the file that is readable. They say so in one line naming the
bad key. Commands that start work (``batchman-daemon``, ``add``, ``run``) load strictly.
"""

from __future__ import annotations

import os
import time
from typing import Any

import yaml

from batchman import params as P


def first_problem(err: P.ParamError) -> str:
    """The first problem of ``err`` on one line, with how many more there are."""
    more = len(err.problems) - 1
    return " ".join(err.problems[0].split()) + (f" (and {more} more problem(s))" if more > 0 else "")


def load_for_reading(root: str) -> tuple[P.Params, str]:
    """(parameters, warning): the warning is empty when batchman.yaml validates."""
    try:
        return P.load(root), ""
    except P.ParamError as err:
        bad = f"{P.CONFIG_NAME}: {first_problem(err)}"
    tail = "; `batchman check` lists every problem; batchman-daemon, add and run refuse until it is fixed"
    last = os.path.join(root, P.LAST_GOOD)
    try:
        with open(last, encoding="utf-8") as f:
            params = P.validate(yaml.safe_load(f), root, last)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(last).st_mtime))
        return params, f"{bad}; using the last good parameters (saved {when}){tail}"
    except (OSError, UnicodeDecodeError, yaml.YAMLError, P.ParamError):
        pass
    return salvage(_read_raw(os.path.join(root, P.CONFIG_NAME)), root), \
        f"{bad}; using the defaults and the readable part of the file{tail}"


def _read_raw(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def salvage(raw: Any, root: str) -> P.Params:
    """The defaults, overridden by every parameter of ``raw`` that is valid on its own; a
    jobs: section only if it is valid whole. Keys a cross-check names are dropped too."""
    clean: dict[str, Any] = {}
    if isinstance(raw, dict):
        for section, body in raw.items():
            if section in P.SECTIONS and isinstance(body, dict):
                for name, value in body.items():
                    p = P.BY_KEY.get(f"{section}.{name}")
                    if p is not None and P._check(p, value)[1] is None:
                        clean.setdefault(section, {})[name] = value
        if raw.get("jobs") is not None:
            clean["jobs"] = raw["jobs"]
    for _ in range(3):
        try:
            return P.validate(clean, root)
        except P.ParamError as err:
            clean = _drop_named(clean, err.problems)
    return P.validate({}, root)


def _drop_named(clean: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """``clean`` without the keys (or the jobs: section) that ``problems`` start with."""
    named = {pr.split(":", 1)[0] for pr in problems}
    out: dict[str, Any] = {}
    for section, body in clean.items():
        if section != "jobs":
            out[section] = {n: v for n, v in body.items() if f"{section}.{n}" not in named}
    if "jobs" in clean and not any(pr.startswith("jobs") for pr in problems):
        out["jobs"] = clean["jobs"]
    return out
