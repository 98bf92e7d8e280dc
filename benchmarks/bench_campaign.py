#!/usr/bin/env python3
"""Issue 18's figures for campaigns of 10,000 / 100,000 / 1,000,000 tasks, on this machine.

    python benchmarks/bench_campaign.py [--sizes 10000,100000,1000000] [--json FILE]

Each size is built once in a temporary directory: the mix of bench_daemon.py (60 % completed,
20 % running, 10 % queued, 5 % staging, 5 % unstaged) with 5 % of it failed (exit 1) and
1 % aborted instead of completed, 1 to 3 segments per task, written through the store. Every
figure then runs in a fresh Python process of its own on a fresh copy of that directory (the
status file hard-linked: every writer replaces it, none writes into it), so each process's
peak memory is its own figure (the child reports its ru_maxrss; the real commands' comes from
os.wait4 on them).

1 % change per iteration (--percent P: another share; with --only-iter, the steady iteration
alone: what it costs with fewer or more changes): the stand-in batch system (bench_daemon's
FakeBatch, answering at once) reports tasks/100 of the running jobs as finished at each query
(one in ten with exit 1,
the others exit 0), the queued ones as still queued, the rest as running; the stand-in staging
system says every file is still pending. Unstaged runs are also asked to stage, as many as the
pacing allows (25 in the first iteration, then staging.request_rate: 2 a second). For
`batchman-daemon oneshot`, which uses the real local backends, the same 1 % is made by writing the exit file of the local batch system (local.exit:
0, or 1 for one in ten) into the job directory of tasks/100 running jobs; the jobs of the other
tasks are unknown to it, which with daemon.submit_grace at 10^9 s changes nothing, and
staging.verify_queue is off so the staging runs do not turn AWOL.

Keeping oneshot from submitting: the process that writes the file before it also pauses the
production (status.paused, as `batchman pause` does: no new staging or submission by any
daemon), so the iteration follows the jobs and decides, but starts nothing; the mix has no new
or staged task anyway. The script checks that no job directory and no staging request appeared.

The figures (targets of issue 18 in brackets; "another process wrote" = a separate Python
process changed one task's priority in a transaction just before):

  iter      a steady daemon iteration (Engine.run_once, the batch system asked, the marker
            files of the jobs it reports ended read; every job's in the first iteration, and
            every 10 minutes), median of --repeat after two that are not counted: wall
            time minus the time spent inside the stand-ins, i.e. all of batchman's own work
            (read, observe, decide, write JSON + journal, render the HTML page)       [< 1 s]
  own       the same iteration's "ms in batchman" as the daemon reports it (seconds_own:
            read, decide, write; not observing) plus the page
  lock      the longest hold of the status file's lock over those iterations       [< 100 ms]
  RSS       peak resident memory of that daemon process                                [< 2 GB]
  recount   one more iteration of that daemon, its page's periodic recount due (a living
            daemon's, every 10 minutes; not in the median above): all its time, as 'iter' [< 1 s]
  between   then that recount, which the daemon's loop does between that round and the next
            (as it folds the change log): every task compared with the page's tally, and the
            tally saved for the next process when it moved (LivePage.tend)
  cold ...  the same three figures for iterations right after another process wrote
  wr lock   the longest lock hold of that other process (a fresh process's transaction, as
            any `batchman` command that writes: it reads the file before taking the lock,
            then, under it, what was written since, its change and the appends) [< 100 ms]
  TUI 1st   from starting a Python process to the first full 120x40 screen of the TUI [< 2 s]
            (a large status file: from its first tasks, the rest read in steps between keys;
            --json also has whole_s, every task shown and the orders made, and step_s, the
            longest step: the longest a key waits meanwhile)
  key       after that, the slowest of the medians of a key press and redraw at 120x40: move
            down (x50), page down (x20), a text filter (/5000 <enter>, x3; the first one too),
            the sort key (each of its three orders), the kill of one running task (the details
            are in --json)                                                         [< 100 ms]
  list      wall time of the real `batchman -C DIR list --state failed --json` > /dev/null
                                                                                      [< 2 s]
  table     the same for the table a person reads, `batchman -C DIR list --state failed`
  all       and for `batchman -C DIR list`: every task (a million lines at 1,000,000 tasks)
  oneshot   wall time of the real `batchman-daemon -C DIR oneshot` after another process
            wrote (local backends; see above), and its peak memory                    [< 3 s]

Before the table, a line on the machine's speed now (a pure-Python loop, fresh memory touched,
the load; with --baseline, the baseline's too): the same machine kind has run 2-3x slower from
one day to the next, so figures of two days compare only with it.

Progress goes to stderr, the table to stdout. At 1,000,000 tasks a process holding the
status takes several GB, and the whole run takes many minutes.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_daemon as BD  # noqa: E402 - also puts the repository on sys.path

import batchman  # noqa: E402
from batchman import params as P  # noqa: E402
from batchman.backends.base import FINISHED, QUEUED, RUNNING, JobInfo  # noqa: E402
from batchman.core import states as S  # noqa: E402
from batchman.experiment import open_experiment, store_for  # noqa: E402

ME = os.path.abspath(__file__)
# The commands timed (the installed `batchman` and `batchman-daemon` scripts) import the batchman
# beside this script, as this process does, whichever copy is installed: a figure is of this
# checkout's code (a run of an older checkout's script measured the installed one's commands).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(HERE), os.environ.get("PYTHONPATH")]))
CONFIG = {"staging.limit": 10 ** 9, "batch.max_jobs": 10 ** 9,     # as bench_daemon: no cap holds a task
          "batch.command": "true",                                    # a job command that exists
          "daemon.submit_grace": 1e9, "staging.verify_queue": False}  # oneshot's local backends: see above

# (key in the results, header, unit scale, format, target in that unit or None)
COLUMNS = [("iter_s", "iter s", 1, ".2f", 1), ("iter_own_s", "own s", 1, ".2f", None),
           ("iter_lock_s", "lock ms", 1e3, ".0f", 100), ("iter_rss_gb", "RSS GB", 1, ".2f", 2),
           ("recount_s", "recount s", 1, ".2f", 1), ("tend_s", "between s", 1, ".2f", None),
           ("cold_s", "cold s", 1, ".2f", 1), ("cold_own_s", "own s", 1, ".2f", None),
           ("cold_lock_s", "lock ms", 1e3, ".0f", 100), ("cold_rss_gb", "RSS GB", 1, ".2f", 2),
           ("writer_lock_s", "wr lock ms", 1e3, ".0f", 100),
           ("tui_first_s", "TUI 1st s", 1, ".2f", 2), ("tui_key_s", "key ms", 1e3, ".0f", 100),
           ("list_s", "list s", 1, ".2f", 2), ("table_s", "table s", 1, ".2f", None),
           ("all_s", "all s", 1, ".2f", None), ("oneshot_s", "oneshot s", 1, ".2f", 3),
           ("oneshot_rss_gb", "RSS GB", 1, ".2f", 2)]


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6     # kB on Linux


# ---- the experiment ----------------------------------------------------------------------
def build(root: str, n: int) -> None:
    """bench_daemon's tasks, some failed and aborted, 1-3 segments, in a new experiment at ``root``."""
    values = P.defaults()
    values.update(CONFIG)
    with open(os.path.join(root, P.CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(P.render_yaml(values))
    status = BD.build(n, time.time())
    for i, t in enumerate(status.tasks):
        del t.segments[i % 3 + 1:]
        pending(t)
        if t.state == S.COMPLETED and i % 100 >= 54:       # 6 of the 60 completed in a hundred
            t.state = S.ABORTED if i % 100 == 59 else S.FAILED
            if t.state == S.ABORTED:
                t.killed_in, t.exit_code = S.RUNNING, None
            else:
                t.exit_code, t.failure, t.failure_class, t.error = 1, "exit-nonzero", "exit-nonzero", "exit 1"
    store = open_experiment(root).store
    with store.transaction("bench") as st:
        st.tasks, st.store_id, st.experiment = status.tasks, status.store_id, status.experiment


def pending(t) -> None:
    """A staging task's files as the stand-in staging system (and the local one, in oneshot) says
    they are: none on disk yet. bench_daemon marks them on disk; a daemon's first look at them
    then writes every staging task once (50,000 at 1,000,000 tasks: ~0.4 s of the first oneshot
    on a fresh copy), which a campaign a daemon has been following never has."""
    if t.state == S.STAGING:
        for seg in t.segments:
            seg.staged = False


def clone(pristine: str, dest: str) -> str:
    """A fresh experiment directory with the pristine one's configuration and status file."""
    os.makedirs(dest)
    shutil.copy(os.path.join(pristine, P.CONFIG_NAME), dest)
    name = P.load(pristine)["daemon.status_file"]
    os.link(os.path.join(pristine, name), os.path.join(dest, name))
    if os.path.exists(os.path.join(pristine, name + ".log")):      # its change log (issue 18): copied,
        shutil.copy(os.path.join(pristine, name + ".log"), dest)    # since writers append to it
    return dest


def other_write(root: str, pause: bool = False, finish: int = 0) -> dict:
    """What another process does before a cold figure: one transaction changing one task's
    priority (``pause``: and pausing the production); ``finish``: that many running jobs of
    the local batch system end (its exit file in their job directory, written after the lock
    is released so that the lock hold is the transaction's own)."""
    e = open_experiment(root)
    with e.store.transaction("bench other") as st:
        st.tasks[0].priority += 1
        if pause:
            st.paused, st.paused_by = True, "bench_campaign"
    # (chosen after the lock is released: a pass over a million tasks inside it, ~0.1 s, is the
    # bench's own doing, not what a command's transaction holds the lock for)
    running = [t.job_name for t in st.tasks if t.state == S.RUNNING][:finish] if finish else []
    for k, name in enumerate(running):
        d = e.paths.attempt_dir(name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "local.exit"), "w", encoding="utf-8") as f:
            f.write("1\n" if k % 10 == 9 else "0\n")
    return {"lock_s": e.store.max_lock_seconds}


def write_elsewhere(root: str, *flags: str) -> float:
    """Run other_write in a process of its own; returns how long it held the lock."""
    out = subprocess.run([sys.executable, ME, "--child", "write", root, "0", *flags],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.splitlines()[-1])["lock_s"]


# ---- figures 1 and 2: daemon iterations with stand-in backends ---------------------------------
class CampaignBatch(BD.FakeBatch):
    """Answers at once: ``per_query`` running jobs finish at each query (one in ten with exit 1),
    the ``queued`` ones stay queued, the others run. ``seconds``: time spent in here."""

    def __init__(self, per_query: int, queued: set[str]):
        super().__init__()
        self.per_query, self.queued, self.seconds = per_query, queued, 0.0

    def query(self, jobs, arrays=None):
        t0 = time.perf_counter()
        out, left = {}, self.per_query
        for name, jid in jobs.items():
            if name in self.queued:
                out[name] = JobInfo(name, jid, QUEUED, native_state="PENDING")
            elif left:
                left -= 1
                code = 1 if left % 10 == 9 else 0
                out[name] = JobInfo(name, jid, FINISHED, native_state="COMPLETED" if code == 0 else "FAILED",
                                    exit_code=code, failure="exit-nonzero" if code else "")
            else:
                out[name] = JobInfo(name, jid, RUNNING, native_state="RUNNING")
        self.seconds += time.perf_counter() - t0
        return out


class CampaignStaging(BD.FakeStaging):
    """bench_daemon's stand-in (every file pending), timed like CampaignBatch."""
    seconds = 0.0

    def query(self, files):
        t0 = time.perf_counter()
        try:
            return super().query(files)
        finally:
            self.seconds += time.perf_counter() - t0


def iterations(root: str, n: int, repeat: int, cold: bool, profile: int, percent: float = 1.0) -> dict:
    """Figure 1 (or 2 with ``cold``): two uncounted iterations, then ``repeat`` measured ones."""
    from batchman.daemon.engine import Engine
    params = P.load(root)
    store = store_for(params)
    queued = {t.job_name for t in store.read().tasks if t.state == S.QUEUED}
    batch, staging = CampaignBatch(max(1, round(n * percent / 100)), queued), CampaignStaging()
    eng = Engine(params, store, batch, staging, mode="bench")
    page = store.render_html
    if hasattr(page, "between_rounds"):
        page.between_rounds = True     # (as the daemon's loop: the page's periodic recount between rounds)
    eng.run_once()                     # a fresh daemon's first iteration: not the steady state
    eng.run_once()                     # nor its first steady one, which makes what it keeps over rounds (StagingWait)
    out = {"all": [], "own": [], "lock": [], "changes": [], "writer_lock": [0.0]}
    for k in range(repeat):
        if cold:
            out["writer_lock"].append(write_elsewhere(root))
        batch.seconds = staging.seconds = store.max_lock_seconds = 0.0
        t0 = time.perf_counter()
        rep = eng.run_once()
        wall = time.perf_counter() - t0
        out["all"].append(wall - batch.seconds - staging.seconds)
        out["own"].append(rep.seconds_own + eng.html_seconds)
        out["lock"].append(store.max_lock_seconds)
        out["changes"].append(len(rep.transitions))
    recount = {}
    if not cold and getattr(page, "rebuild_after", None):
        # One more: the page's periodic recount due (LivePage, every rebuild_after seconds of a
        # living daemon, 600 by default): an iteration in each ten minutes' ones, not in the
        # median; then what the loop does between that round and the next (Engine.tend_page).
        page._built -= page.rebuild_after + 1
        batch.seconds = staging.seconds = store.max_lock_seconds = 0.0
        t0 = time.perf_counter()
        rep = eng.run_once()
        recount = {"recount_s": time.perf_counter() - t0 - batch.seconds - staging.seconds,
                   "recount_own_s": rep.seconds_own + eng.html_seconds, "recount_page_s": eng.html_seconds}
        out["lock"].append(store.max_lock_seconds)
        if hasattr(eng, "tend_page"):
            t0 = time.perf_counter()
            due = eng.tend_page()
            recount["tend_s"] = time.perf_counter() - t0 if due else 0.0
    if profile:
        _profile(eng, profile)
    return {"s": statistics.median(out["all"]), "own_s": statistics.median(out["own"]),
            "lock_s": max(out["lock"]), "changes": statistics.median(out["changes"]),
            "all": out["all"], "writer_lock_s": max(out["writer_lock"]), "rss_gb": peak_gb(), **recount}


def _profile(eng, top: int) -> None:
    """One more steady iteration (not counted: the profiler slows it) under cProfile, its ``top``
    functions by own time and by cumulative time to stderr."""
    import cProfile
    import io
    import pstats
    prof = cProfile.Profile()
    prof.runcall(eng.run_once)
    text = io.StringIO()
    for order in ("tottime", "cumulative"):
        pstats.Stats(prof, stream=text).sort_stats(order).print_stats(top)
    print(text.getvalue(), file=sys.stderr)


# ---- figure 3: the TUI ---------------------------------------------------------------------------
def tui(root: str, started: float, repeat: int) -> dict:
    """First screen (``started``: when the parent started this process), the rest of the status
    read in steps as the main loop takes them (tui/loading.py; the longest step is the longest
    a key waits meanwhile), then key presses: the slowest of their medians."""
    import bench_tui as BT
    from batchman.tui import loading
    from batchman.tui.app import App
    app = App(open_experiment(root), spawn=lambda *a: "")
    app.render(BT.SIZE)
    first = time.time() - started
    longest = 0.0
    while True:
        t0 = time.perf_counter()
        more = loading.step(app)
        longest = max(longest, time.perf_counter() - t0)
        if not more:
            break
    app.render(BT.SIZE)
    whole = time.time() - started
    keys = {"down": BT.timed(app, "<down>", 50), "page_down": BT.timed(app, "<page down>", 20)}
    filters = []
    for _ in range(repeat):
        app.type("/5000", BT.SIZE)
        filters.append(BT.timed(app, "<enter>"))
        app.type("c", BT.SIZE)
    keys["filter"], keys["filter_first"] = statistics.median(filters), filters[0]
    keys["sort"] = max(BT.timed(app, "o") for _ in range(3))            # by state, by time, by run
    running = next(t.run for t in app.index.status.tasks if t.state == S.RUNNING)
    app.type(f"g{running}<enter>", BT.SIZE)
    keys["kill"] = BT.timed(app, "x")
    return {"first_s": first, "whole_s": whole, "step_s": longest, "key_s": max(keys.values()), "keys_s": keys,
            "rss_gb": peak_gb()}


# ---- the parent: processes and their figures ---------------------------------------------------
def run(argv: list[str], stdout=subprocess.PIPE) -> tuple[float, str, float]:
    """Run ``argv`` to its end: (wall seconds, its stdout, its peak RSS in GB from wait4)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=stdout, text=True)
    out = p.stdout.read() if p.stdout else ""
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"{' '.join(argv)} failed with exit code {p.returncode}")
    return wall, out, usage.ru_maxrss / 1e6


def repeats(n: int, a) -> int:
    return a.repeat if n <= 100_000 else a.repeat_big


def child(figure: str, root: str, n: int, a) -> dict:
    rep = a.repeat if figure == "iterate" else repeats(n, a)
    _, out, _ = run([sys.executable, ME, "--child", figure, root, str(n), "--repeat", str(rep),
                     "--profile", str(a.profile if figure == "iterate" else 0), "--started", str(time.time()),
                     "--percent", str(a.percent)])
    return json.loads(out.splitlines()[-1])


def command(name: str) -> str:
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else shutil.which(name) or name


def oneshot(root: str, n: int, repeat: int) -> dict:
    """Figure 5: another process wrote (pausing, and 1 % of the jobs ended), then oneshot."""
    params = P.load(root)
    attempts = os.path.join(params.path("daemon.temp_dir"), "attempts")
    staged = os.path.join(params.path("staging.cache_dir"), ".pending")
    walls, rss, locks, own, writer = [], [], [], [], []
    for k in range(repeat):
        other_before = time.perf_counter()
        writer.append(write_elsewhere(root, "--pause", "--finish", str(max(1, n // 100))))
        dirs = len(os.listdir(attempts))
        say(f"  another process wrote in {time.perf_counter() - other_before:.1f} s; oneshot {k + 1}")
        wall, out, peak = run([command("batchman-daemon"), "-C", root, "oneshot"])
        done = [line for line in out.splitlines() if "iteration done:" in line]
        started = len(os.listdir(attempts)) - dirs
        if started or os.path.exists(staged) or not done:
            raise SystemExit(f"oneshot at {n} tasks started {started} job(s) or staged something:\n{out[-2000:]}")
        walls.append(wall)
        rss.append(peak)
        locks.append(float(done[-1].rsplit("at most ", 1)[1].split()[0]) / 1e3)
        own.append(float(done[-1].rsplit(" ms in batchman", 1)[0].rsplit(" ", 1)[1]) / 1e3)
        say(f"  {done[-1].split('  ', 1)[-1]}")
    return {"s": statistics.median(walls), "rss_gb": max(rss), "lock_s": max(locks), "all": walls,
            "own_s": statistics.median(own),
            "writer_lock_s": max(writer)}


def measure(n: int, a) -> dict:
    work = tempfile.mkdtemp(prefix=f"bench-campaign-{n}-", dir=a.tmp)
    try:
        pristine = os.path.join(work, "pristine")
        os.makedirs(pristine)
        say(f"{n} tasks: building in {work}")
        wall, _, rss = run([sys.executable, ME, "--child", "build", pristine, str(n)])
        size = os.path.getsize(os.path.join(pristine, P.load(pristine)["daemon.status_file"]))
        r: dict = {"tasks": n, "build_s": wall, "build_rss_gb": rss, "json_mb": size / 1e6}
        say(f"{n} tasks: built in {wall:.1f} s ({size / 1e6:.0f} MB); daemon iterations")
        it = child("iterate", clone(pristine, os.path.join(work, "iterate")), n, a)
        r.update(iter_s=it["s"], iter_own_s=it["own_s"], iter_lock_s=it["lock_s"], iter_rss_gb=it["rss_gb"],
                 iter_changes=it["changes"], iter_all_s=it["all"], recount_s=it.get("recount_s"),
                 recount_own_s=it.get("recount_own_s"), recount_page_s=it.get("recount_page_s"),
                 tend_s=it.get("tend_s"))
        say(f"{n} tasks: iteration {it['s']:.2f} s; cold iterations (another process writes before each)")
        if a.only_iter:
            return r
        it = child("cold", clone(pristine, os.path.join(work, "cold")), n, a)
        r.update(cold_s=it["s"], cold_own_s=it["own_s"], cold_lock_s=it["lock_s"], cold_rss_gb=it["rss_gb"],
                 cold_changes=it["changes"], cold_all_s=it["all"], writer_lock_s=it["writer_lock_s"])
        say(f"{n} tasks: cold iteration {it['s']:.2f} s; TUI")
        ui = child("tui", clone(pristine, os.path.join(work, "tui")), n, a)
        r.update(tui_first_s=ui["first_s"], tui_key_s=ui["key_s"], tui_keys_s=ui["keys_s"], tui_rss_gb=ui["rss_gb"],
                 tui_whole_s=ui["whole_s"], tui_step_s=ui["step_s"])
        say(f"{n} tasks: TUI first screen {ui['first_s']:.2f} s; batchman list --state failed --json")
        lists = [run([command("batchman"), "-C", pristine, "list", "--state", "failed", "--json"],
                     stdout=subprocess.DEVNULL) for _ in range(repeats(n, a))]
        r.update(list_s=statistics.median(w for w, _, _ in lists), list_rss_gb=max(m for _, _, m in lists))
        say(f"{n} tasks: list {r['list_s']:.2f} s; batchman list --state failed (the table), batchman list (every task)")
        for key, argv in (("table", ["--state", "failed"]), ("all", [])):
            lists = [run([command("batchman"), "-C", pristine, "list", *argv], stdout=subprocess.DEVNULL)
                     for _ in range(repeats(n, a))]
            r.update({f"{key}_s": statistics.median(w for w, _, _ in lists), f"{key}_rss_gb": max(m for _, _, m in lists)})
        say(f"{n} tasks: list {r['list_s']:.2f} s; batchman-daemon oneshot")
        one = oneshot(clone(pristine, os.path.join(work, "oneshot")), n, repeats(n, a))
        r.update(oneshot_s=one["s"], oneshot_rss_gb=one["rss_gb"], oneshot_lock_s=one["lock_s"], oneshot_all_s=one["all"],
                 oneshot_own_s=one["own_s"],
                 writer_lock_s=max(r["writer_lock_s"], one["writer_lock_s"]))
        return r
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def bytecode() -> None:
    """Let the processes measured use compiled bytecode (``__pycache__``), as an installed batchman
    does (pip compiles it at install time). With PYTHONDONTWRITEBYTECODE set (CI sets it; so may
    a shell), each `batchman list` or oneshot compiled every module it imports again: ~0.25 s
    of a 1 s command."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(os.path.dirname(batchman.__file__), quiet=1)


def machine() -> dict:
    """How fast this machine is right now, to compare figures taken on other days (the same
    machine kind has been seen 2-3x slower from one day to the next): a pure-Python loop of
    10,000,000 additions, and 1 GB of fresh memory touched (page faults, most of the system time
    of a process holding a million tasks), each in a new process; and the load."""
    loop = "import time; t = time.perf_counter(); s = 0\nfor i in range(10_000_000): s += i\nprint(time.perf_counter() - t)"
    touch = "import time; t = time.perf_counter(); b = bytearray(1 << 30); print(time.perf_counter() - t)"
    seconds = [float(subprocess.run([sys.executable, "-c", c], check=True, stdout=subprocess.PIPE, text=True).stdout)
               for c in (loop, touch)]
    return {"loop_s": round(seconds[0], 3), "fresh_gb_s": round(seconds[1], 3), "load": round(os.getloadavg()[0], 2)}


def machine_line(m: dict, before: dict | None = None) -> str:
    text = f"machine: Python loop {m['loop_s']:.2f} s, 1 GB of fresh memory {m['fresh_gb_s']:.2f} s, load {m['load']:.1f}"
    if before:
        text += f" (baseline: {before['loop_s']:.2f} s, {before['fresh_gb_s']:.2f} s, load {before['load']:.1f})"
    return text


def header() -> str:
    head = [f"{'tasks':>9}"] + [f"{h:>10}" for _, h, _, _, _ in COLUMNS]
    goal = [f"{'target':>9}"] + [f"{'< ' + format(t, 'g') if t else '':>10}" for *_, t in COLUMNS]
    return " ".join(head) + "\n" + " ".join(goal)


def row(r: dict, before: dict | None = None) -> str:
    """``before``: the same size's figures of an earlier run; a figure 20 % above it gets a '!'."""
    cells = [f"{r['tasks']:>9}"]
    for key, _, scale, fmt, _ in COLUMNS:
        got, had = r.get(key), (before or {}).get(key)
        worse = got is not None and had is not None and got > 1.2 * had
        cells.append(f"{format(got * scale, fmt) + ('!' if worse else ''):>10}" if got is not None else f"{'-':>10}")
    return " ".join(cells)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="numbers of tasks, comma-separated")
    ap.add_argument("--repeat", type=int, default=3, help="measured iterations, filters, list and oneshot runs per size")
    ap.add_argument("--repeat-big", type=int, default=1, metavar="N",
                    help="above 100,000 tasks: cold iterations, filters, list and oneshot runs (each costs a process "
                         "that parses the whole file; default 1)")
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE too")
    ap.add_argument("--baseline", metavar="FILE", help="an earlier --json FILE: figures 20 %% above its own for the "
                    "same size are marked with '!' (after a change: none should be slower than before; on a "
                    "busy machine lock holds vary by more than that: rerun before believing one)")
    ap.add_argument("--tmp", default=None, help="where the temporary experiments go (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary experiments")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print the N top lines (own time, then cumulative) of a cProfile of one more steady iteration "
                         "to stderr")
    ap.add_argument("--percent", type=float, default=1.0,
                    help="percent of the tasks whose jobs end in each iteration of the iter and cold figures "
                         "(issue 18's figure: 1; the same jobs end in oneshot's at 1 whatever this says)")
    ap.add_argument("--only-iter", action="store_true", help="measure the steady iteration only (with --percent: "
                    "what an iteration costs with fewer or more changes)")
    ap.add_argument("--child", nargs=3, metavar=("FIGURE", "DIR", "TASKS"), help=argparse.SUPPRESS)
    ap.add_argument("--started", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--pause", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--finish", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        figure, root, n = a.child[0], a.child[1], int(a.child[2])
        if figure == "build":
            build(root, n)
        elif figure == "write":
            print(json.dumps(other_write(root, a.pause, a.finish)))
        elif figure == "tui":
            print(json.dumps(tui(root, a.started, a.repeat)))
        else:
            print(json.dumps(iterations(root, n, a.repeat, figure == "cold", a.profile, a.percent)))
        return 0
    # a kill (e.g. a size that takes too long) still removes the temporary experiments
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bytecode()
    results = []
    before, speed = {}, machine()
    if a.baseline:
        with open(a.baseline, encoding="utf-8") as f:
            base = json.load(f)
        before = {r["tasks"]: r for r in base["results"]}
    print(machine_line(speed, base.get("speed") if a.baseline else None), flush=True)
    print(header(), flush=True)        # a row as each size is done: a long run shows what it has
    for n in [int(x) for x in a.sizes.split(",")]:
        results.append(measure(n, a))
        print(row(results[-1], before.get(n)), flush=True)
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump({"machine": os.uname().nodename, "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M"),
                           "speed": speed, "results": results}, f, indent=1)
    print("iter: batchman's whole time in a steady daemon iteration with 1 % of the tasks changing; cold: the same\n"
          "right after another process wrote; own: the part the daemon reports; lock: its longest hold; RSS: peak\n"
          "memory of that process; key: slowest of move / page / filter / sort / kill at 120x40; list: `batchman list\n"
          "--state failed --json`; table: the same as a table; all: `batchman list`; oneshot: `batchman-daemon oneshot`\n"
          "after another process wrote. --help says more."
          + ("\n!: 20 % above the same figure in " + a.baseline if a.baseline else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
