"""A test double of IBM Spectrum LSF's batch commands: bsub, bjobs, bkill, bhist.

No LSF can run here, so batchman's LSF backend is tested against these four small
programs. They follow IBM's documented command-line interface and output closely
enough for a client that parses what LSF prints; they are not a scheduler.

Documents followed (IBM Spectrum LSF 10.1.0 documentation, ibm.com/docs):
  bsub                 .../lsf_command_ref/bsub.zz1argument.command.1.html (command or stdin script)
  bsub -o / -e         .../lsf_command_ref/bsub.o.1.html (append; %J, %I; -o without -e takes stderr)
  bsub -q              .../lsf_command_ref/bsub.q.1.html
  bsub -W              .../lsf_command_ref/bsub.__w.1.html  ([hour:]minute; SIGUSR2 then kill)
  bsub -M              .../lsf_command_ref/bsub.__m.1.html  (KB by default, unit suffix KB/MB/GB...)
  bsub -env            .../lsf_command_ref/bsub.env.1.html  (default "all": submission env copied)
  bsub -J arrays       .../lsf_command_ref/bsub.__j.1.html  (-J "name[index_list]%limit"; indexes
                       start[-end[:step]], positive; all elements share one job id; the index can
                       never exceed MAX_JOB_ARRAY_SIZE, 1000 by default)
  job arrays           .../lsf_admin/job_arrays_lsf.html, job_array_cl_args.html (LSB_JOBINDEX in
                       the job's environment: the element's index, 0 for a non-array job)
  bjobs JOBID          .../lsf_config_ref/lsf.conf.lsb_bjobs_display_enh.5.html (by default the
                       JOBID column shows the array's id alone; JOB_NAME shows name[index];
                       "job_ID[index]" selects one element in bjobs, bkill, bhist)
  submit message       .../spectrum-lsf/10.1.0?topic=messaging-example-messages
                       ("Job <2812> is submitted to default queue <normal>.")
  bjobs                .../lsf_command_ref/bjobs.1.html
  bjobs -o             .../lsf_command_ref/bjobs.o.1.html (fields, widths, delimiter='c')
  bjobs -json          .../lsf_command_ref/bjobs.json.1.html (-o only; not with -noheader)
  bjobs -noheader      .../lsf_command_ref/bjobs.noheader.1.html
  bjobs -l / -UF       .../lsf_command_ref/bjobs.__u__f.1.html ("Job <1>, User <lsfuser>, ...")
  job states           .../spectrum-lsf/10.1.0?topic=execution-about-job-states
                       and the LSF API job_states (JOB_STAT_PEND ... JOB_STAT_UNKWN, PROV)
  termination reasons  .../lsf_admin/termination_reasons_lsf.html (TERM_OWNER, TERM_RUNLIMIT, ...)
  bkill                .../lsf_command_ref/bkill.1.html (SIGINT, SIGTERM, then SIGKILL)
  kill jobs            .../spectrum-lsf/10.1.0?topic=execution-kill-jobs
  bhist                .../lsf_command_ref/bhist.1.html (-l long format, -a, -n, job IDs)
Messages whose exact wording IBM shows only in examples or that users record:
  "Job <11> is being terminated", "Job <11>: Job has already finished",
  "Job <22>: No matching job found", "<q>: No such queue. Job not submitted.",
  "Job <123> is not found", "No unfinished job found", "No job found",
  "LSF is down. Please wait...", "Cannot connect to LSF. Please wait ...",
  "TERM_RUNLIMIT: job killed after reaching LSF run time limit." (see the report).

How it works
------------
State lives in ``$LSF_DOUBLE_DIR`` (required): ``state.json`` guarded by an ``fcntl``
lock on ``state.lock``. ``bsub`` records the job as PEND and starts a detached shepherd
(``python _lsfdouble.py shepherd <id>``, own session) playing sbatchd: it waits for a
free slot (``LSF_DOUBLE_SLOTS``, default 2, first come first served), runs the job as
``/bin/sh -c command`` (or the spooled stdin script) in its own process group with the
submission environment, enforces the run limit (SIGUSR2, then SIGKILL after a grace
period) and records DONE/EXIT, the exit code and the termination reason.

``-W`` minutes last ``LSF_DOUBLE_SECONDS_PER_MINUTE`` seconds (default 60) so tests can
make a "minute" short. Finished jobs stay visible to ``bjobs -a`` for
``LSF_DOUBLE_CLEAN_PERIOD`` seconds (LSF's CLEAN_PERIOD, default 3600) and to ``bhist``
for ``LSF_DOUBLE_HISTORY_PERIOD`` seconds (default 7 days).

Every invocation appends one JSON line to ``calls.log`` in the state dir
(``{"cmd": "bjobs", "argv": [...], "t": ...}``) so tests can count calls.

Fault injection: ``LSF_DOUBLE_FAULT`` or the file ``faults`` in the state dir (read on
every call), a comma-separated list of ``[command:]mode[=arg]``:
  down          print "LSF is down. Please wait..." on stderr, exit 255
  noconnect     print "Cannot connect to LSF. Please wait ..." on stderr, exit 255
  hang          print "LSF is down. Please wait..." and keep waiting (as LSF retries)
  slow=SECONDS  sleep before answering normally
  reject        bsub refuses: "<queue>: No such queue. Job not submitted."
e.g. ``LSF_DOUBLE_FAULT="bjobs:slow=3"`` or ``echo down > $LSF_DOUBLE_DIR/faults``.
Job arrays: one entry per element in the state, keyed ``<id>[<index>]``, each with a shepherd
of its own; ``%M`` limits the running elements of the array; ``LSF_DOUBLE_MAX_JOB_ARRAY_SIZE``
plays MAX_JOB_ARRAY_SIZE (default 1000). The refusal messages of bad array specifications are
the double's own wording (IBM documents none).
Known queues: ``LSF_DOUBLE_QUEUES`` (default "normal,short,long"; the first is the
default queue); an unknown ``-q`` is rejected as LSF does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
WRAP = 79            # bjobs -l / bhist -l wrap long lines ...
INDENT = " " * 21    # ... and indent continuation lines like this

TERM_TEXT = {
    "TERM_OWNER": "job killed by owner",
    "TERM_ADMIN": "job killed by root or LSF administrator",
    "TERM_RUNLIMIT": "job killed after reaching LSF run time limit",
    "TERM_MEMLIMIT": "job killed after reaching LSF memory usage limit",
}

FIELD_ALIASES = {"id": "jobid", "name": "job_name", "state": "stat", "proj": "proj_name",
                 "project": "proj_name", "cwd": "cwd"}
# Header names bjobs -o prints / JSON keys it uses.
FIELD_KEYS = {
    "jobid": "JOBID", "job_name": "JOB_NAME", "stat": "STAT", "user": "USER", "queue": "QUEUE",
    "proj_name": "PROJ_NAME", "exit_code": "EXIT_CODE", "exit_reason": "EXIT_REASON",
    "pend_reason": "PEND_REASON", "from_host": "FROM_HOST", "exec_host": "EXEC_HOST",
    "submit_time": "SUBMIT_TIME", "start_time": "START_TIME", "finish_time": "FINISH_TIME",
    "cwd": "CWD", "output_file": "OUTPUT_FILE", "error_file": "ERROR_FILE", "command": "COMMAND",
    "runtimelimit": "RUNTIMELIMIT", "memlimit": "MEMLIMIT", "nreq_slot": "NREQ_SLOT",
    "slots": "SLOTS", "pids": "PIDS", "run_time": "RUN_TIME", "jobindex": "JOBINDEX",
}


def job_key(job: dict) -> str:
    """A job's key in the state and its full id: ``101``, or ``101[3]`` for an array element."""
    return f"{job['id']}[{job['index']}]" if job.get("index") else str(job["id"])


