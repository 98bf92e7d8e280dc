"""What the remote staging backends (tape-rest, xrootd) share: path mapping and their request-id file.

Pure path functions, plus the small JSON file (path -> request id) that lets a new daemon process
(oneshot mode) know which files it asked for and under which request.
"""

from __future__ import annotations

import json
import os


def norm(path: str) -> str:
    """Servers may answer with '//' or a trailing '/': compare normalised absolute paths."""
    return "/" + os.path.normpath(path).lstrip("/") if path else path


def remote_path(stub: str, stub_root: str, prefix: str) -> str:
    """The server's path of a stub: ``prefix`` + the path below ``stub_root`` (no prefix: the stub)."""
    if not prefix:
        return norm(stub)
    rel = os.path.relpath(os.path.abspath(stub), os.path.abspath(stub_root))
    return norm(prefix.rstrip("/") + "/" + rel)


def cache_path_below(stub: str, stub_root: str, cache_root: str) -> str:
    """``cache_root`` + the path of ``stub`` below ``stub_root``; the stub itself without a cache_root."""
    if not cache_root or os.path.abspath(cache_root) == os.path.abspath(stub_root):
        return stub
    return os.path.join(cache_root, os.path.relpath(os.path.abspath(stub), os.path.abspath(stub_root)))


def load_ids(path: str | None) -> dict[str, str]:
    """The path -> request id map kept in ``path`` ({} if none or unreadable: only ids are lost)."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return {str(k): str(v) for k, v in json.load(f).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def save_ids(path: str | None, ids: dict[str, str]) -> None:
    """Write the map atomically (temp file + rename)."""
    if not path:
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(ids, f)
    os.replace(tmp, path)
