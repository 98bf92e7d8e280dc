"""The job script the batch system runs for one attempt, and its marker files.

The script is bash (every batch node has it; batchman itself need not be installed
there). It records ``started`` (host, pid, time) in the attempt directory, runs the
configured command with the run's arguments, and records the command's exit code in
``exit`` (written to a temp name and renamed, so a reader never sees half of it). If
the batch system kills it, no ``exit`` is written: the batch system's own account
(time limit, memory, cancelled) then decides. Whichever way it ends, it then drops an empty
file named after the job into the shared done directory (``done_file``), which the daemon
lists to notice ends within seconds (daemon/watch.py).
"""

from __future__ import annotations

import os
import shlex
import string

from batchman.core.decide import Marker
from batchman.util.files import atomic_write

PLACEHOLDERS = ("run", "experiment", "files", "batch_home", "job", "attempt")


def check_args(template: str) -> str | None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        shlex.split(template)
    except ValueError as e:
        return f"{template!r} is not valid: {e}"
    unknown = sorted(f for f in fields if f.split(":")[0] not in PLACEHOLDERS)
    if unknown:
        return (f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
                f"allowed: {' '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    return None


def render_args(template: str, values: dict) -> list[str]:
    """Arguments from the template; ``{files}`` (or ``{inputs}``) as a separate word expands to one
    word per file."""
    out: list[str] = []
    lists = ("files", "inputs")
    for word in shlex.split(template):
        if word in ("{files}", "{inputs}"):
            out.extend(values.get(word[1:-1], []))
            continue
        v = dict(values)
        for k in lists:
            v[k] = " ".join(values.get(k, []))
        out.append(word.format(**v))
    return out


def render(*, command: list[str], args: list[str], env: dict[str, str], attempt_dir: str,
           workdir: str, title: str, done_file: str = "") -> str:
    """The text of the job script (pure). ``done_file``: an empty file created when the script
    ends, after its exit/killed marker (the daemon's wake-up hint, see daemon/watch.py)."""
    q = shlex.quote
    exports = "\n".join(f"export {k}={q(v)}" for k, v in sorted(env.items()))
    argv = " ".join(q(a) for a in command + args)
    ad = q(attempt_dir)
    done = (f"done={q(done_file)}\nmkdir -p \"${{done%/*}}\" 2>/dev/null\n"
            if done_file else "done=\n")
    return f"""#!/bin/bash
# batchman job script: {title}
# Generated for this attempt and kept for inspection; running it by hand re-runs the job.
{exports}
adir={ad}
{done}mkdir -p "$adir" 2>/dev/null
ended() {{ [ -z "$done" ] || : > "$done" 2>/dev/null; }}
echo "$(hostname) $$ $(date +%s)" > "$adir/started.tmp.$$" && mv -f "$adir/started.tmp.$$" "$adir/started"
trap 'echo "TERM $(date +%s)" > "$adir/killed"; kill -TERM $child 2>/dev/null; wait $child; ended; exit 143' TERM
cd {q(workdir)} || {{ echo "batchman: cannot enter {workdir}" >&2; echo 126 > "$adir/exit"; ended; exit 126; }}
{argv} &
child=$!
wait $child
rc=$?
echo "$rc" > "$adir/exit.tmp.$$" && mv -f "$adir/exit.tmp.$$" "$adir/exit"
ended
exit $rc
"""


def write(path: str, text: str) -> None:
    atomic_write(path, text, mode=0o755)


def read_exit(attempt_dir: str) -> int | None:
    """The exit code the job script recorded, or None (one open: the daemon's hot path)."""
    try:
        with open(f"{attempt_dir}/exit", encoding="utf-8") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def read_marker(attempt_dir: str) -> Marker | None:
    """What the job left behind; None if it has not started."""
    m = Marker()
    try:
        with open(os.path.join(attempt_dir, "started"), encoding="utf-8") as f:
            parts = f.read().split()
        m.node = parts[0] if parts else ""
        m.started = float(parts[2]) if len(parts) > 2 else None
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(attempt_dir, "exit"), encoding="utf-8") as f:
            m.exit_code = int(f.read().strip())
    except (OSError, ValueError):
        pass
    if m.started is None and m.exit_code is None:
        return None
    return m


def read_stats(path: str) -> int | None:
    """Segments analysed, from a stats file: a bare number or a line 'segments_analysed = N'."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    for line in text.splitlines():
        line = line.strip()
        if line.isdigit():
            return int(line)
        for sep in ("=", ":", " "):
            if sep in line:
                k, _, v = line.partition(sep)
                if k.strip().lower() in ("segments_analysed", "segments_analyzed", "segments") and v.strip().isdigit():
                    return int(v.strip())
    return None
