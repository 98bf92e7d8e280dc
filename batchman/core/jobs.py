"""Job definitions (ARP's "workflow definitions", AlCap's alcapana/rootana) and trigger decisions.

A run may be analysed by several named jobs, each a task keyed by (run, job). This module
parses and checks the ``jobs:`` section of batchman.yaml and holds the pure decisions
about them: which tasks a trigger creates, whether a task waits for the job it comes
``after:``, which files it gets, when a run's data has settled. Nothing here reads the
clock or the disk: the daemon observes and passes what it saw in.

Without a ``jobs:`` section there is one implicit job, ``analysis``, made of
``batch.command`` and ``batch.args`` (triggered when runs are added), exactly as before.
"""

from __future__ import annotations

import difflib
import posixpath   # path arithmetic on strings only: the core touches no file
import shlex
import string
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from batchman.core.model import JOB_NAME_RE
# The trigger names and decisions live in triggers.py; importing them here keeps ``jobs.gates`` etc.
from batchman.core.triggers import (  # noqa: F401
    AFTER, DATA_COMPLETE, FIRST_SEGMENT, MANUAL, ON_ADD, SPLIT, TRIGGERS, WATCHING,
    Gate, Scan, Sig, gates, late_files, left_out, matches, parse_where, settle, signature, split, split_why, stuck,
    to_create, watched_runs,
)

DEFAULT_JOB = "analysis"


# Placeholders every job's args may use; a job's own ``params:`` add more ({segment}: per: segment jobs).
BUILTIN = ("run", "experiment", "files", "inputs", "batch_home", "job", "attempt")
# Output templates: no {files}/{inputs} (they would not name one file).
OUTPUT_BUILTIN = ("run", "experiment", "batch_home", "job")
PER_RUN, PER_SEGMENT = "run", "segment"
ALL_SEGMENTS = "all-segments"

# key -> help, in the order `batchman init` documents them.
KEYS: dict[str, str] = {
    "command": "executable run on the batch node (default: batch.command); relative paths are relative to batch.batch_home",
    "args": "its arguments (default: batch.args); placeholders {run} {experiment} {files} {inputs} {job} {attempt} "
            "{batch_home} and this job's params",
    "params": "user placeholders, e.g. {version: 3} makes {version} usable in args and outputs",
    "env": "extra environment variables for the job",
    "queue": "batch override: partition / queue",
    "time_limit": "batch override: wall time in seconds",
    "memory_mb": "batch override: memory in MB",
    "cpus": "batch override: CPUs",
    "extra_args": "batch override: extra submit arguments (list)",
    "needs_staging": "stage the run's raw segments first (default true); false: submit at once "
                     "(an after: job then gets the upstream job's outputs as its files)",
    "outputs": "files the job must produce (list of templates with {run}); missing or empty: the task fails",
    "trigger": "on-add (default) | manual | data-complete | first-segment | after: JOB | "
               "after: JOB, all-segments (a run's merge step: once every segment task of JOB for the run completed)",
    "per": "run (default): one task per run | segment: one task per raw file (segment) of the run, which stages "
           "and releases only that file; {segment} in args and outputs",
    "max_running": "most tasks of this job in the batch system at once (0: only batch.max_jobs)",
    "settle": "data-complete / first-segment: seconds the run's files must stay unchanged (size, mtime)",
    "watch": "data-complete / first-segment: which runs: all (every run found in staging.stub_dir), "
             "listed (only runs given to `batchman watch`), or a run list such as 2000-2999",
}
ALIASES = {"executable": "command"}


@dataclass(frozen=True)
class JobDef:
    name: str
    command: str
    args: str
    params: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    queue: str | None = None
    time_limit: int | None = None
    memory_mb: int | None = None
    cpus: int | None = None
    extra_args: tuple[str, ...] | None = None
    needs_staging: bool = True
    outputs: tuple[str, ...] = ()
    trigger: str = ON_ADD
    after: str = ""
    after_all: bool = False                   # after: JOB, all-segments (JOB runs per segment)
    per: str = PER_RUN                        # run | segment: one task per raw file
    max_running: int = 0
    settle: float = 60.0
    watch: str = "all"                        # all | listed | a run spec
    watch_runs: frozenset[int] | None = None  # the run spec's runs

    def argv(self) -> list[str]:
        return shlex.split(self.command)

    @property
    def per_segment(self) -> bool:
        return self.per == PER_SEGMENT


