"""Options shared by several commands, defined once (pip-tools' scripts/options.py), and the
selection of tasks they describe."""

from __future__ import annotations

import sys

import click
import click.shell_completion

from batchman.core import jobs as J
from batchman.core import runlist, runspec
from batchman.core import states as S
from batchman.core.model import Task, parse_key
from batchman.core.runspec import RunSpecError
from batchman.store import partial


class States(click.ParamType):
    """One state, or several separated by commas (``--state failed,incomplete``): a tuple."""
    name = "state"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        states = tuple(s.strip() for s in str(value).split(","))
        bad = [s for s in states if s not in S.ALL]
        if bad:
            self.fail(f"{bad[0]!r} is not a state; the states are {', '.join(S.ALL)}", param, ctx)
        return states

    def shell_complete(self, ctx, param, incomplete):
        done, _, last = incomplete.rpartition(",")
        return [click.shell_completion.CompletionItem(done + "," * bool(done) + s) for s in S.ALL if s.startswith(last)]


def _flat_states(ctx, param, value) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for group in value for s in group))


state_option = click.option("--state", "states", multiple=True, type=States(), callback=_flat_states,
                            help="Only tasks in this state (repeatable, or several separated by commas: "
                                 "--state failed,incomplete).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output with stable keys.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
class SafePath(click.Path):
    """click.Path that refuses a NUL character as bad usage (os.stat would raise ValueError)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and "\x00" in value:
            self.fail("a file or directory name cannot contain a NUL character", param, ctx)
        return super().convert(value, param, ctx)


def no_nul(_ctx, param, value):
    """A file name with a NUL character is refused as bad usage (the OS would raise ValueError)."""
    if isinstance(value, str) and "\x00" in value:
        raise click.BadParameter("a file or directory name cannot contain a NUL character", param=param)
    return value


file_option = click.option("--file", "file", type=str, callback=no_nul, help="Read run numbers/ranges from this file (- for stdin), one per line, # comments.")
job_option = click.option("--job", "jobs", multiple=True, help="Only this job definition (repeatable).")
dataset_option = click.option("--dataset", "datasets", multiple=True,
                              help="Only runs of this dataset (a run list column; repeatable).")
where_option = click.option("--where", "wheres", multiple=True,
                            help="Only runs whose run list column KEY is VALUE (KEY=VALUE; repeatable).")
runs_argument = click.argument("runs", nargs=-1)   # run specs, or task keys: 2120.reco, 2120.reco.17 (a segment)


def stack(*decorators):
    """Several options as one decorator, shown in --help in the order given."""
    def deco(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn
    return deco


# RUNS... --state --job --file: which tasks a request acts on.
select_options = stack(runs_argument, state_option, job_option, file_option)


def parse_runs(specs, hint: str = "RUNS") -> list[int]:
    """Run specifications typed on the command line; a bad one is bad usage (exit 2)."""
    blank = [s for s in specs if not s.strip(" ,")]
    if blank:
        raise click.BadParameter(f"{blank[0]!r} is an empty run specification (examples: 1000, 1000-1010, 1000,1020)",
                                 param_hint=hint)
    try:
        return runspec.parse_many(list(specs))
    except RunSpecError as e:
        raise click.BadParameter(str(e), param_hint=hint) from None


def named_keys(specs) -> set[str]:
    """Task keys named on the command line: ``2120.reco`` (the run's job, all its segments for a
    per: segment job) or ``2120.reco.17`` (one segment task)."""
    return {s for s in specs if parse_key(s)}


def named_runs(specs, file: str | None) -> set[int] | None:
    """The runs named on the command line and in --file (task keys aside); None when none are named."""
    specs = [s for s in specs if not parse_key(s)]
    runs = set(parse_runs(specs)) if specs else None
    if file:
        text = sys.stdin.read() if file == "-" else read_file(file)
        runs = (runs or set()) | {r for r, _ in runlist.parse(text, source=file)}
    return runs


def select(status_tasks: list[Task], runs: set[int] | None, states: tuple[str, ...] = (), jobs: tuple[str, ...] = (),
           where: dict | None = None, keys: set[str] | frozenset[str] = frozenset()) -> list[Task]:
    """The tasks of the runs or task ``keys`` named (all when neither is), in the states and jobs
    given, in their order. One pass per test, the state first: at 1,000,000 tasks a task filtered
    out by its state costs one look at it."""
    out = status_tasks
    if states:
        sts = frozenset(states)
        out = [t for t in out if t.state in sts]
    if keys:
        out = [t for t in out if (runs is not None and t.run in runs) or t.key in keys or t.run_key in keys]
    elif runs is not None:
        out = [t for t in out if t.run in runs]
    if jobs:
        js = frozenset(jobs)
        out = [t for t in out if t.job in js]
    if where:
        out = [t for t in out if J.matches(t.meta, where)]
    return list(out) if out is status_tasks else out


def read_named(e, runs: set[int] | None, keys=frozenset(), states=()):
    """The status for a command that names runs (or task keys), or else states: only their
    tasks, read from the file without decoding the others (store/partial.py: ~1 s at 1,000,000
    tasks, where reading the whole file takes 5-7 s), else the whole status."""
    wanted = set(runs or ()) | {parse_key(k)[0] for k in keys}
    pick = partial.by_runs(wanted) if wanted else partial.by_states(states)
    return partial.read(e.store, pick) or e.store.read()


def not_in_list(status_tasks: list[Task], runs: set[int] | None, keys: set[str] | frozenset[str] = frozenset()) -> str:
    """'' or a line naming the runs (and task keys) asked for that the status file does not hold."""
    missing = sorted((runs or set()) - {t.run for t in status_tasks})
    lost = sorted(set(keys) - {t.key for t in status_tasks} - {t.run_key for t in status_tasks})
    if not missing and not lost:
        return ""
    what = ", ".join(([runspec.brief(missing)] if missing else []) + lost)
    return f"not in the status file: {what} (`batchman list` shows what is; `batchman add` adds)"


def read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise RunSpecError(f"cannot read the run list {path}: {e.strerror}") from None


def where_of(datasets, wheres) -> dict:
    try:
        return J.parse_where(datasets, wheres)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--where") from None


def run_list(runs, file) -> tuple[list[int], dict[int, dict]]:
    """Runs named on the command line and in --file (a plain list, or a table with a header
    'run dataset quality ...'), and the file's columns per run."""
    wanted = parse_runs(runs) if runs else []
    meta: dict[int, dict] = {}
    if file:
        text = sys.stdin.read() if file == "-" else read_file(file)
        rows = runlist.parse(text, source="stdin" if file == "-" else file)
        seen = set(wanted)
        wanted += [r for r, _ in rows if r not in seen]
        meta = {r: m for r, m in rows if m}
    return wanted, meta