def order(job: dict) -> tuple[int, int]:
    return job["id"], job.get("index") or 0


def parse_array_spec(name: str) -> tuple[str, list[int], int] | None | str:
    """-J value -> (array name, indexes, slot limit 0: none) for "name[1-5,7:2]%2"; None for a
    plain job name; an error message for a malformed array specification."""
    m = re.fullmatch(r"(.*)\[([^\]]*)\](?:%(\d+))?", name)
    if not m:
        return None
    out: set[int] = set()
    for part in m.group(2).split(","):
        r = re.fullmatch(r"\s*(\d+)(?:-(\d+)(?::(\d+))?)?\s*", part)
        if not r or int(r.group(1)) < 1 or (r.group(2) and int(r.group(2)) < int(r.group(1))) \
                or (r.group(3) and int(r.group(3)) < 1):
            return "Bad job array index list. Job not submitted."
        hi = int(r.group(2) or r.group(1))
        out.update(range(int(r.group(1)), hi + 1, int(r.group(3) or 1)))
    if max(out) > int(env_float("LSF_DOUBLE_MAX_JOB_ARRAY_SIZE", 1000)):
        return "Job array index too large. Job not submitted."
    return m.group(1), sorted(out), int(m.group(3) or 0)


# --------------------------------------------------------------------------- state

def state_dir() -> Path:
    d = os.environ.get("LSF_DOUBLE_DIR")
    if not d:
        sys.stderr.write("LSF_DOUBLE_DIR is not set: the LSF test double needs a state directory\n")
        sys.exit(255)
    p = Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def locked_state(d: Path):
    """Yield the state dict under an exclusive lock; write it back on success."""
    with open(d / "state.lock", "a+") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            path = d / "state.json"
            try:
                st = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                st = {"next_id": 101, "jobs": {}}
            yield st
            tmp = d / "state.json.tmp"
            tmp.write_text(json.dumps(st))
            os.replace(tmp, path)
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def purge(st: dict, now: float) -> None:
    """Forget jobs that left bhist's reach."""
    keep = env_float("LSF_DOUBLE_HISTORY_PERIOD", 7 * 86400)
    for jid in [j for j, job in st["jobs"].items()
                if job["stat"] in ("DONE", "EXIT") and now - (job.get("end_time") or now) > keep]:
        del st["jobs"][jid]


def log_call(d: Path, cmd: str, argv: list[str]) -> None:
    with open(d / "calls.log", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps({"cmd": cmd, "argv": argv, "t": time.time()}) + "\n")


def faults(d: Path, cmd: str) -> dict[str, str]:
    spec = os.environ.get("LSF_DOUBLE_FAULT", "")
    try:
        spec += "," + (d / "faults").read_text()
    except FileNotFoundError:
        pass
    out: dict[str, str] = {}
    for item in re.split(r"[,\n]", spec):
        item = item.strip()
        if not item:
            continue
        target, _, mode = item.rpartition(":")
        if target and target != cmd:
            continue
        name, _, arg = mode.partition("=")
        out[name.strip()] = arg.strip()
    return out


def apply_faults(d: Path, cmd: str) -> dict[str, str]:
    f = faults(d, cmd)
    if "slow" in f:
        time.sleep(float(f["slow"] or 5))
    if "hang" in f:
        sys.stderr.write("LSF is down. Please wait...\n")
        sys.stderr.flush()
        while True:
            time.sleep(3600)
    if "down" in f:
        sys.stderr.write("LSF is down. Please wait...\n")
        sys.exit(255)
    if "noconnect" in f:
        sys.stderr.write("Cannot connect to LSF. Please wait ...\n")
        sys.exit(255)
    return f


def lsf_time(t: float | None, long: bool = False) -> str:
    if not t:
        return ""
    lt = time.localtime(t)
    if long:  # "Tue May  6 15:45:10" as in bjobs -l / bhist -l
        return time.strftime("%a %b %e %H:%M:%S", lt)
    return time.strftime("%b %e %H:%M", lt)


def wrap(line: str) -> list[str]:
    """Wrap like LSF's long formats: cut at WRAP columns, continue indented."""
    out = [line[:WRAP]]
    rest = line[WRAP:]
    width = WRAP - len(INDENT)
    while rest:
        out.append(INDENT + rest[:width])
        rest = rest[width:]
    return out


def user_name() -> str:
    import getpass
    return os.environ.get("LSF_DOUBLE_USER") or getpass.getuser()


