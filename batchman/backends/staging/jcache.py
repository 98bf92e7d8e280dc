"""Staging from JLab's tape library with ``jcache`` (the write-through cache client).

Command interface (sources in /work/shared/notes/jcache-and-swif2.md):

CONFIRMED by https://scicomp.jlab.org/docs/node/586 and real scripts:
  ``jcache get f1 .. fN`` (asynchronous; ``-D days`` / ``-e email`` options used in practice),
  ``jcache pendingRequest -u USER`` (the user's unfinished requests; JLab READMEs use it to monitor),
  ``jcache unpin f1 .. fN``, ``jcache status <requestIndex>``, ``jcache cancel <requestIndex>``
  (one request index per call: cancel works on requests, not on files), and the one-to-one mapping
  ``/mss/X`` -> ``/cache/X``. Scripts decide "staged" by testing the /cache copy (optionally against
  the stub's ``size``). Stubs are ``key=value`` lines (size, volser, filePosition, ...).

INFERRED (no public capture of real output; hence every command line is a constructor parameter and
the parsers are tolerant):
  the layout of a request block printed by get/status/pendingRequest::

      get request: 100230264
      user: jdoe
      status: pending
      /mss/a/b.dat -> /cache/a/b.dat pending

  (:func:`parse_pending` keys on ``request:`` lines and on file lines whose LAST word is a status
  word, taking the first path-like token of the line, /mss or /cache); the exit codes (non-zero =
  failure, no finer meaning is relied on).

Number of commands: ``request`` runs ``ceil(n / max_files)`` gets (also split to keep argv under
``max_argv_chars``); ``query`` runs ONE ``pendingRequest`` (plus, only for files that are neither
present nor pending and whose request id this process saw, at most ``max_status_calls`` ``jcache
status <id>`` calls to tell a failed request from a lost one); ``release`` runs ``ceil(n/max_files)``
unpins; ``cancel`` runs one ``pendingRequest`` plus one ``cancel`` per request id concerned, then
re-requests the other files of those requests (a jcache request may hold files of other tasks).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import stat as _stat
from dataclasses import dataclass, field

from batchman.backends.base import BackendUnavailable, Capabilities, Rejected, Runner, StagingBase, StagingView

# Default command lines. Each is an argv prefix; ``{user}`` is replaced in every element.
DEFAULT_GET_CMD = ("jcache", "get")                             # + files            CONFIRMED
DEFAULT_PENDING_CMD = ("jcache", "pendingRequest", "-u", "{user}")  #               CONFIRMED
DEFAULT_RELEASE_CMD = ("jcache", "unpin")                       # + files            CONFIRMED
DEFAULT_CANCEL_CMD = ("jcache", "cancel")                       # + one request id   CONFIRMED
DEFAULT_STATUS_CMD = ("jcache", "status")                       # + one request id   CONFIRMED

# Per-file status words. done/pending/hit/running: CONFIRMED (a real parser of `jcache status`);
# failed: CONFIRMED for the old XML client; the others are INFERRED spellings, accepted just in case.
PENDING_WORDS = frozenset({"pending", "running", "queued", "staging", "waiting", "active", "submitted"})
DONE_WORDS = frozenset({"done", "hit", "finished", "cached", "success", "succeeded"})
FAILED_WORDS = frozenset({"failed", "failure", "error", "fail"})
CANCELLED_WORDS = frozenset({"cancelled", "canceled", "aborted"})
STATUS_WORDS = PENDING_WORDS | DONE_WORDS | FAILED_WORDS | CANCELLED_WORDS

_REQUEST_RE = re.compile(r"request\s*(?:id|index)?\s*[:=#]?\s*(\d+)", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# pure parsers

@dataclass
class JcacheRequest:
    """One request block of ``jcache pendingRequest`` / ``status`` / ``get`` output."""
    request_id: str
    user: str = ""
    status: str = ""
    files: dict[str, str] = field(default_factory=dict)   # path as printed (left of '->') -> word


def _status_word(token: str) -> str:
    return token.strip().strip("()[],;.").lower()


def parse_pending(text: str) -> list[JcacheRequest]:
    """Parse request blocks (pendingRequest, status and get print the same shape).

    Header lines: ``get request: N`` (any line with ``request`` followed by a number starts a new
    block), ``user: U``, ``status: S``. File lines: ``<path> [-> <path>] <word>`` where ``<word>``
    is a status word; the path reported is the first token starting with '/'. Lines that fit
    nothing (banners, "no pending request") are ignored. File lines before any header go to a
    request with id ``""``.
    """
    requests: list[JcacheRequest] = []
    current: JcacheRequest | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        tokens = line.split()
        paths = [t for t in tokens if t.startswith("/")]
        if not paths:
            m = _REQUEST_RE.search(line)
            if m:
                current = JcacheRequest(m.group(1))
                requests.append(current)
                continue
            key, sep, value = line.partition(":")
            if sep and current is not None:
                key = key.strip().lower()
                if key == "user":
                    current.user = value.strip()
                elif key == "status":
                    current.status = value.strip().lower()
            continue
        word = _status_word(tokens[-1]) if len(tokens) > 1 else ""
        if word not in STATUS_WORDS:
            # "path -> path" without a word: listed in an unfinished request, so pending
            word = current.status if current and current.status in STATUS_WORDS else "pending"
        if current is None:
            current = JcacheRequest("")
            requests.append(current)
        current.files[paths[0]] = word
    return requests


def parse_stub(text: str) -> dict:
    """Parse a jasmine stub file (``key=value`` lines, split at the FIRST '=').

    Returns ``{"size": int|None, "volume": str|None, "file_index": int|None, "fields": {...}}``;
    ``volume`` is ``volser``, ``file_index`` is ``filePosition`` (position on the tape, what
    ordering by tape needs; falls back to ``bitfileIndex`` when absent).
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            fields[key.strip()] = value.strip()

    def _int(key: str) -> int | None:
        try:
            return int(fields[key])
        except (KeyError, ValueError):
            return None

    pos = _int("filePosition")
    return {"size": _int("size"), "volume": fields.get("volser") or None,
            "file_index": pos if pos is not None else _int("bitfileIndex"), "fields": fields}


