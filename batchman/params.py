"""batchman.yaml -> validated parameters.

Every parameter is declared once, in ``SCHEMA``, with its section, type, default and
help text. ``batchman init`` writes the commented file from it, the TUI's parameter
dialog groups by its sections (the 2002 tool's tabs), and validation names the key,
the value and what is allowed.
"""

from __future__ import annotations

import difflib
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from batchman.param_table import BY_KEY, SCHEMA, SECTIONS, Param  # noqa: F401 - the table, re-exported

CONFIG_NAME = "batchman.yaml"


class ParamError(Exception):
    """One or more parameters are wrong. ``problems`` lists one message per key."""

    def __init__(self, problems: list[str], path: str = ""):
        self.problems = problems
        self.path = path
        where = f" in {path}" if path else ""
        super().__init__(f"{len(problems)} problem(s){where}:\n  " + "\n  ".join(problems))




@dataclass
class Params:
    """Validated parameters with paths resolved against the experiment directory."""
    root: str
    values: dict[str, Any] = field(default_factory=dict)
    jobs_raw: Any = None          # the jobs: section as written (None: the implicit 'analysis' job)
    _jobs: Any = field(default=None, repr=False, compare=False)

    @property
    def jobs(self):
        """The job definitions (batchman.jobs.Jobs), checked by validate()."""
        if self._jobs is None:
            from batchman.core.jobs import parse
            self._jobs = parse(self.jobs_raw, self.values)[0]
        return self._jobs

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def path(self, key: str) -> str:
        v = self.values[key]
        return v if not v or os.path.isabs(v) else os.path.normpath(os.path.join(self.root, v))

    @property
    def experiment(self) -> str:
        return self.values["daemon.experiment"] or os.path.basename(os.path.abspath(self.root))

    @property
    def status_path(self) -> str:
        return self.path("daemon.status_file")

    @property
    def stale_after(self) -> float:
        return self.values["daemon.stale_after"] or max(3 * self.values["daemon.delay"], 120.0)

    def command_argv(self) -> list[str]:
        return shlex.split(self.values["batch.command"])


def defaults() -> dict[str, Any]:
    return {p.key: (type(p.default)(p.default) if isinstance(p.default, (list, dict)) else p.default) for p in SCHEMA}