# --------------------------------------------------------------------------- our processes only
# The double runs as root in CI, where a stale pid or process group id recorded in state.json
# may by now belong to anybody (a Grid Engine execd died that way). So nothing is signalled on
# the strength of a recorded number alone: a job's processes carry JOB_TOKEN_VAR=<state dir>:<id>
# in their environment, the shepherd is recognised by its command line and state dir, and every
# signal goes to single verified pids, never to a whole process group.

JOB_TOKEN_VAR = "LSF_DOUBLE_JOB"


def job_token(d: Path, jid) -> str:
    return f"{Path(d).resolve()}:{jid}"


def _proc_read(pid: int, what: str) -> bytes:
    with open(f"/proc/{pid}/{what}", "rb") as f:
        return f.read()


def _proc_stat(pid: int) -> list[bytes]:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]."""
    stat = _proc_read(pid, "stat")
    return stat[stat.rindex(b")") + 2:].split()


def job_pids(d: Path, jid) -> list[int]:
    """Live processes that belong to job ``jid`` of this double (by the token in their environment)."""
    token = f"{JOB_TOKEN_VAR}={job_token(d, jid)}".encode() + b"\0"
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if _proc_stat(pid)[0] in (b"Z", b"X"):
                continue
            if token in _proc_read(pid, "environ") + b"\0":
                pids.append(pid)
        except (OSError, ValueError, IndexError):
            pass
    return pids


def signal_job(d: Path, jid, signum: int) -> int:
    """Send ``signum`` to every verified process of job ``jid``; how many were signalled."""
    n = 0
    for pid in job_pids(d, jid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
            n += 1
    return n


def is_shepherd(pid: int | None, d: Path, jid) -> bool:
    """Is ``pid`` (still) the shepherd of job ``jid`` of this state dir, and alive?"""
    if not pid:
        return False
    try:
        argv = _proc_read(pid, "cmdline").split(b"\0")
        if _proc_stat(pid)[0] in (b"Z", b"X"):
            return False
        env = _proc_read(pid, "environ").split(b"\0")
    except (OSError, ValueError, IndexError):
        return False
    return (argv[-3:-1] == [b"shepherd", str(jid).encode()] or argv[-2:] == [b"shepherd", str(jid).encode()]) \
        and f"LSF_DOUBLE_DIR={d}".encode() in env


# --------------------------------------------------------------------------- bsub

BSUB_VALUE_OPTS = {"-J", "-o", "-e", "-oo", "-eo", "-W", "-M", "-n", "-q", "-P", "-cwd", "-R",
                   "-env", "-G", "-u", "-w", "-b", "-E", "-Ep", "-app", "-g", "-sla", "-L", "-We",
                   "-c", "-i", "-m", "-t", "-Jd", "-v", "-T", "-C", "-F", "-D", "-S", "-gpu"}
BSUB_FLAG_OPTS = {"-x", "-r", "-rn", "-N", "-B", "-H", "-K", "-I", "-Ip", "-Is", "-hl", "-ul"}


def usage_bsub(msg: str) -> int:
    sys.stderr.write(f"{msg}\nUsage: bsub [-h] [-V] [-H] [-x] [-r] [-N] [-B] [-K] ... "
                     "[command [argument ...]]\n")
    return 255


def parse_run_limit(text: str) -> float | None:
    """-W [hour:]minute[/host_name] -> minutes."""
    text = text.split("/")[0]
    m = re.fullmatch(r"(?:(\d+):)?(\d+)", text.strip())
    if not m:
        return None
    return int(m.group(1) or 0) * 60 + int(m.group(2))


def parse_env_option(value: str, base: dict[str, str]) -> dict[str, str] | None:
    """bsub -env "none" | "all, [~var] [var=value]" | "var[=value], ..." (bsub.env.1)."""
    items: list[str] = []
    cur, quote = "", False
    for ch in value:
        if ch == "'":
            quote = not quote
            continue
        if ch == "," and not quote:
            items.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        items.append(cur.strip())
    if not items:
        return None
    if items == ["none"]:
        return {}
    if items[0] == "all":
        env = dict(base)
        items = items[1:]
    else:
        env = {}
    for it in items:
        if it.startswith("~"):
            env.pop(it[1:], None)
        elif "=" in it:
            k, _, v = it.partition("=")
            env[k.strip()] = v
        elif it in base:
            env[it] = base[it]
    return env


def bsub(argv: list[str]) -> int:
    d = state_dir()
    log_call(d, "bsub", argv)
    f = apply_faults(d, "bsub")
    opts: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in BSUB_VALUE_OPTS:
            if i + 1 >= len(argv):
                return usage_bsub(f"bsub: option requires an argument -- {a[1:]}")
            opts[a] = argv[i + 1]
            i += 2
        elif a in BSUB_FLAG_OPTS:
            flags.add(a)
            i += 1
        elif a in ("-h", "-V"):
            sys.stderr.write("IBM Spectrum LSF 10.1.0.0 (batchman test double)\n")
            return 0
        elif a.startswith("-"):
            return usage_bsub(f"bsub: illegal option -- {a[1:]}")
        else:
            break
    command = argv[i:]
    stdin_script = None
    if not command:
        stdin_script = sys.stdin.read()
        # #BSUB lines in the standard input are options too (command line wins).
        for line in stdin_script.splitlines():
            m = re.match(r"\s*#BSUB\s+(-\S+)(?:\s+(.*))?$", line)
            if m and m.group(1) in BSUB_VALUE_OPTS and m.group(2):
                opts.setdefault(m.group(1), shlex.split(m.group(2))[0])
            elif m and m.group(1) in BSUB_FLAG_OPTS:
                flags.add(m.group(1))
        if not stdin_script.strip():
            sys.stderr.write("No command is specified. Job not submitted.\n")
            return 255

    queues = [q for q in os.environ.get("LSF_DOUBLE_QUEUES", "normal,short,long").split(",") if q]
    queue = opts.get("-q", "").split()[0] if opts.get("-q", "").split() else ""
    if "reject" in f or (queue and queue not in queues):
        sys.stderr.write(f"{queue or queues[0]}: No such queue. Job not submitted.\n")
        return 255
    run_limit_min = None
    if "-W" in opts:
        run_limit_min = parse_run_limit(opts["-W"])
        if run_limit_min is None:
            sys.stderr.write(f"{opts['-W']}: Bad RUNLIMIT specification. Job not submitted.\n")
            return 255
    mem = None
    if "-M" in opts:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGTPEZ]B?)?\s*!?", opts["-M"].strip(), re.I)
        if not m:
            sys.stderr.write(f"{opts['-M']}: Bad memory limit specification. Job not submitted.\n")
            return 255
        scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 ** 2}.get((m.group(2) or "K")[0].upper(), 1)
        mem = float(m.group(1)) * scale   # MB
    ncpus = 1
    if "-n" in opts:
        try:
            ncpus = int(opts["-n"].split(",")[0])
        except ValueError:
            sys.stderr.write(f"{opts['-n']}: Bad argument for option -n. Job not submitted.\n")
            return 255
    env = dict(os.environ)
    if "-env" in opts:
        e = parse_env_option(opts["-env"], env)
        if e is None:
            sys.stderr.write("Bad -env specification. Job not submitted.\n")
            return 255
        env = e
    for k in [k for k in env if k.startswith("LSF_DOUBLE_")]:
        env.pop(k)
    cwd = opts.get("-cwd") or os.getcwd()
    spm = env_float("LSF_DOUBLE_SECONDS_PER_MINUTE", 60.0)
    array = parse_array_spec(opts.get("-J", ""))
    if isinstance(array, str):
        sys.stderr.write(array + "\n")
        return 255

    now = time.time()
    with locked_state(d) as st:
        purge(st, now)
        st["slots"] = int(env_float("LSF_DOUBLE_SLOTS", 2))
        jid = st["next_id"]
        st["next_id"] = jid + 1
        spool = None
        if stdin_script is not None:
            spool = str(d / f"job.{jid}.spool")
            Path(spool).write_text(stdin_script)
        out = opts.get("-o") or opts.get("-oo")
        err = opts.get("-e") or opts.get("-eo")
        sub = (lambda p, i=0: p and p.replace("%J", str(jid)).replace("%I", str(i)))
        job = {
            "id": jid, "name": opts.get("-J") or (" ".join(command) if command else stdin_script.strip().splitlines()[0][:60]),
            "user": user_name(), "queue": queue or queues[0], "project": opts.get("-P", "default"),
            "cwd": cwd, "command": command, "spool": spool, "out": sub(out), "err": sub(err),
            "out_overwrite": "-oo" in opts, "err_overwrite": "-eo" in opts,
            "run_limit_min": run_limit_min, "run_limit_s": None if run_limit_min is None else run_limit_min * spm,
            "mem_mb": mem, "ncpus": ncpus, "env": env,
            "stat": "PSUSP" if "-H" in flags else "PEND", "submit_time": now,
            "from_host": socket.gethostname().split(".")[0],
            "start_time": None, "end_time": None, "exit_code": None, "exit_reason": "",
            "pid": None, "pgid": None, "shepherd": None, "kill": None,
            "pend_reason": "Job was suspended by the user while pending" if "-H" in flags
                           else "New job is waiting for scheduling",
        }
        elements = [job] if array is None else [
            {**job, "index": i, "name": f"{array[0]}[{i}]", "array_limit": array[2], "out": sub(out, i),
             "err": sub(err, i)} for i in array[1]]
        for el in elements:
            st["jobs"][job_key(el)] = el
    if "-H" in flags:
        # Held (PSUSP): no sbatchd is involved until the job is released, and the double has no
        # bresume; bkill ends it in the state alone. No process per held job, so thousands can wait.
        print(f"Job <{jid}> is submitted to {'queue' if queue else 'default queue'} <{queue or queues[0]}>.")
        return 0
    # A shepherd plays sbatchd for each job (array element); detached so bsub returns at once.
    for key in [job_key(el) for el in elements]:
        log = open(d / f"shepherd.{key}.log", "ab")
        p = subprocess.Popen([sys.executable, str(HERE), "shepherd", key], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log, start_new_session=True, close_fds=True,
                             env={**os.environ, "LSF_DOUBLE_DIR": str(d)})
        with locked_state(d) as st:
            st["jobs"][key]["shepherd"] = p.pid
    if queue:
        print(f"Job <{jid}> is submitted to queue <{queue}>.")
    else:
        print(f"Job <{jid}> is submitted to default queue <{queues[0]}>.")
    return 0


# --------------------------------------------------------------------------- shepherd

def at_array_limit(st: dict, job: dict) -> bool:
    """Does the array of this element run as many elements as its ``%limit`` allows?"""
    limit = job.get("array_limit") or 0
    return bool(limit) and sum(j["id"] == job["id"] and j["stat"] in ("RUN", "USUSP", "SSUSP")
                               for j in st["jobs"].values()) >= limit


def shepherd(jid: str) -> int:
    d = state_dir()
    # 1. wait for a slot (FIFO by job id among PEND jobs).
    while True:
        with locked_state(d) as st:
            job = st["jobs"].get(jid)
            if job is None or job["stat"] in ("DONE", "EXIT"):
                return 0           # killed while pending
            if job["stat"] == "PEND":
                slots = int(st.get("slots", 2))
                running = [j for j in st["jobs"].values()
                           if j["stat"] in ("RUN", "USUSP", "SSUSP") and order(j) != order(job)]
                used = sum(j["ncpus"] for j in running)
                # FIFO, but an element held back by its array's %limit holds back no other job
                earlier = [j for j in st["jobs"].values() if j["stat"] == "PEND" and order(j) < order(job)
                           and not at_array_limit(st, j)]
                if at_array_limit(st, job):
                    job["pend_reason"] = "The job array has reached its job slot limit"
                elif not earlier and used + job["ncpus"] <= slots:
                    job["stat"] = "RUN"
                    job["start_time"] = time.time()
                    job["pend_reason"] = ""
                    break
                else:
                    job["pend_reason"] = "Job slot limit reached" if used + job["ncpus"] > slots \
                        else "The queue has not enough job slots for the parallel job"
        time.sleep(0.1)

    # 2. run it.
    env = dict(job["env"])
    env[JOB_TOKEN_VAR] = job_token(d, jid)
    env.update(LSB_JOBID=str(job["id"]), LSB_JOBINDEX=str(job.get("index") or 0), LSB_JOBNAME=job["name"],
               LSB_QUEUE=job["queue"],
               LSB_MAX_NUM_PROCESSORS=str(job["ncpus"]), LSB_DJOB_NUMPROC=str(job["ncpus"]),
               LSB_PROJECT_NAME=job["project"], LS_SUBCWD=job["cwd"])
    argv = ["/bin/sh", job["spool"]] if job["spool"] else ["/bin/sh", "-c", " ".join(job["command"])]
    out_f = err_f = None
    try:
        if job["out"]:
            out_f = open(job["out"], "w" if job["out_overwrite"] else "a")
        if job["err"] and job["err"] != job["out"]:
            err_f = open(job["err"], "w" if job["err_overwrite"] else "a")
    except OSError:
        pass
    try:
        p = subprocess.Popen(argv, cwd=job["cwd"], env=env, stdin=subprocess.DEVNULL,
                             stdout=out_f or subprocess.DEVNULL,
                             stderr=err_f or out_f or subprocess.DEVNULL,
                             process_group=0)
    except OSError as e:
        with locked_state(d) as st:
            j = st["jobs"][jid]
            j.update(stat="EXIT", exit_code=None, end_time=time.time(),
                     exit_reason="TERM_CWD_NOTEXIST" if not os.path.isdir(job["cwd"]) else "")
        sys.stderr.write(f"cannot start job: {e}\n")
        return 1
    with locked_state(d) as st:
        st["jobs"][jid].update(pid=p.pid, pgid=p.pid)
        killed_early = bool(st["jobs"][jid].get("kill"))
    if killed_early:   # bkill arrived between dispatch and start
        signal_job(d, jid, signal.SIGKILL)

    limit = job["run_limit_s"]
    grace = max(1.0, env_float("LSF_DOUBLE_SECONDS_PER_MINUTE", 60.0) / 6)
    usr2_at = None
    reason = None
    while True:
        rc = p.poll()
        if rc is not None:
            break
        now = time.time()
        if limit is not None and usr2_at is None and now - job["start_time"] >= limit:
            reason = "TERM_RUNLIMIT"
            usr2_at = now
            signal_job(d, jid, signal.SIGUSR2)
        if usr2_at is not None and now - usr2_at > grace:
            signal_job(d, jid, signal.SIGKILL)
        time.sleep(0.05)
    # the rest of the job's processes (verified: its pid may already be someone else's)
    signal_job(d, jid, signal.SIGKILL)

    exit_code = rc if rc >= 0 else 128 - rc
    with locked_state(d) as st:
        j = st["jobs"][jid]
        reason = j.get("kill") or reason
        j["end_time"] = time.time()
        j["exit_code"] = exit_code
        j["stat"] = "DONE" if exit_code == 0 and not reason else "EXIT"
        j["exit_reason"] = reason or ""
        job = dict(j)
    for f in (out_f, err_f):
        if f:
            f.close()
    if job["out"]:
        write_report(job)
    return 0


def write_report(job: dict) -> None:
    """Append LSF's job report to the -o file (bsub -o: 'the job report is stored in the output file')."""
    if job["stat"] == "DONE":
        outcome = "Successfully completed."
    else:
        outcome = ""
        if job["exit_reason"]:
            outcome = f"{job['exit_reason']}: {TERM_TEXT.get(job['exit_reason'], 'job killed')}.\n"
        outcome += f"Exited with exit code {job['exit_code']}."
    text = (f"\n------------------------------------------------------------\n"
            f"Sender: LSF System <lsfadmin@{job['from_host']}>\n"
            f"Subject: Job {job_key(job)}: <{job['name']}> in cluster <double> "
            f"{'Done' if job['stat'] == 'DONE' else 'Exited'}\n\n"
            f"Job <{job['name']}> was submitted from host <{job['from_host']}> by user <{job['user']}> "
            f"in cluster <double> at {lsf_time(job['submit_time'], True)}\n"
            f"Job was executed on host(s) <{job['from_host']}>, in queue <{job['queue']}>, as user "
            f"<{job['user']}> in cluster <double> at {lsf_time(job['start_time'], True)}\n"
            f"------------------------------------------------------------\n\n"
            f"{outcome}\n\n"
            f"The output (if any) is above this job summary.\n")
    with contextlib.suppress(OSError), open(job["out"], "a") as f:
        f.write(text)