def tape_order(files: list[str], info: dict[str, dict]) -> list[list[str]]:
    """Group files by tape volume and order each group by position on the tape.

    ``info`` maps a file to its parsed stub (``parse_stub``). Returns one list per volume,
    volumes in order of first appearance (so a higher-priority run's tape comes first);
    files whose stub tells no volume form a last group in their original order. One
    request lists them in this order, so one tape mount can serve all of a tape's segments,
    read in order (the 2002 tool's successors grouped their requests by tape for this).
    """
    groups: dict[str | None, list[tuple[int, int, str]]] = {}
    for i, f in enumerate(files):
        st = info.get(f) or {}
        vol = st.get("volume")
        pos = st.get("file_index")
        groups.setdefault(vol, []).append((pos if pos is not None else 1 << 62, i, f))
    known = [v for v in groups if v is not None]
    out = [[f for _, _, f in sorted(groups[v])] for v in known]
    if None in groups:
        out.append([f for _, _, f in groups[None]])
    return out


# --------------------------------------------------------------------------------------------
# pure argv builders

def expand_cmd(cmd: tuple[str, ...] | list[str] | str, **values: str) -> list[str]:
    """An argv prefix with ``{user}`` etc. replaced (a string is split on whitespace)."""
    parts = cmd.split() if isinstance(cmd, str) else list(cmd)
    out = []
    for p in parts:
        for k, v in values.items():
            p = p.replace("{" + k + "}", v)
        out.append(p)
    return out


def chunk_files(files: list[str], max_files: int, max_chars: int, base_chars: int = 0) -> list[list[str]]:
    """Split ``files`` into batches of at most ``max_files`` whose argv stays under ``max_chars``."""
    chunks: list[list[str]] = []
    cur: list[str] = []
    size = base_chars
    for f in files:
        need = len(f) + 1
        if cur and (len(cur) >= max_files or size + need > max_chars):
            chunks.append(cur)
            cur, size = [], base_chars
        cur.append(f)
        size += need
    if cur:
        chunks.append(cur)
    return chunks


def files_argvs(prefix: list[str], files: list[str], max_files: int, max_chars: int) -> list[list[str]]:
    base = sum(len(p) + 1 for p in prefix)
    return [prefix + c for c in chunk_files(files, max_files, max_chars, base)]


def id_argv(prefix: list[str], request_id: str) -> list[str]:
    return prefix + [str(request_id)]


def cache_path_for(stub: str, mss_root: str = "/mss", cache_root: str = "/cache") -> str:
    mss_root = mss_root.rstrip("/")
    if stub == mss_root or stub.startswith(mss_root + "/"):
        return cache_root.rstrip("/") + stub[len(mss_root):]
    return stub


def stub_path_for(path: str, mss_root: str = "/mss", cache_root: str = "/cache") -> str:
    cache_root = cache_root.rstrip("/")
    if path == cache_root or path.startswith(cache_root + "/"):
        return mss_root.rstrip("/") + path[len(cache_root):]
    return path