@dataclass(frozen=True)
class Jobs:
    """Every job definition of an experiment, in file order."""
    defs: Mapping[str, JobDef]
    explicit: bool = False          # False: the implicit 'analysis' job (no jobs: section)

    def get(self, name: str) -> JobDef | None:
        d = self.defs.get(name)
        if d is None and not self.explicit:
            # Without a jobs: section any job name runs batch.command (as before this module).
            d = self.defs[DEFAULT_JOB]
        return d

    def names(self) -> list[str]:
        return list(self.defs)

    def on_add(self) -> list[str]:
        return [n for n, d in self.defs.items() if d.trigger == ON_ADD]

    def dependents(self, name: str) -> list[str]:
        return [n for n, d in self.defs.items() if d.trigger == AFTER and d.after == name]

    def watching(self) -> list[JobDef]:
        return [d for d in self.defs.values() if d.trigger in WATCHING]

    def limits(self) -> dict[str, int]:
        return {n: d.max_running for n, d in self.defs.items() if d.max_running}

    def expand(self, names: Iterable[str]) -> list[str]:
        """The jobs named plus, transitively, every job that runs ``after:`` one of them."""
        out: list[str] = []
        todo = list(names)
        while todo:
            n = todo.pop(0)
            if n in out:
                continue
            out.append(n)
            todo += self.dependents(n)
        return out


def implicit(values: Mapping[str, Any]) -> Jobs:
    return Jobs({DEFAULT_JOB: JobDef(DEFAULT_JOB, values["batch.command"], values["batch.args"])}, explicit=False)


# ---- parsing and checking -------------------------------------------------------------
def parse(raw: Any, values: Mapping[str, Any]) -> tuple[Jobs, list[str]]:
    """The ``jobs:`` section -> (definitions, problems). Each problem names the job and the key."""
    if raw is None:
        return implicit(values), []
    if not isinstance(raw, dict) or not raw:
        return implicit(values), [f"jobs: must be a mapping of job names to definitions, not {raw!r}"]
    problems: list[str] = []
    defs: dict[str, JobDef] = {}
    for name, body in raw.items():
        where = f"jobs.{name}"
        if not isinstance(name, str) or not JOB_NAME_RE.match(name):
            problems.append(f"{where}: {name!r} is not a job name (a letter, then letters, digits, _ or -; at most 32)")
            continue
        if body is None:
            body = {}
        if not isinstance(body, dict):
            problems.append(f"{where}: must be a mapping of keys ({', '.join(KEYS)}), not {body!r}")
            continue
        d, probs = _parse_one(name, body, values)
        problems += probs
        if d is not None:
            defs[name] = d
    jobs = Jobs(defs, explicit=True)
    problems += _check_graph(jobs)
    return jobs, problems


def _parse_one(name: str, body: dict, values: Mapping[str, Any]) -> tuple[JobDef | None, list[str]]:
    where = f"jobs.{name}"
    problems: list[str] = []
    kw: dict[str, Any] = {}
    for key, v in body.items():
        k = ALIASES.get(key, key)
        if k not in KEYS:
            hint = difflib.get_close_matches(str(key), list(KEYS), n=1)
            problems.append(f"{where}.{key}: unknown key" + (f" (did you mean {hint[0]!r}?)" if hint
                                                              else f"; allowed: {', '.join(KEYS)}"))
            continue
        val, err = _convert(k, v)
        if err:
            problems.append(f"{where}.{k}: {err}")
        else:
            kw[k] = val
    trig = kw.pop("trigger", ON_ADD)
    after, after_all = "", False
    if isinstance(trig, tuple):
        trig, after, after_all = trig
    per = kw.get("per", PER_RUN)
    if after_all and per != PER_SEGMENT:
        kw.setdefault("needs_staging", False)     # a merge step works on the segment tasks' outputs
    seg = ("segment",) if per == PER_SEGMENT else ()
    if per == PER_SEGMENT and kw.get("needs_staging") is False:
        problems.append(f"{where}.needs_staging: a per: segment job works on its own raw file: staging must stay on "
                        f"(files already on disk are not copied)")
    kw["command"] = kw.get("command") or values["batch.command"]
    kw["args"] = kw["args"] if "args" in kw else values["batch.args"]
    params = kw.get("params", {})
    bad = sorted(set(params) & set(BUILTIN))
    if bad:
        problems.append(f"{where}.params: {', '.join(bad)} would hide the built-in placeholder(s) of that name")
    try:
        if not shlex.split(kw["command"]):
            problems.append(f"{where}.command: empty; name the program this job runs")
    except ValueError as e:
        problems.append(f"{where}.command: {e}")
    err = check_template(kw["args"], BUILTIN + seg + tuple(params), {**_sample(params), "files": "f", "inputs": "i"})
    if err:
        problems.append(f"{where}.args: {err}")
    for o in kw.get("outputs", ()):
        err = check_output(o, params, per)
        if err:
            problems.append(f"{where}.outputs: {err}")
    watch = kw.get("watch", "all")
    if watch not in ("all", "listed"):
        from batchman.core.runspec import RunSpecError, parse as parse_runs
        try:
            kw["watch_runs"] = frozenset(parse_runs(str(watch)))
        except RunSpecError as e:
            problems.append(f"{where}.watch: {e} (or all, listed)")
    if problems:
        return None, problems
    return JobDef(name=name, trigger=trig, after=after, after_all=after_all, **kw), []