# --------------------------------------------------------------------------- views

def field_value(job: dict, field: str) -> str:
    f = field
    done = job["stat"] in ("DONE", "EXIT")
    if f == "jobid":
        return str(job["id"])          # an element's too (LSB_BJOBS_DISPLAY_ENH=N, LSF's default)
    if f == "jobindex":
        return str(job.get("index") or 0)
    if f == "job_name":
        return job["name"]
    if f == "stat":
        return job["stat"]
    if f == "user":
        return job["user"]
    if f == "queue":
        return job["queue"]
    if f == "proj_name":
        return job["project"]
    if f == "exit_code":
        # bjobs shows the exit code of jobs that exited with a non-zero value
        return str(job["exit_code"]) if job["stat"] == "EXIT" and job["exit_code"] else ""
    if f == "exit_reason":
        r = job.get("exit_reason") or ""
        return f"{r}: {TERM_TEXT.get(r, 'job killed')}" if r else ""
    if f == "pend_reason":
        return job.get("pend_reason", "") if job["stat"] in ("PEND", "PSUSP") else ""
    if f == "from_host":
        return job["from_host"]
    if f == "exec_host":
        return job["from_host"] if job["start_time"] else ""
    if f == "submit_time":
        return lsf_time(job["submit_time"])
    if f == "start_time":
        return lsf_time(job["start_time"])
    if f == "finish_time":
        return lsf_time(job["end_time"]) + (" L" if done else "") if job["end_time"] else ""
    if f == "cwd":
        return job["cwd"]
    if f == "output_file":
        return job["out"] or ""
    if f == "error_file":
        return job["err"] or ""
    if f == "command":
        return " ".join(job["command"]) if job["command"] else "#!/bin/sh"
    if f == "runtimelimit":
        return f"{job['run_limit_min']:.1f}/{job['from_host']}" if job["run_limit_min"] is not None else ""
    if f == "memlimit":
        return f"{job['mem_mb']:g} Mbytes" if job["mem_mb"] else ""
    if f in ("nreq_slot", "slots"):
        return str(job["ncpus"])
    if f == "pids":
        return str(job["pid"]) if job["pid"] and job["stat"] == "RUN" else ""
    if f == "run_time":
        if not job["start_time"]:
            return "0 second(s)"
        return f"{int((job['end_time'] or time.time()) - job['start_time'])} second(s)"
    return ""