# --------------------------------------------------------------------------------------------

class JcacheStaging(StagingBase):
    """:class:`~batchman.backends.base.StagingBackend` for JLab's jcache."""

    name = "jcache"
    capabilities = Capabilities(command_log=True)

    def __init__(self, runner: Runner, user: str | None = None, mss_root: str = "/mss",
                 cache_root: str = "/cache",
                 get_cmd=DEFAULT_GET_CMD, pending_cmd=DEFAULT_PENDING_CMD,
                 release_cmd=DEFAULT_RELEASE_CMD, cancel_cmd=DEFAULT_CANCEL_CMD,
                 status_cmd=DEFAULT_STATUS_CMD, max_files: int = 100,
                 max_argv_chars: int = 100_000, max_status_calls: int = 5,
                 check_size: bool = True, check_stubs: bool = True, timeout: float | None = None,
                 ids_file: str | None = None):
        self.runner = runner
        self.user = user or os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()
        self.mss_root = os.path.normpath(mss_root)
        self.cache_root = os.path.normpath(cache_root)
        self.get_cmd, self.pending_cmd = get_cmd, pending_cmd
        self.release_cmd, self.cancel_cmd, self.status_cmd = release_cmd, cancel_cmd, status_cmd
        self.max_files, self.max_argv_chars = max_files, max_argv_chars
        self.max_status_calls, self.check_size, self.timeout = max_status_calls, check_size, timeout
        self.check_stubs = check_stubs       # False where the daemon's host does not mount /mss
        self._stub_cache: dict[str, dict | None] = {}
        self._request_of: dict[str, str] = {}     # stub -> request id seen in get output
        self._rejected: dict[str, str] = {}       # stub -> why get refused it (reported as failed)
        # Both survive the process in ``ids_file`` (a daemon in oneshot mode is a new process
        # every time): without them a failed request that left pendingRequest looks lost (AWOL).
        self.ids_file = ids_file
        self._load_ids()

    # helpers ---------------------------------------------------------------------------------
    def _cmd(self, cmd) -> list[str]:
        return expand_cmd(cmd, user=self.user)

    def _run(self, argv: list[str], what: str):
        cp = self.runner(argv, timeout=self.timeout)
        if cp.returncode != 0:
            msg = (cp.stderr.strip() or cp.stdout.strip() or f"exit {cp.returncode}").splitlines()
            raise BackendUnavailable(f"jcache {what} failed (exit {cp.returncode}): {' | '.join(msg[-3:])}")
        return cp

    def cache_path(self, stub: str) -> str:
        return cache_path_for(stub, self.mss_root, self.cache_root)

    def _stub(self, path: str) -> str:
        return stub_path_for(os.path.normpath(path), self.mss_root, self.cache_root)

    def stub_info(self, stub: str) -> dict | None:
        """parse_stub of the stub file (read once per process), None if unreadable."""
        if stub not in self._stub_cache:
            try:
                with open(stub, errors="replace") as f:
                    self._stub_cache[stub] = parse_stub(f.read(65536))
            except OSError:
                self._stub_cache[stub] = None
        return self._stub_cache[stub]

    def is_present(self, stub: str) -> bool:
        try:
            st = os.stat(self.cache_path(stub))
        except OSError:
            return False
        if not _stat.S_ISREG(st.st_mode):
            return False
        if self.check_size:
            info = self.stub_info(stub)
            if info and info["size"] is not None and st.st_size != info["size"]:
                return False
        return True

    def _pending_requests(self) -> list[JcacheRequest]:
        return parse_pending(self._run(self._cmd(self.pending_cmd), "pendingRequest").stdout)

    def _load_ids(self) -> None:
        if not self.ids_file:
            return
        try:
            with open(self.ids_file, encoding="utf-8") as f:
                data = json.load(f)
            self._request_of = {str(k): str(v) for k, v in data.get("requests", {}).items()}
            self._rejected = {str(k): str(v) for k, v in data.get("rejected", {}).items()}
        except (OSError, ValueError, AttributeError):
            pass

    def _save_ids(self) -> None:
        if not self.ids_file:
            return
        try:
            os.makedirs(os.path.dirname(self.ids_file) or ".", exist_ok=True)
            tmp = f"{self.ids_file}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"requests": self._request_of, "rejected": self._rejected}, f)
            os.replace(tmp, self.ids_file)
        except OSError:
            pass                                # only a hint (failed vs lost): never fatal

    # StagingBackend -----------------------------------------------------------------------------
    def request(self, files: list[str]) -> None:
        """``jcache get`` in batches. Files whose stub is missing are not asked for: the next
        query reports them failed ("no such stub file"), so only their run goes to error."""
        files = list(dict.fromkeys(files))
        missing = [f for f in files if self.check_stubs and not os.path.isfile(f)]
        for f in missing:
            self._rejected[self._stub(f)] = "no such stub file"
        files = [f for f in files if f not in set(missing)]
        try:
            # Tape order: each tape's files together, by position; the calls stay batched.
            files = [f for group in tape_order(files, {f: self._stub_info(f) for f in files}) for f in group]
            for argv in files_argvs(self._cmd(self.get_cmd), files, self.max_files, self.max_argv_chars):
                cp = self._run(argv, "get")
                for req in parse_pending(cp.stdout):
                    if req.request_id:
                        for f in req.files:
                            self._request_of[self._stub(f)] = req.request_id
                        for f in argv[len(self._cmd(self.get_cmd)):]:
                            self._request_of.setdefault(self._stub(f), req.request_id)
                for f in argv[len(self._cmd(self.get_cmd)):]:
                    self._rejected.pop(self._stub(f), None)
        finally:
            self._save_ids()

    def _stub_info(self, f: str) -> dict:
        """The stub's volume and position on tape ({} if it cannot be read)."""
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                return parse_stub(fh.read(4096))
        except OSError:
            return {}

    def query(self, files: list[str]) -> StagingView:
        view = StagingView()
        if not files:
            return view
        states: dict[str, tuple[str, str]] = {}          # stub -> (word, request id)
        for req in self._pending_requests():
            for path, word in req.files.items():
                stub = self._stub(path)
                # a file in several open requests: pending wins over done over failed
                old = states.get(stub)
                if old is None or old[0] not in PENDING_WORDS:
                    states[stub] = (word, req.request_id)
        unknown: list[str] = []
        for f in files:
            word, rid = states.get(self._stub(f), ("", ""))
            if word in PENDING_WORDS:
                view.pending.add(f)
            elif self.is_present(f):
                view.present.add(f)
            elif word in FAILED_WORDS:
                view.failed[f] = f"jcache request {rid}: {word}"
            elif self._stub(f) in self._rejected:
                view.failed[f] = self._rejected[self._stub(f)]
            else:
                unknown.append(f)
        if unknown and self.max_status_calls > 0:
            self._explain(unknown, view)
        return view

    def _explain(self, files: list[str], view: StagingView) -> None:
        """Ask ``jcache status`` about the requests of files that vanished (failed vs lost)."""
        by_id: dict[str, list[str]] = {}
        for f in files:
            rid = self._request_of.get(self._stub(f))
            if rid:
                by_id.setdefault(rid, []).append(f)
        for rid in sorted(by_id, key=int)[: self.max_status_calls]:
            try:
                cp = self.runner(id_argv(self._cmd(self.status_cmd), rid), timeout=self.timeout)
            except BackendUnavailable:
                return
            if cp.returncode != 0:
                continue                       # unknown request: lost
            words = {}
            for req in parse_pending(cp.stdout):
                for path, word in req.files.items():
                    words[self._stub(path)] = (word, req.status)
            for f in by_id[rid]:
                word, rstatus = words.get(self._stub(f), ("", ""))
                if word in FAILED_WORDS:
                    view.failed[f] = f"jcache request {rid}: {word}"
                elif word in PENDING_WORDS:
                    view.pending.add(f)        # listing raced with completion

    def release(self, files: list[str]) -> None:
        files = list(dict.fromkeys(files))
        for argv in files_argvs(self._cmd(self.release_cmd), files, self.max_files, self.max_argv_chars):
            self._run(argv, "unpin")
        for f in files:
            self._request_of.pop(self._stub(f), None)
            self._rejected.pop(self._stub(f), None)
        self._save_ids()

    def cancel(self, files: list[str]) -> None:
        if not files:
            return
        wanted = {self._stub(f) for f in files}
        ids: list[str] = []
        others: list[str] = []
        for req in self._pending_requests():
            stubs = {self._stub(p): w for p, w in req.files.items()}
            if req.request_id and wanted & {s for s, w in stubs.items() if w in PENDING_WORDS}:
                ids.append(req.request_id)
                others += [s for s, w in stubs.items() if s not in wanted and w in PENDING_WORDS]
        for rid in ids:
            self._run(id_argv(self._cmd(self.cancel_cmd), rid), "cancel")
        for s in wanted:
            self._request_of.pop(s, None)
            self._rejected.pop(s, None)
        self._save_ids()
        others = [s for s in dict.fromkeys(others) if s not in wanted]
        if others:                             # files of other tasks shared those requests
            self.request(others)
