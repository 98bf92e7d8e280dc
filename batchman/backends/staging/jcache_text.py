"""jcache's text, both ways: its default command lines, argv builders (chunked to stay
under the argv limit), parsers of its request listings and stub files, and the /mss ->
/cache mapping. Pure: the backend (:mod:`batchman.backends.staging.jcache`) runs the commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