def _convert(key: str, v: Any) -> tuple[Any, str | None]:
    if key in ("command", "args", "queue", "watch"):
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            return None, f"{v!r} is not text"
        return str(v), None
    if key in ("time_limit", "memory_mb", "cpus", "max_running"):
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if key == "cpus" else 0):
            return None, f"{v!r} is not a whole number >= {1 if key == 'cpus' else 0}"
        return v, None
    if key == "settle":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            return None, f"{v!r} is not a number of seconds >= 0"
        return float(v), None
    if key == "needs_staging":
        if not isinstance(v, bool):
            return None, f"{v!r} is not true or false"
        return v, None
    if key in ("params", "env"):
        if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, (str, int, float)) and not isinstance(x, bool)
                                              for k, x in v.items()):
            return None, f"{v!r} is not a mapping of names to values"
        if key == "params":
            for k in v:
                if not k.isidentifier():
                    return None, f"{k!r} is not a placeholder name (letters, digits, _)"
            return dict(v), None
        return {k: str(x) for k, x in v.items()}, None
    if key in ("extra_args", "outputs"):
        if isinstance(v, str):
            v = shlex.split(v) if key == "extra_args" else [v]
        if not isinstance(v, list) or not all(isinstance(x, (str, int, float)) for x in v):
            return None, f"{v!r} is not a list of strings"
        return tuple(str(x) for x in v), None
    if key == "trigger":
        return parse_trigger(v)
    if key == "per":
        if v not in (PER_RUN, PER_SEGMENT):
            return None, f"{v!r} is not one of run, segment"
        return v, None
    raise AssertionError(key)


def parse_trigger(v: Any) -> tuple[Any, str | None]:
    """'on-add' | 'manual' | 'data-complete' | 'first-segment' | 'after: JOB' | {after: JOB};
    'after: JOB, all-segments' -> (AFTER, JOB, True)."""
    if isinstance(v, dict) and len(v) == 1 and "after" in v:
        v = f"after: {v['after']}"
    if not isinstance(v, str):
        return None, f"{v!r} is not a trigger ({', '.join(TRIGGERS[:-1])} or after: JOB)"
    text = v.strip()
    if text.startswith("after"):
        job, _, flag = text[5:].lstrip(" :").partition(",")
        job, flag = job.strip(), flag.strip()
        if not job:
            return None, "after: names no job (write after: JOB)"
        if flag and flag != ALL_SEGMENTS:
            return None, f"after: {job}, {flag}: {flag!r} is not {ALL_SEGMENTS} (write after: {job}, {ALL_SEGMENTS})"
        return (AFTER, job, bool(flag)), None
    if text not in TRIGGERS:
        hint = difflib.get_close_matches(text, list(TRIGGERS), n=1)
        return None, f"{text!r} is not a trigger" + (f" (did you mean {hint[0]!r}?)" if hint else
                                                     f"; one of {', '.join(TRIGGERS[:-1])} or after: JOB")
    return text, None


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def _sample(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"run": 1, "experiment": "x", "batch_home": "/h", "job": "j", "attempt": 1, "segment": 1, **params}


