"""The one crash-safe way to replace a file: readers see the old content or the new, never a part.

``atomic_write(path, data)`` writes a temp file with a unique name beside ``path`` (pip's
``adjacent_tmp_file``), fsyncs it, optionally hard-links the old file to a backup, renames
the temp over ``path`` and fsyncs the directory (tolerating EINVAL, as borg's ``sync_dir``
does on network filesystems). An exception removes the temp; a SIGKILL leaves at most a
``<name>.<random>.tmp`` beside the file, never a partial ``path``.

Modes: an existing file keeps its mode; a new one gets ``0o666 & ~umask`` like any file
``open()`` creates (not mkstemp's 0600, which would hide the status page from a web server),
unless ``mode`` is given.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import BinaryIO, Callable, Iterable

__all__ = ["atomic_copy", "atomic_write", "fsync_dir", "link_backup", "put_in_place", "write_temp"]


def _umask() -> int:
    """The process umask; read from /proc on Linux (setting it to read it races with threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _target_mode(path: str, mode: int | None) -> int:
    if mode is not None:
        return mode
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def fsync_dir(path: str) -> None:
    """fsync the directory holding ``path`` so a rename in it survives a power cut."""
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # EINVAL on some network filesystems: nothing more can be done
    finally:
        os.close(fd)


def link_backup(path: str, backup: str) -> None:
    """Hard-link the current ``path`` to ``backup`` atomically (a unique temp link, renamed)."""
    if not os.path.exists(path):
        return
    d = os.path.dirname(backup) or "."
    blink = os.path.join(d, f".{os.path.basename(backup)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    os.link(path, blink)
    try:
        os.replace(blink, backup)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(blink)
        raise


def write_temp(path: str, fill: Callable[[BinaryIO], object], mode: int | None = None, sync: bool = True) -> str:
    """Write a new temp file beside ``path`` with ``fill`` (fsynced); returns its name. The
    first half of a replacement, for a caller that renames it later (``put_in_place``)."""
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    want = _target_mode(path, mode)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), want)
            fill(f)
            f.flush()
            if sync:
                os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def put_in_place(tmp: str, path: str, backup: str | None = None, sync: bool = True) -> None:
    """Rename a temp file of ``write_temp`` over ``path`` (the old one kept as ``backup``);
    the temp is removed if that fails."""
    try:
        if backup:
            link_backup(path, backup)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync:
        fsync_dir(path)


def _replace(path: str, fill: Callable[[BinaryIO], object], backup: str | None, mode: int | None,
             sync: bool) -> None:
    put_in_place(write_temp(path, fill, mode, sync), path, backup, sync)


def atomic_write(path: str, data: bytes | str | Iterable[bytes | str], *, backup: str | None = None,
                 mode: int | None = None, sync: bool = True) -> None:
    """Replace ``path`` by ``data`` crash-safely (see the module docstring).

    ``data``: bytes, text (UTF-8), or pieces of either written one after the other as they
    come (a page streamed from its parts, never joined into one string in memory).
    ``backup``: the file ``path`` held until now is kept under this name (a hard link).
    ``mode``: the new file's permission bits (default: the old file's, else 0o666 & ~umask).
    ``sync=False`` skips the fsyncs, for hints that may be lost in a power cut (never torn).
    """
    if isinstance(data, (str, bytes)):
        data = (data,)
    _replace(path, lambda f: _write_pieces(f, data), backup, mode, sync)


def _write_pieces(f: BinaryIO, pieces: Iterable[bytes | str]) -> None:
    for p in pieces:
        f.write(p.encode("utf-8") if isinstance(p, str) else p)


def atomic_copy(src: str, dst: str, *, mode: int | None = None, sync: bool = True) -> None:
    """Copy ``src`` to ``dst`` the same way: ``dst`` appears whole or not at all."""
    with open(src, "rb") as inp:
        _replace(dst, lambda f: shutil.copyfileobj(inp, f, 1 << 20), None, mode, sync)
