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

CONFIG_NAME = "batchman.yaml"


class ParamError(Exception):
    """One or more parameters are wrong. ``problems`` lists one message per key."""

    def __init__(self, problems: list[str], path: str = ""):
        self.problems = problems
        self.path = path
        where = f" in {path}" if path else ""
        super().__init__(f"{len(problems)} problem(s){where}:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Param:
    section: str
    name: str
    kind: str                 # int, float, bool, str, path, choice, list, optional int/str
    default: Any
    help: str
    choices: tuple = ()
    minimum: float | None = None
    optional: bool = False    # None allowed

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"


SECTIONS = {
    "daemon": "How the daemon works and where it keeps its files",
    "staging": "Getting the raw data segments from tape to disk",
    "batch": "The batch system and the job it runs",
    "policies": "What to do when things go wrong",
}

P = Param
SCHEMA: list[Param] = [
    P("daemon", "experiment", "str", "", "Experiment label, shown on the page and given to jobs (empty: the directory's name)."),
    P("daemon", "delay", "float", 60.0, "Seconds between daemon iterations. Too short loads the systems; too long lets short jobs finish unseen (harmless: their marker files tell).", minimum=0.1),
    P("daemon", "temp_dir", "path", ".batchman", "Directory for job scripts, attempt directories (markers, report spool) and the local backends' state."),
    P("daemon", "status_file", "path", "status.json", "The status file (the truth). Put it on a filesystem with working POSIX locks (local disk, NFSv4, Lustre with flock)."),
    P("daemon", "html_file", "path", "status.html", "The status page written with every change of the status file (empty: none). Put it somewhere a web server publishes to watch from anywhere."),
    P("daemon", "log_dir", "path", "logs", "Where each job's stdout/stderr go (<log_dir>/<run>.<job>.<attempt>.out/.err); old logs of a run are kept per attempt."),
    P("daemon", "lock_timeout", "float", 30.0, "Seconds to wait for the status file's lock before giving up and saying who holds it.", minimum=0.0),
    P("daemon", "stale_after", "float", 0.0, "Seconds without a heartbeat after which a daemon is taken for dead (0: three delays, at least 120 s).", minimum=0.0),
    P("daemon", "watch_interval", "float", 2.0, "Seconds between two looks for finished jobs (one listing of <temp_dir>/done, never a stat per job; inotify when available). A finished job is noticed this fast without asking the batch system (0: only every daemon.delay).", minimum=0.0),
    P("daemon", "submit_grace", "float", 300.0, "Seconds a submitted job may stay invisible in the batch queue (and without marker files) before it is declared vanished.", minimum=0.0),

    P("staging", "backend", "choice", "local", "How segments get from tape to disk: local (copy from a directory or use files in place), jcache (JLab), command (site command templates).", choices=("local", "jcache", "command")),
    P("staging", "limit", "int", 100, "Most segments staged or being staged at once, counting those of queued and running jobs (fair play on the cache disk). A run with more segments than this still goes when nothing else holds the cache.", minimum=1),
    P("staging", "stub_dir", "path", "raw", "Where the stub files (tape copies) of the segments are: the place staging copies from."),
    P("staging", "cache_dir", "path", "cache", "Where staged segments appear: the place staging copies to. Same as stub_dir: files are used in place."),
    P("staging", "prefix", "str", "run_", "Prefix of the raw data file names: <prefix><run><suffix>.<segment>."),
    P("staging", "suffix", "str", ".dat", "Suffix of the raw data file names (before the segment number)."),
    P("staging", "pattern", "str", "{prefix}{run}{suffix}.{segment}", "File name pattern of one segment, relative to stub_dir; placeholders {prefix} {suffix} {run} (format specs allowed, e.g. {run:05d}) and {segment}."),
    P("staging", "verify_queue", "bool", True, "Check that every requested segment is on disk or in the staging queue; one that is in neither after awol_grace is AWOL and fails its run."),
    P("staging", "awol_grace", "float", 300.0, "Seconds after a request before a segment missing from disk and queue counts as AWOL.", minimum=0.0),
    P("staging", "max_staging_time", "float", 86400.0, "Seconds of staging after which a run is flagged with a warning (when the queue is not verified).", minimum=0.0),
    P("staging", "max_requests_per_iteration", "int", 25, "Most runs whose staging is requested per daemon iteration (0: no limit).", minimum=0),
    P("staging", "request_burst", "int", 30, "Staging requests (one per run) that may go at once before request_rate paces them (token bucket; max_requests_per_iteration stays an upper bound).", minimum=1),
    P("staging", "request_rate", "float", 2.0, "Staging requests per second once request_burst is spent (0: no limit).", minimum=0.0),
    P("staging", "local_delay", "float", 0.0, "local backend: seconds to copy one segment (to make staging visible in demos and tests).", minimum=0.0),
    P("staging", "max_cache_fraction", "float", 0.0, "Stop requesting new segments while the cache filesystem is fuller than this fraction (0.9 = 90 % used; 0: no check). Runs already staging go on.", minimum=0.0),
    P("staging", "cache_fs_path", "path", "", "A path on the filesystem whose fullness max_cache_fraction checks (empty: cache_dir)."),
    P("staging", "user", "str", "", "User name given to the staging system (jcache pendingRequest -u, {user} in command templates; empty: the login name)."),
    P("staging", "chunk_size", "int", 100, "Most files named in one staging command (jcache get/unpin, command templates with {files}).", minimum=1),
    P("staging", "command_timeout", "float", 120.0, "Seconds before a staging command (jcache, site commands) counts as hung.", minimum=1.0),
    P("staging", "jcache_get_cmd", "str", "jcache get", "jcache backend: command that requests files (the files are appended)."),
    P("staging", "jcache_pending_cmd", "str", "jcache pendingRequest -u {user}", "jcache backend: command listing our unfinished requests (run once per iteration)."),
    P("staging", "jcache_release_cmd", "str", "jcache unpin", "jcache backend: command that releases files (the files are appended)."),
    P("staging", "jcache_cancel_cmd", "str", "jcache cancel", "jcache backend: command that cancels one request (its request index is appended)."),
    P("staging", "jcache_status_cmd", "str", "jcache status", "jcache backend: command showing one request (its index is appended), to tell a failed request from a lost one."),
    P("staging", "request_cmd", "str", "", "command backend: template requesting files, e.g. 'dccp -P {files}' ({files}, {file}, {cache_dir}, {user}).", optional=True),
    P("staging", "query_cmd", "str", "", "command backend: template listing the state of files (output per query_format: 'PENDING|PRESENT|FAILED path' lines, or JSON).", optional=True),
    P("staging", "present_cmd", "str", "", "command backend: optional template checking files are on disk ({file}: exit 0 = present; {files}: prints the present ones). Empty: a file is present when its cache copy exists.", optional=True),
    P("staging", "release_cmd", "str", "", "command backend: optional template releasing files (empty: nothing to release).", optional=True),
    P("staging", "cancel_cmd", "str", "", "command backend: optional template cancelling requests for files (empty: nothing to cancel).", optional=True),
    P("staging", "query_format", "choice", "lines", "command backend: output form of query_cmd (lines: 'PENDING|PRESENT|FAILED path [reason]' or a bare path = pending; json: {pending: [], present: [], failed: {path: reason}}).", choices=("lines", "json")),

    P("batch", "backend", "choice", "local", "Batch system: local (processes on this machine), slurm, gridengine, lsf.", choices=("local", "slurm", "gridengine", "lsf")),
    P("batch", "command", "str", "./analyze", "Command run on the batch node for each run: a path, optionally with leading words (e.g. 'python3 analyze.py')."),
    P("batch", "args", "str", "{run}", "Arguments given to the command. Placeholders: {run} {experiment} {files} {batch_home} {job} {attempt}."),
    P("batch", "batch_home", "path", ".", "Directory the job starts in and copies its results back to."),
    P("batch", "runtime_setup_dir", "path", "Runtime", "Runtime setup directory the job copies to its local disk (given to the job as BATCHMAN_RUNTIME_DIR)."),
    P("batch", "stats_dir", "path", "stats", "Where each job writes its stats file (BATCHMAN_STATS_FILE), which says how many segments it analysed; fewer than staged means incomplete."),
    P("batch", "max_jobs", "int", 200, "Most of our jobs in the batch system at once (submitted, queued or running).", minimum=1),
    P("batch", "max_submit_per_iteration", "int", 25, "Most submissions per daemon iteration (0: no limit); spreads a big production over time.", minimum=0),
    P("batch", "max_kill_per_iteration", "int", 25, "Most job cancellations per daemon iteration (0: no limit).", minimum=0),
    P("batch", "submit_burst", "int", 30, "Submissions that may go at once before submit_rate paces them (a token bucket, as SLURM's own rate limiter: burst 30, 2/s per user); a big production starts at once, then flows at the rate.", minimum=1),
    P("batch", "submit_rate", "float", 2.0, "Submissions per second once submit_burst is spent, whatever daemon.delay is (0: no limit; max_submit_per_iteration stays an upper bound).", minimum=0.0),
    P("batch", "kill_burst", "int", 30, "Job cancellations that may go at once before kill_rate paces them.", minimum=1),
    P("batch", "kill_rate", "float", 2.0, "Job cancellations per second once kill_burst is spent (0: no limit).", minimum=0.0),
    P("batch", "local_slots", "int", 0, "local backend: jobs run at once; the rest wait queued (0: one per CPU).", minimum=0),
    P("batch", "queue", "str", "", "Partition (SLURM) / queue (Grid Engine, LSF); empty: the site default.", optional=True),
    P("batch", "account", "str", "", "Account (SLURM) / project (Grid Engine, LSF); empty: none.", optional=True),
    P("batch", "time_limit", "int", 0, "Wall time limit per job in seconds (0: the site default).", minimum=0),
    P("batch", "memory_mb", "int", 0, "Memory per job in MB (0: the site default).", minimum=0),
    P("batch", "cpus", "int", 1, "CPUs per job.", minimum=1),
    P("batch", "qos", "str", "", "SLURM QOS (empty: none).", optional=True),
    P("batch", "reservation", "str", "", "SLURM reservation (empty: none).", optional=True),
    P("batch", "extra_args", "list", [], "Extra arguments given to the submit command as they are (a YAML list of strings)."),
    P("batch", "command_timeout", "float", 60.0, "Seconds before a batch command (sbatch, squeue, ...) counts as hung.", minimum=1.0),
    P("batch", "min_query_interval", "float", 0.0, "Site floor: seconds between two queries of the batch system (one squeue + at most one sacct for all our jobs), whatever daemon.delay is. Jobs that wrote their exit marker are never asked about (0: every iteration).", minimum=0.0),
    P("batch", "backoff_cap", "float", 600.0, "When the batch system cannot be asked (controller down, accounting down, a command timing out), the next query waits twice as long each time, with jitter, up to this many seconds; no task changes state meanwhile.", minimum=1.0),
    P("batch", "max_time_limit", "int", 0, "Longest time limit (seconds) a timeout retry may ask for (0: the partition's MaxTime, asked once with scontrol show partition on SLURM).", minimum=0),
    P("batch", "slurm_accounting", "choice", "auto", "SLURM: finished jobs from slurmdbd (plain sacct), from the job completion log (sacct -c), or detect.", choices=("auto", "slurmdbd", "jobcomp")),

    P("policies", "release_failed_files", "bool", False, "Release the staged segments of failed runs too (frees the cache; a restart must stage them again)."),
    P("policies", "auto_restart_failed", "bool", False, "Restart failed and incomplete runs automatically, up to max_auto_restarts times each (the retry rule of the exit-nonzero, incomplete, missing-outputs and lost classes; see retry)."),
    P("policies", "max_auto_restarts", "int", 2, "Automatic restarts per run before it is left failed for a person (the cap of every retry that counts; see retry).", minimum=0),
    P("policies", "retry", "mapping", {}, "Retry rules by failure class (out-of-memory, timeout, node-fail, preempted, requeued, cancelled-by-user, boot-fail, exit-nonzero, missing-outputs, incomplete, submit-rejected, lost), each a mapping of: retry (true/false), max (retries of the class), counts (against max_auto_restarts), memory_factor, memory_max_mb, memory_start_mb, time_factor, time_max (s; 0: partition maximum), exclude_node. Only what you write changes the defaults: out-of-memory x2 memory up to 64000 MB, timeout x2 time, twice each; node-fail/boot-fail on another node and preempted/requeued, not counted; cancelled-by-user and submit-rejected not retried; the others per auto_restart_failed. E.g. {out-of-memory: {memory_max_mb: 16000}, preempted: false}."),
    P("policies", "require_stats", "bool", False, "Treat a job that exits 0 without a stats file as incomplete."),
]
BY_KEY = {p.key: p for p in SCHEMA}


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


def load(root: str) -> Params:
    path = os.path.join(root, CONFIG_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ParamError([f"no {CONFIG_NAME} here; `batchman init` writes one"], path) from None
    except yaml.YAMLError as e:
        raise ParamError([f"not valid YAML: {e}"], path) from None
    return validate(raw, root, path)


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