def parse_o(spec: str) -> tuple[list[tuple[str, int | None]], str | None] | None:
    """bjobs -o "field[:[-][width]] ... [delimiter='c']" -> ([(field, width)], delimiter)."""
    delim = None
    m = re.search(r"delimiter=(['\"])(.*?)\1", spec)
    if m:
        delim = m.group(2)
        spec = spec[:m.start()] + spec[m.end():]
    fields = []
    for tok in spec.split():
        name, _, w = tok.partition(":")
        name = FIELD_ALIASES.get(name.lower(), name.lower())
        if name not in FIELD_KEYS:
            return None
        width = None
        if w:
            w = w.split(":")[0].lstrip("-")
            width = int(w) if w.isdigit() else None
        fields.append((name, width))
    return fields, delim


def select_jobs(st: dict, *, show_all: bool, ids: list[str], name: str | None,
                user: str | None, queue: str | None, now: float) -> list[dict]:
    clean = env_float("LSF_DOUBLE_CLEAN_PERIOD", 3600)
    out = []
    for job in sorted(st["jobs"].values(), key=order):
        finished = job["stat"] in ("DONE", "EXIT")
        if finished and now - job["end_time"] > clean:
            continue                   # bjobs no longer knows it (bhist still does)
        if ids and str(job["id"]) not in ids and job_key(job) not in ids:
            continue
        if not ids and finished and not show_all:
            continue
        if name is not None and not name_matches(name, job["name"]):
            continue
        if user not in (None, "all") and job["user"] != user:
            continue
        if queue and job["queue"] != queue:
            continue
        out.append(job)
    return out