def _check(p: Param, value: Any) -> tuple[Any, str | None]:
    """Convert and check one value; return (value, problem or None)."""
    if value is None:
        if p.optional or p.kind in ("str", "path"):
            return ("" if p.kind in ("str", "path") else None), None
        return None, f"{p.key}: a value is required ({_allowed(p)})"
    kind = p.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        return None, f"{p.key}: {value!r} is not true or false"
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "int" and isinstance(value, float) and not value.is_integer()):
            return None, f"{p.key}: {value!r} is not {'a whole number' if kind == 'int' else 'a number'} ({_allowed(p)})"
        value = int(value) if kind == "int" else float(value)
        if p.minimum is not None and value < p.minimum:
            return None, f"{p.key}: {value!r} is too small ({_allowed(p)})"
        return value, None
    if kind == "choice":
        if value not in p.choices:
            return None, f"{p.key}: {value!r} is not one of {', '.join(p.choices)}"
        return value, None
    if kind in ("str", "path"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            return None, f"{p.key}: {value!r} is not text"
        return str(value), None
    if kind == "mapping":
        if not isinstance(value, dict):
            return None, f"{p.key}: {value!r} is not a mapping ({_allowed(p)})"
        return value, None
    if kind == "list":
        if isinstance(value, str):
            return shlex.split(value), None
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            return None, f"{p.key}: {value!r} is not a list of strings"
        return [str(v) for v in value], None
    raise AssertionError(kind)


def _allowed(p: Param) -> str:
    if p.kind == "choice":
        return "one of " + ", ".join(p.choices)
    what = {"int": "a whole number", "float": "a number", "bool": "true or false",
            "str": "text", "path": "a path", "list": "a list of strings",
            "mapping": "a mapping of failure class to rule"}[p.kind]
    if p.minimum is not None:
        what += f" >= {p.minimum:g}"
    return what


def validate(raw: Any, root: str, path: str = "") -> Params:
    """Check a parsed YAML document; raise ParamError naming every bad key."""
    problems: list[str] = []
    values = defaults()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamError([f"the file must be a mapping of sections ({', '.join(SECTIONS)}), not {type(raw).__name__}"], path)
    for section, body in raw.items():
        if section == "jobs":
            continue      # checked below, once the batch defaults are known
        if section not in SECTIONS:
            hint = difflib.get_close_matches(str(section), list(SECTIONS), n=1)
            problems.append(f"unknown section {section!r}" + (f" (did you mean {hint[0]!r}?)" if hint else f"; sections are {', '.join(SECTIONS)}"))
            continue
        if body is None:
            continue
        if not isinstance(body, dict):
            problems.append(f"{section}: must be a mapping of parameters, not {body!r}")
            continue
        for name, value in body.items():
            key = f"{section}.{name}"
            p = BY_KEY.get(key)
            if p is None:
                names = [q.key for q in SCHEMA]
                hint = difflib.get_close_matches(key, names, n=1, cutoff=0.7)
                problems.append(f"unknown parameter {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "; `batchman init --print` lists them all"))
                continue
            v, problem = _check(p, value)
            if problem:
                problems.append(problem)
            else:
                values[key] = v
    problems += _cross_checks(values)
    from batchman.core.jobs import parse as parse_jobs
    jobs, job_problems = parse_jobs(raw.get("jobs"), values)
    problems += job_problems
    if problems:
        raise ParamError(problems, path)
    return Params(root=os.path.abspath(root), values=values, jobs_raw=raw.get("jobs"), _jobs=jobs)


def _cross_checks(values: dict[str, Any]) -> list[str]:
    from batchman.daemon.segments import check_pattern  # local import: segments imports nothing of ours at top
    problems = []
    err = check_pattern(values["staging.pattern"])
    if err:
        problems.append(f"staging.pattern: {err}")
    try:
        from batchman.daemon.jobscript import check_args
        err = check_args(values["batch.args"])
        if err:
            problems.append(f"batch.args: {err}")
    except ImportError:  # pragma: no cover
        pass
    problems += _staging_checks(values)
    problems += _notify_checks(values)
    from batchman.core.retry import parse_rules
    problems += parse_rules(values["policies.retry"], values["policies.auto_restart_failed"],
                            values["policies.max_auto_restarts"])[1]
    if not values["batch.command"].strip():
        problems.append("batch.command: empty; name the program each job runs")
    else:
        try:
            shlex.split(values["batch.command"])
        except ValueError as e:
            problems.append(f"batch.command: {e}")
    return problems


def _staging_checks(values: dict[str, Any]) -> list[str]:
    problems = []
    if values["staging.max_cache_fraction"] >= 1.0:
        problems.append(f"staging.max_cache_fraction: {values['staging.max_cache_fraction']!r} must be below 1 "
                        "(a fraction of the filesystem, e.g. 0.9; 0 turns the check off)")
    if values["staging.backend"] == "command":
        from batchman.backends.staging.command import validate_templates
        templates = {k: values[f"staging.{k}_cmd"] or None for k in ("request", "query", "present", "release", "cancel")}
        problems += validate_templates(templates, values["staging.query_format"], suffix="_cmd", parser_key="query_format")
    if values["staging.backend"] == "tape-rest":
        from batchman.backends.staging.taperest_api import check_url
        err = check_url(values["staging.tape_rest_url"])
        if err:
            problems.append(f"staging.tape_rest_url: {err}")
    if values["staging.backend"] == "xrootd" and not values["staging.xrootd_url"].startswith(("root://", "xroot://")):
        problems.append(f"staging.xrootd_url: {values['staging.xrootd_url']!r} is not a root://host[:port] URL "
                        "(the xrootd server to stage from)")
    if values["staging.backend"] == "jcache":
        for k in ("get", "pending", "release", "cancel", "status"):
            key = f"staging.jcache_{k}_cmd"
            try:
                ok = bool(shlex.split(values[key]))
            except ValueError as e:
                problems.append(f"{key}: {e}")
                continue
            if not ok:
                problems.append(f"{key}: empty; name the command (default: {BY_KEY[key].default!r})")
    return problems


def _notify_checks(values: dict[str, Any]) -> list[str]:
    problems = []
    if values["notify.failure_rate"] > 1:
        problems.append(f"notify.failure_rate: {values['notify.failure_rate']!r} must be a share from 0 to 1 (0.5 = half)")
    tf = values["metrics.textfile"]
    if tf and not tf.endswith(".prom"):
        problems.append(f"metrics.textfile: {tf!r} must end in .prom (node_exporter's textfile collector reads only those)")
    if values["notify.targets"]:
        from batchman.notify.targets import check_targets
        problems += check_targets(values["notify.targets"])
    return problems


def find_root(start: str | None = None) -> str | None:
    """The experiment directory: ``start`` or its nearest parent holding batchman.yaml."""
    d = os.path.abspath(start or os.getcwd())
    while True:
        if os.path.isfile(os.path.join(d, CONFIG_NAME)):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


LAST_GOOD = os.path.join(".batchman", CONFIG_NAME + ".last-good")   # relative to the experiment directory


def load(root: str) -> Params:
    """The validated parameters of ``root``; the text that validated is kept as the last good
    copy (``LAST_GOOD``), which reading commands fall back on when a later edit breaks the file."""
    path = os.path.join(root, CONFIG_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        raw = yaml.safe_load(text)
    except FileNotFoundError:
        raise ParamError([f"no {CONFIG_NAME} here; `batchman init` writes one"], path) from None
    except yaml.YAMLError as e:
        raise ParamError([f"not valid YAML: {' '.join(str(e).split())}"], path) from None
    params = validate(raw, root, path)
    _remember(root, text)
    return params


def _remember(root: str, text: str) -> None:
    """Keep ``text`` (just validated) as the last good copy, atomically, when it differs, with
    the file's permissions (notify.targets may hold passwords)."""
    from batchman.util.files import atomic_write
    dst = os.path.join(root, LAST_GOOD)
    try:
        mode = os.stat(os.path.join(root, CONFIG_NAME)).st_mode & 0o777
        with open(dst, encoding="utf-8") as f:
            if f.read() == text and os.fstat(f.fileno()).st_mode & 0o777 == mode:
                return
    except (OSError, UnicodeDecodeError):
        pass
    try:
        mode = os.stat(os.path.join(root, CONFIG_NAME)).st_mode & 0o777
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        atomic_write(dst, text, mode=mode, sync=False)
    except OSError:
        pass        # a read-only experiment directory: a later fallback uses the defaults


def render_yaml(values: dict[str, Any] | None = None, jobs_raw: Any = None) -> str:
    """The commented batchman.yaml: every parameter, its value, what it does; the jobs:
    section as given, or a commented example of it."""
    values = values or defaults()
    out = ["# batchman.yaml: the parameters of this batch analysis.",
           "# Every parameter is listed with its default and what it does; `batchman check` validates the file.",
           "# Relative paths are relative to the directory holding this file.", ""]
    for section, title in SECTIONS.items():
        out.append(f"{section}:   # {title}")
        for p in SCHEMA:
            if p.section != section:
                continue
            for line in _wrap(p.help + (f" ({_allowed(p)})" if p.kind in ("choice",) else "")):
                out.append(f"  # {line}")
            dumped = yaml.safe_dump({p.name: values[p.key]}, default_flow_style=True, width=1000).strip()
            out.append(f"  {dumped[1:-1]}" if dumped.startswith("{") else f"  {dumped}")
        out.append("")
    out += _jobs_yaml(jobs_raw)
    return "\n".join(out)


JOBS_EXAMPLE = """\
jobs:
  reco:                                   # a name: letters, digits, _ or -
    command: ./reco                       # relative to batch.batch_home, or on PATH
    args: "{run} --version {version} {files}"
    params: {version: 3}                  # your own placeholders
    env: {CALIB_DIR: /data/calib}
    outputs: ["out/v{version}/tree{run:05d}.root"]   # must exist and not be empty after exit 0
    time_limit: 7200                      # overrides batch.time_limit (also queue, memory_mb, cpus, extra_args)
    max_running: 50                       # at most 50 reco jobs in the batch system at once
  hist:
    command: ./hist
    args: "{run} {files}"                 # {files}: reco's outputs (needs_staging: false)
    trigger: "after: reco"                # once reco completed for the same run
    needs_staging: false
    outputs: ["out/hist{run:05d}.root"]
  quicklook:
    command: ./quicklook
    trigger: data-complete                # when all of a run's raw files are there and settled
    settle: 120                           # seconds the files must stay unchanged (size, mtime)
    watch: all                            # all runs found in stub_dir | listed (batchman watch) | 2000-2999
"""


def _jobs_yaml(jobs_raw: Any) -> list[str]:
    if jobs_raw:
        return ["# Job definitions: several named jobs per run (see `batchman init --print` for every key).",
                yaml.safe_dump({"jobs": jobs_raw}, sort_keys=False, width=1000).rstrip(), ""]
    from batchman.core.jobs import KEYS
    out = ["# jobs: several named jobs per run, each a task of its own (one row per run and job).",
           "# Without this section each run has one job, 'analysis', made of batch.command and batch.args.",
           "# Keys of a job:"]
    for k, h in KEYS.items():
        out += [f"#   {line}" for line in _wrap(f"{k}: {h}", 92)]
    out.append("# Example (remove the leading '# ' to use it):")
    out += ["# " + line if line else "#" for line in JOBS_EXAMPLE.splitlines()]
    out.append("")
    return out


def _wrap(text: str, width: int = 96) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width) or [""]


def to_raw(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw: dict[str, dict[str, Any]] = {}
    for p in SCHEMA:
        raw.setdefault(p.section, {})[p.name] = values[p.key]
    return raw
