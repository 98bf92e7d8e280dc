"""Task states, their groups and the transitions allowed between them.

This module imports nothing from batchman (only the standard library), so every other
module can import it without circular imports. The table here is the state machine's
shape; ``batchman.decide`` chooses which allowed edge to take.
"""

NEW = "new"                # just added by a person; nothing done yet
UNSTAGED = "unstaged"      # segments found; waiting for room under the staging limit
STAGING = "staging"        # segments requested from tape, waiting for them to appear
STAGED = "staged"          # all segments on disk; waiting for room to submit
SUBMITTING = "submitting"  # intent to submit recorded; the job may or may not exist yet
SUBMITTED = "submitted"    # the batch system gave a job id; not yet seen in its queue
QUEUED = "queued"          # seen pending in the batch queue
RUNNING = "running"        # seen running
ABORTING = "aborting"      # a kill was ordered; waiting for the job to be gone
COMPLETED = "completed"    # finished, exit 0, every segment analysed
INCOMPLETE = "incomplete"  # finished, exit 0, fewer segments analysed than staged
FAILED = "failed"          # finished with a non-zero exit, or vanished without one
ABORTED = "aborted"        # killed on request; ``killed_in`` says in which state
ERROR = "error"            # something a person must look at (AWOL file, no segments, ...)
SKIPPED = "skipped"        # marked done by hand with a reason (a run known to be bad)

ALL = (NEW, UNSTAGED, STAGING, STAGED, SUBMITTING, SUBMITTED, QUEUED, RUNNING, ABORTING,
       COMPLETED, INCOMPLETE, FAILED, ABORTED, ERROR, SKIPPED)

# The daemon still has work to do for these.
ACTIVE = frozenset({NEW, UNSTAGED, STAGING, STAGED, SUBMITTING, SUBMITTED, QUEUED, RUNNING, ABORTING})
# Finished one way or another; only a person's request moves them again.
TERMINAL = frozenset({COMPLETED, INCOMPLETE, FAILED, ABORTED, ERROR, SKIPPED})
# A batch job may exist for these.
IN_BATCH = frozenset({SUBMITTING, SUBMITTED, QUEUED, RUNNING, ABORTING})
# Their segments count against the staging limit (requested and not released).
HOLDS_CACHE = frozenset({STAGING, STAGED, SUBMITTING, SUBMITTED, QUEUED, RUNNING})
# Unsuccessful ends: a restart is what a person usually wants.
PROBLEM = frozenset({INCOMPLETE, FAILED, ABORTED, ERROR})

# Before any job exists: a held task does not move on from these.
BEFORE_BATCH = frozenset({NEW, UNSTAGED, STAGING, STAGED})
# Held in these, a task waits for a person only (in STAGING the daemon still follows its staging).
HELD_WAITS = frozenset({NEW, UNSTAGED, STAGED})

# Requests a person (CLI/TUI) can queue on a task; the daemon carries them out.
KILL = "kill"
RESTART = "restart"
PURGE = "purge"
SKIP = "skip"
REQUESTS = (KILL, RESTART, PURGE, SKIP)

# Which states each request applies to: the one place that says so. The CLI and the TUI
# filter by it before queueing, the store by it when merging a queued line, the daemon's
# decision by it when the task has moved on since.
REQUEST_APPLIES: dict[str, frozenset[str]] = {
    KILL: ACTIVE,
    RESTART: frozenset(ALL),
    PURGE: frozenset(ALL),
    SKIP: frozenset(ALL) - {SKIPPED},
}
# What to tell a person who asked for a request where it does not apply.
REQUEST_REFUSAL = {
    KILL: "only active tasks can be killed",
    RESTART: "",
    PURGE: "",
    SKIP: "skipped tasks are skipped already",
}

# Allowed edges, as data. Every change of ``Task.state`` is checked against it.
TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({UNSTAGED, STAGED, ERROR, ABORTED, SUBMITTED, SKIPPED}),
    UNSTAGED: frozenset({STAGING, STAGED, ERROR, ABORTED, NEW, SUBMITTED, SKIPPED}),
    STAGING: frozenset({STAGED, ERROR, ABORTED, NEW, SUBMITTED, SKIPPED}),
    STAGED: frozenset({SUBMITTING, STAGING, ERROR, ABORTED, NEW, SUBMITTED, SKIPPED}),
    SUBMITTING: frozenset({SUBMITTED, QUEUED, RUNNING, COMPLETED, INCOMPLETE, FAILED,
                           ERROR, ABORTING, STAGED}),
    SUBMITTED: frozenset({QUEUED, RUNNING, COMPLETED, INCOMPLETE, FAILED, ERROR, ABORTING}),
    QUEUED: frozenset({RUNNING, COMPLETED, INCOMPLETE, FAILED, ERROR, ABORTING}),
    RUNNING: frozenset({QUEUED, COMPLETED, INCOMPLETE, FAILED, ERROR, ABORTING}),
    ABORTING: frozenset({ABORTED, NEW, SKIPPED}),
    COMPLETED: frozenset({NEW, SUBMITTED, SKIPPED}),
    INCOMPLETE: frozenset({NEW, SUBMITTED, SKIPPED}),
    FAILED: frozenset({NEW, SUBMITTED, SKIPPED}),
    ABORTED: frozenset({NEW, SUBMITTED, SKIPPED}),
    ERROR: frozenset({NEW, SUBMITTED, SKIPPED}),
    SKIPPED: frozenset({NEW, SUBMITTED}),
}
# (-> SUBMITTED from outside the batch states: a person adopts an unknown job of ours.)

# Colours for terminals and the HTML page (one place for both).
COLOURS = {
    NEW: "light gray", UNSTAGED: "light gray", STAGING: "yellow", STAGED: "yellow",
    SUBMITTING: "light cyan", SUBMITTED: "light cyan", QUEUED: "light cyan", RUNNING: "light blue",
    ABORTING: "light magenta", COMPLETED: "light green", INCOMPLETE: "brown", FAILED: "light red",
    ABORTED: "light magenta", ERROR: "light red", SKIPPED: "dark gray",
}
HTML_COLOURS = {
    NEW: "#e8e8e8", UNSTAGED: "#e8e8e8", STAGING: "#fff3b0", STAGED: "#fff3b0",
    SUBMITTING: "#d0f0ff", SUBMITTED: "#d0f0ff", QUEUED: "#d0f0ff", RUNNING: "#a8d8ff",
    ABORTING: "#f0d0f0", COMPLETED: "#c8f0c8", INCOMPLETE: "#ffd8a0", FAILED: "#ffb0b0",
    ABORTED: "#f0d0f0", ERROR: "#ff9090", SKIPPED: "#d8d8d8",
}


def allowed(old: str, new: str) -> bool:
    return old == new or new in TRANSITIONS.get(old, ())


def request_applies(what: str, state: str) -> bool:
    """Does the request ``what`` (kill, restart, purge, skip) apply to a task in ``state``?
    An unknown request applies nowhere."""
    return state in REQUEST_APPLIES.get(what, ())