def name_matches(pattern: str, name: str) -> bool:
    """-J job_name: '*' at the end (or anywhere) matches any string."""
    rx = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(rx, name) is not None


def refresh(st: dict) -> None:
    """Jobs whose shepherd died without recording an end become UNKWN/ZOMBI as in LSF."""
    for job in st["jobs"].values():
        if job["stat"] in ("RUN", "PEND") and job.get("shepherd") and \
                not is_shepherd(job["shepherd"], state_dir(), job_key(job)):
            job["stat"] = "ZOMBI" if job.get("kill") else "UNKWN"


def long_format(job: dict) -> list[str]:
    head = (f"Job <{job_key(job)}>, Job Name <{job['name']}>, User <{job['user']}>, Project <{job['project']}>, "
            f"Status <{job['stat']}>, Queue <{job['queue']}>, Command <{field_value(job, 'command')}>")
    lines = [""] + wrap(head)
    t = lsf_time
    lines += wrap(f"{t(job['submit_time'], True)}: Submitted from host <{job['from_host']}>, CWD <{job['cwd']}>"
                  + (f", Output File <{job['out']}>" if job["out"] else "")
                  + (f", Error File <{job['err']}>" if job["err"] else "")
                  + (f", {job['ncpus']} Task(s)" if job["ncpus"] > 1 else "") + ";")
    if job["run_limit_min"] is not None:
        lines += ["", " RUNLIMIT", f" {job['run_limit_min']:.1f} min", ""]
    if job["mem_mb"]:
        lines += ["", " MEMLIMIT", f"    {job['mem_mb']:g} M", ""]
    if job["start_time"]:
        lines += wrap(f"{t(job['start_time'], True)}: Started 1 Task(s) on Host(s) <{job['from_host']}>, "
                      f"Allocated {job['ncpus']} Slot(s) on Host(s) <{job['from_host']}>, Execution Home "
                      f"<{os.environ.get('HOME', '/')}>, Execution CWD <{job['cwd']}>;")
    if job["stat"] == "DONE":
        lines += wrap(f"{t(job['end_time'], True)}: Done successfully. The CPU time used is 0.0 seconds.")
    elif job["stat"] == "EXIT":
        if job["exit_reason"]:
            lines += wrap(f"{t(job['end_time'], True)}: Completed <exit>; "
                          f"{job['exit_reason']}: {TERM_TEXT.get(job['exit_reason'], 'job killed')}.")
        lines += wrap(f"{t(job['end_time'], True)}: Exited with exit code {job['exit_code']}. "
                      "The CPU time used is 0.0 seconds.")
    if job["stat"] in ("PEND", "PSUSP"):
        lines += ["", " PENDING REASONS:", f" {job['pend_reason']};"]
    lines += ["", " SCHEDULING PARAMETERS:",
              "           r15s   r1m  r15m   ut      pg    io   ls    it    tmp    swp    mem",
              " loadSched   -     -     -     -       -     -    -     -     -      -      -  ",
              " loadStop    -     -     -     -       -     -    -     -     -      -      -  ", ""]
    return lines


