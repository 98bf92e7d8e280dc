"""Every parameter of batchman.yaml, declared once: section, name, type, default and help text.

The table ``batchman init`` writes its commented file from, the TUI's parameter dialog groups
by section, and ``batchman.params`` validates against (a table: it is long on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    "notify": "Who is told when a production stalls, fails or ends (mail, chat, webhooks)",
    "metrics": "Numbers for the lab's monitoring (Prometheus)",
}

P = Param
SCHEMA: list[Param] = [
    P("daemon", "experiment", "str", "", "Experiment label, shown on the page and given to jobs (empty: the directory's name)."),
    P("daemon", "delay", "float", 60.0, "The longest sleep between daemon iterations, and how often the batch system is asked about its jobs when batch.min_query_interval is 0. The daemon wakes earlier when a job ends (daemon.watch_interval), when a person changes something, and when paced work may go again.", minimum=0.1),
    P("daemon", "temp_dir", "path", ".batchman", "Directory for job scripts, attempt directories (markers, report spool) and the local backends' state."),
    P("daemon", "status_file", "path", "status.json", "The status file (the truth). Put it on a filesystem with working POSIX locks (local disk, NFSv4, Lustre with flock)."),
    P("daemon", "html_file", "path", "status.html", "The status page written with every change of the status file (empty: none). Put it somewhere a web server publishes to watch from anywhere."),
    P("daemon", "log_dir", "path", "logs", "Where each job's stdout/stderr go (<log_dir>/<run>.<job>.<attempt>.out/.err); old logs of a run are kept per attempt."),
    P("daemon", "lock_timeout", "float", 30.0, "Seconds to wait for the status file's lock before giving up and saying who holds it (a command then ends; a daemon waits daemon.delay and starts afresh).", minimum=0.0),
    P("daemon", "stale_after", "float", 0.0, "Seconds without a heartbeat after which a daemon is taken for dead (0: three delays, at least 120 s).", minimum=0.0),
    P("daemon", "watch_interval", "float", 2.0, "Seconds between two looks for finished jobs (one listing of <temp_dir>/done, never a stat per job). A finished job is noticed this fast without asking the batch system; the daemon also wakes this soon after a person changes the status file (batchman add, a kill). 0: only every daemon.delay.", minimum=0.0),
    P("daemon", "submit_grace", "float", 300.0, "Seconds a submitted job may stay invisible in the batch queue (and without marker files) before it is declared vanished.", minimum=0.0),

    P("staging", "backend", "choice", "local", "How segments get from tape to disk: local (copy from a directory or use files in place), jcache (JLab), command (site command templates), tape-rest (WLCG Tape REST API: dCache, CTA, StoRM), xrootd (xrdfs prepare).", choices=("local", "jcache", "command", "tape-rest", "xrootd")),
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
    # tape-rest and xrootd backends (issue 21)
    P("staging", "tape_rest_url", "str", "", "tape-rest backend: the site's https://host:port, where /.well-known/wlcg-tape-rest-api answers."),
    P("staging", "xrootd_url", "str", "", "xrootd backend: the server, root://host[:port]."),
    P("staging", "remote_prefix", "str", "", "tape-rest and xrootd backends: the server's path of stub_dir (a segment is remote_prefix + its path below stub_dir; empty: the stub's own path)."),
    P("staging", "token_file", "path", "", "tape-rest backend: file holding a bearer token, read again whenever it changes (empty: no token)."),
    P("staging", "x509_proxy", "path", "", "tape-rest backend: X.509 proxy or certificate+key file presented to the server (empty: none)."),
    P("staging", "ca_dir", "path", "", "tape-rest backend: directory of hashed CA certificates, e.g. /etc/grid-security/certificates (empty: the system's CAs). TLS is always verified."),
    P("staging", "xrdfs_cmd", "str", "xrdfs", "xrootd backend: the xrdfs client program."),

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
    P("batch", "arrays", "bool", True, "SLURM, Grid Engine and LSF: runs of the same job definition and resources that are ready together go to the batch system as one job array (one sbatch --array for up to MaxArraySize runs, asked once with scontrol show config; one qsub -t for up to max_aj_tasks, asked once with qconf -sconf, 0 there meaning 75000; one bsub -J \"name[1-N]\" for up to 1000, LSF's default MAX_JOB_ARRAY_SIZE), which spares the controller. Each run keeps its own log, state, kill and retry. SLURM needs slurmdbd accounting (with only a job completion log, sacct -c cannot tell array elements apart, so jobs go one by one). Set false where the site or the analysis forbids job arrays (or, on LSF, lowered MAX_JOB_ARRAY_SIZE below 1000); the local backend always submits one job per run."),
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
    # notify / metrics (issue 19): thresholds of batchman.core.alerts; 0 turns a condition off
    P("notify", "targets", "list", [], "Where alerts go: apprise URLs (a YAML list), e.g. mailtos://user:pass@smtp.lab.org?to=me@lab.org, mmost://host/token, slack://T/B/C, msteams://..., matrix://..., json://host/path (a JSON POST). Secrets in them are never printed. `batchman notify --test` sends to each."),
    P("notify", "stall_minutes", "float", 120.0, "Alert when no task changed state for this many minutes while work is pending (0: off).", minimum=0.0),
    P("notify", "failure_rate", "float", 0.5, "Alert when this share (0-1) of the attempts that ended in the last failure_window_minutes failed with one failure class; resolved under half of it (0: off).", minimum=0.0),
    P("notify", "failure_min_attempts", "int", 10, "Fewest ended attempts in the window before failure_rate is judged.", minimum=1),
    P("notify", "failure_window_minutes", "float", 60.0, "The window of failure_rate, in minutes.", minimum=1.0),
    P("notify", "unreachable_minutes", "float", 15.0, "Alert when the batch or the staging system has not answered for this many minutes, and when it is back (0: off).", minimum=0.0),
    P("notify", "finished", "bool", True, "Tell when the production is finished: counts per final state, wall time, the status page."),
    P("notify", "exhausted", "bool", True, "Tell when a run failed and has no automatic retry left."),
    P("notify", "digest_after", "int", 3, "More messages than this at once go out as one digest.", minimum=1),
    P("notify", "timeout", "float", 10.0, "Seconds one target may take; a slow or dead target never holds the daemon (sent from a thread, retried later).", minimum=1.0),
    P("notify", "retry_minutes", "float", 5.0, "Minutes before a message a target refused is sent again (kept in <status file>.alerts.json; dropped after a day).", minimum=0.1),
    P("metrics", "textfile", "path", "", "Prometheus text file written every iteration for node_exporter's textfile collector (a *.prom path in its --collector.textfile.directory; empty: none)."),
]
BY_KEY = {p.key: p for p in SCHEMA}