def check_template(template: str, allowed: Iterable[str], sample: Mapping[str, Any]) -> str | None:
    """None if every placeholder of ``template`` is allowed and it renders; else what is wrong."""
    allowed = tuple(allowed)
    try:
        fields = _fields(template)
        shlex.split(template)
    except ValueError as e:
        return f"{template!r} is not valid: {e}"
    unknown = sorted({f.split(".")[0].split("[")[0] for f in fields} - set(allowed))
    if "" in unknown:
        return f"{template!r}: empty placeholder {{}}; name it (allowed: {' '.join('{' + a + '}' for a in allowed)})"
    if unknown:
        return (f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
                f"allowed: {' '.join('{' + a + '}' for a in allowed)}")
    try:
        template.format(**{k: sample.get(k, "x") for k in allowed})
    except (ValueError, KeyError, IndexError, AttributeError) as e:
        return f"{template!r} does not render: {e}"
    return None


def check_output(template: str, params: Mapping[str, Any], per: str = PER_RUN) -> str | None:
    seg = ("segment",) if per == PER_SEGMENT else ()
    err = check_template(template, OUTPUT_BUILTIN + seg + tuple(params), _sample(params))
    if err:
        return err
    if "run" not in _fields(template):
        return f"{template!r} has no {{run}}: every run would write the same file"
    if seg and "segment" not in _fields(template):
        return f"{template!r} has no {{segment}}: every segment of a run would write the same file"
    return None


def _check_graph(jobs: Jobs) -> list[str]:
    problems = []
    for n, d in jobs.defs.items():
        if d.trigger == AFTER and d.after not in jobs.defs:
            hint = difflib.get_close_matches(d.after, list(jobs.defs), n=1)
            problems.append(f"jobs.{n}.trigger: after: {d.after!r} names no job"
                            + (f" (did you mean {hint[0]!r}?)" if hint else f"; jobs are {', '.join(jobs.defs)}"))
    problems += [f"jobs.{n}.trigger: {p}" for n, d in jobs.defs.items() if (p := _per_problem(d, jobs))]
    for n in jobs.defs:
        seen = [n]
        cur = jobs.defs[n]
        while cur.trigger == AFTER and cur.after in jobs.defs:
            if cur.after in seen:
                if cur.after == n:
                    problems.append(f"jobs.{n}.trigger: cycle in after: {' -> '.join(seen + [n])}")
                break
            seen.append(cur.after)
            cur = jobs.defs[cur.after]
    return problems


def _per_problem(d: JobDef, jobs: Jobs) -> str | None:
    """What is wrong with how ``d`` waits for its upstream, per run or per segment."""
    up = jobs.defs.get(d.after) if d.trigger == AFTER else None
    if up is None:
        return None
    if d.after_all and not up.per_segment:
        return f"after: {d.after}, {ALL_SEGMENTS}: {d.after} runs once per run (not per: segment); write after: {d.after}"
    if d.after_all and d.per_segment:
        return f"after: {d.after}, {ALL_SEGMENTS}: a per: segment job cannot wait for every segment (make it per: run)"
    if up.per_segment and not d.per_segment and not d.after_all:
        return (f"after: {d.after}: {d.after} runs per segment; write after: {d.after}, {ALL_SEGMENTS} "
                f"(this job then runs once per run, when every segment task of {d.after} completed)")
    return None


# ---- rendering -------------------------------------------------------------------------
def values_for(d: JobDef, run: int, experiment: str, batch_home: str, seg: int | None = None) -> dict[str, Any]:
    v = {**d.params, "run": run, "experiment": experiment, "batch_home": batch_home, "job": d.name}
    if seg is not None:
        v["segment"] = seg
    return v


def outputs_for(d: JobDef, run: int, experiment: str, batch_home: str, seg: int | None = None) -> list[str]:
    """The output paths of one run, or one segment (relative templates are relative to batch_home)."""
    v = values_for(d, run, experiment, batch_home, seg)
    return [posixpath.normpath(posixpath.join(batch_home, t.format(**v))) for t in d.outputs]


def judge_outputs(paths: list[str], sizes: Mapping[str, int | None]) -> tuple[list[str], list[str]]:
    """(found, problems): an output is found when it exists and is not empty."""
    found, problems = [], []
    for p in paths:
        n = sizes.get(p)
        if n is None:
            problems.append(f"{p} is missing")
        elif n == 0:
            problems.append(f"{p} is empty")
        else:
            found.append(p)
    return found, problems


# ---- dependencies ----------------------------------------------------------------------