def bjobs(argv: list[str]) -> int:
    d = state_dir()
    log_call(d, "bjobs", argv)
    apply_faults(d, "bjobs")
    show_all = long = noheader = as_json = False
    fmt = None
    name = user = queue = None
    ids: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-a":
            show_all = True
        elif a in ("-l", "-UF"):
            long = True
        elif a == "-noheader":
            noheader = True
        elif a == "-json":
            as_json = True
        elif a in ("-o", "-J", "-u", "-q") and i + 1 < len(argv):
            v = argv[i + 1]
            i += 1
            if a == "-o":
                fmt = v
            elif a == "-J":
                name = v
            elif a == "-u":
                user = v
            else:
                queue = v
        elif a in ("-w", "-W", "-X", "-r", "-p", "-d", "-s", "-hms"):
            pass
        elif a.startswith("-"):
            sys.stderr.write(f"bjobs: illegal option -- {a[1:]}\nUsage: bjobs [-h] [-V] [-w |-l] ...\n")
            return 255
        else:
            ids.append(a)
        i += 1
    if as_json and noheader:
        sys.stderr.write("-json and -noheader cannot be used together.\n")
        return 255
    if as_json and fmt is None:
        sys.stderr.write("The -json option must be used together with the -o option.\n")
        return 255
    parsed = parse_o(fmt) if fmt is not None else None
    if fmt is not None and parsed is None:
        bad = [t.partition(":")[0] for t in fmt.split()
               if not t.startswith("delimiter=") and FIELD_ALIASES.get(t.partition(':')[0].lower(),
                                                                       t.partition(':')[0].lower()) not in FIELD_KEYS]
        sys.stderr.write(f"{bad[0] if bad else fmt}: Illegal field name.\n")
        return 255
    if user is None:
        user = user_name()
    now = time.time()
    with locked_state(d) as st:
        purge(st, now)
        refresh(st)
        jobs = select_jobs(st, show_all=show_all, ids=ids, name=name, user=user, queue=queue, now=now)
    rc = 0
    missing = [j for j in ids if j not in {str(x["id"]) for x in jobs} | {job_key(x) for x in jobs}]

    if as_json:
        fields = parsed[0]
        records = [{FIELD_KEYS[f]: field_value(j, f) for f, _ in fields} for j in jobs]
        for m in missing:
            records.append({"JOBID": m, "ERROR": f"Job <{m}> is not found"})
        print(json.dumps({"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}, indent=2))
        return 0
    for m in missing:
        sys.stderr.write(f"Job <{m}> is not found\n")
        rc = 255
    if not jobs:
        if not missing:
            if name is not None:
                sys.stderr.write(f"Job <{name}> is not found\n")
                return 255
            sys.stderr.write("No job found\n" if show_all else "No unfinished job found\n")
        return rc
    if long:
        out = []
        for k, j in enumerate(jobs):
            if k:
                out.append("-" * 78)
            out += long_format(j)
        print("\n".join(out))
        return rc
    if parsed is None:
        parsed = ([("jobid", 7), ("user", 7), ("stat", 5), ("queue", 10), ("from_host", 11),
                   ("exec_host", 11), ("job_name", 10), ("submit_time", 12)], None)
    fields, delim = parsed
    rows = []
    for j in jobs:
        vals = []
        for f, w in fields:
            v = field_value(j, f) or "-"
            if w and len(v) > w:
                v = ("*" + v[-(w - 1):]) if f == "job_name" else v[:w]
            vals.append(v)
        rows.append(vals)
    header = [FIELD_KEYS[f] for f, _ in fields]
    if delim is not None:
        lines = ([delim.join(header)] if not noheader else []) + [delim.join(r) for r in rows]
    else:
        widths = [max([w or 0, len(h)] + [len(r[k]) for r in rows]) for k, ((_, w), h) in
                  enumerate(zip(fields, header))]
        fmt_row = lambda r: " ".join(v.ljust(widths[k]) for k, v in enumerate(r)).rstrip()  # noqa: E731
        lines = ([fmt_row(header)] if not noheader else []) + [fmt_row(r) for r in rows]
    print("\n".join(lines))
    return rc


# --------------------------------------------------------------------------- bkill

def bkill(argv: list[str]) -> int:
    d = state_dir()
    log_call(d, "bkill", argv)
    apply_faults(d, "bkill")
    name = None
    ids: list[str] = []
    sig = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-J", "-s", "-q", "-u", "-m", "-C") and i + 1 < len(argv):
            if a == "-J":
                name = argv[i + 1]
            elif a == "-s":
                sig = argv[i + 1]
            i += 2
            continue
        if a in ("-r", "-d", "-b", "-l"):
            i += 1
            continue
        if a.startswith("-"):
            sys.stderr.write(f"bkill: illegal option -- {a[1:]}\n")
            return 255
        ids.append(a)
        i += 1
    if not ids and name is None:
        sys.stderr.write("bkill: You must specify a job ID or the -J, -m, -u, -q option\n")
        return 255
    me = user_name()
    rc = 0
    to_signal: list[tuple[int, str]] = []
    out: list[str] = []
    err: list[str] = []
    now = time.time()
    with locked_state(d) as st:
        refresh(st)
        if ids == ["0"] or (not ids and name is not None):
            targets = [j for j in st["jobs"].values() if j["user"] == me
                       and (name is None or name_matches(name, j["name"]))]
            unfinished = [j for j in targets if j["stat"] not in ("DONE", "EXIT")]
            if not unfinished:
                err.append("No unfinished job found" if name is None else f"Job <{name}>: No matching job found")
                rc = 255
            targets = unfinished
        else:
            targets = []
            for jid in ids:
                # "101[3]": that element; "101": the job, or every element of the array 101
                mine = [j for j in sorted(st["jobs"].values(), key=order)
                        if jid in (job_key(j), str(j["id"])) and j["user"] == me]
                if not mine:
                    err.append(f"Job <{jid}>: No matching job found")
                    rc = 255
                    continue
                targets += mine
        for j in targets:
            if j["stat"] in ("DONE", "EXIT"):
                err.append(f"Job <{job_key(j)}>: Job has already finished")
                rc = 255
                continue
            if j["stat"] in ("PEND", "PSUSP"):
                j.update(stat="EXIT", end_time=now, exit_reason="TERM_OWNER", exit_code=None, pend_reason="")
            else:
                j["kill"] = "TERM_OWNER"
                if j.get("pgid"):
                    to_signal.append((job_key(j), sig or ""))
            out.append(f"Job <{job_key(j)}> is being terminated" if sig is None
                       else f"Job <{job_key(j)}> is being signaled")
    if out:
        print("\n".join(out))
    if err:
        sys.stderr.write("\n".join(err) + "\n")
    sys.stdout.flush()
    if to_signal:
        # SIGINT, SIGTERM, then SIGKILL (JOB_TERMINATE_INTERVAL, shortened), in the background.
        pid = os.fork()
        if pid == 0:
            os.setsid()
            try:
                # job ids, not process groups: only verified processes of the job are signalled
                if any(s for _, s in to_signal):
                    for jid, s in to_signal:
                        with contextlib.suppress(ValueError, AttributeError):
                            signal_job(d, jid, getattr(signal, s if s.startswith("SIG") else "SIG" + s))
                else:
                    for k, signum in enumerate((signal.SIGINT, signal.SIGTERM, signal.SIGKILL)):
                        if k:
                            time.sleep(0.5)
                        for jid, _ in to_signal:
                            signal_job(d, jid, signum)
            finally:
                os._exit(0)
    return rc


# --------------------------------------------------------------------------- bhist

def bhist(argv: list[str]) -> int:
    d = state_dir()
    log_call(d, "bhist", argv)
    apply_faults(d, "bhist")
    long = show_all = False
    name = user = None
    ids: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-l":
            long = True
        elif a in ("-a", "-d", "-p", "-r", "-s", "-w", "-b", "-UF"):
            show_all = show_all or a in ("-a", "-d")
        elif a in ("-J", "-u", "-n", "-q", "-P", "-m", "-C", "-D", "-S", "-f") and i + 1 < len(argv):
            if a == "-J":
                name = argv[i + 1]
            elif a == "-u":
                user = argv[i + 1]
            i += 1
        elif a.startswith("-"):
            sys.stderr.write(f"bhist: illegal option -- {a[1:]}\n")
            return 255
        else:
            ids.append(a)
        i += 1
    me = user if user not in (None, "all") else None
    now = time.time()
    with locked_state(d) as st:
        purge(st, now)
        refresh(st)
        jobs = [j for j in sorted(st["jobs"].values(), key=order)
                if (not ids or str(j["id"]) in ids or job_key(j) in ids)
                and (name is None or name_matches(name, j["name"]))
                and (me is None or j["user"] == me)
                and (ids or show_all or j["stat"] not in ("DONE", "EXIT"))]
    if not jobs:
        sys.stderr.write("No matching job found\n")
        return 255
    if not long:
        print("Summary of time in seconds spent in various states:")
        print("JOBID   USER    JOB_NAME  PEND    PSUSP   RUN     USUSP   SSUSP   UNKWN   TOTAL")
        for j in jobs:
            pend = int((j["start_time"] or j["end_time"] or now) - j["submit_time"])
            run = int((j["end_time"] or now) - j["start_time"]) if j["start_time"] else 0
            print(f"{j['id']:<7} {j['user'][:7]:<7} {j['name'][-9:]:<9} {pend:<7} 0       {run:<7} "
                  f"0       0       0       {pend + run}")
        return 0
    out = []
    t = lsf_time
    for k, j in enumerate(jobs):
        if k:
            out.append("-" * 78)
        out.append("")
        out += wrap(f"Job <{job_key(j)}>, Job Name <{j['name']}>, User <{j['user']}>, Project <{j['project']}>, "
                    f"Command <{field_value(j, 'command')}>")
        out += wrap(f"{t(j['submit_time'], True)}: Submitted from host <{j['from_host']}>, to Queue "
                    f"<{j['queue']}>, CWD <{j['cwd']}>"
                    + (f", Output File <{j['out']}>" if j["out"] else "")
                    + (f", Error File <{j['err']}>" if j["err"] else "") + ";")
        if j["start_time"]:
            out += wrap(f"{t(j['start_time'], True)}: Dispatched 1 Task(s) on Host(s) <{j['from_host']}>, "
                        f"Allocated {j['ncpus']} Slot(s) on Host(s) <{j['from_host']}>, Effective RES_REQ "
                        "<select[type == local] order[r15s:pg] >;")
            if j["pid"]:
                out += wrap(f"{t(j['start_time'], True)}: Starting (Pid {j['pid']});")
        if j["stat"] == "DONE":
            out += wrap(f"{t(j['end_time'], True)}: Done successfully. The CPU time used is 0.0 seconds;")
            out += wrap(f"{t(j['end_time'], True)}: Post job process done successfully;")
        elif j["stat"] == "EXIT":
            if j["exit_reason"] == "TERM_OWNER" and not j["start_time"]:
                out += wrap(f"{t(j['end_time'], True)}: Signal <KILL> requested by user or administrator "
                            f"<{j['user']}>;")
                out += wrap(f"{t(j['end_time'], True)}: Exited; The CPU time used is 0.0 seconds;")
            else:
                out += wrap(f"{t(j['end_time'], True)}: Exited with exit code {j['exit_code']}. "
                            "The CPU time used is 0.0 seconds;")
            if j["exit_reason"]:
                out += wrap(f"{t(j['end_time'], True)}: Completed <exit>; {j['exit_reason']}: "
                            f"{TERM_TEXT.get(j['exit_reason'], 'job killed')};")
            else:
                out += wrap(f"{t(j['end_time'], True)}: Completed <exit>;")
        pend = int((j["start_time"] or j["end_time"] or now) - j["submit_time"])
        run = int((j["end_time"] or now) - j["start_time"]) if j["start_time"] else 0
        out += ["", f"Summary of time in seconds spent in various states by  {t(j['end_time'] or now, True)}",
                "  PEND     PSUSP    RUN      USUSP    SSUSP    UNKWN    TOTAL",
                f"  {pend:<8} 0        {run:<8} 0        0        0        {pend + run}", ""]
    print("\n".join(out))
    return 0


# --------------------------------------------------------------------------- entry

COMMANDS = {"bsub": bsub, "bjobs": bjobs, "bkill": bkill, "bhist": bhist}


def main(prog: str, argv: list[str]) -> int:
    if prog == "shepherd":
        return shepherd(argv[0])
    return COMMANDS[prog](argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
