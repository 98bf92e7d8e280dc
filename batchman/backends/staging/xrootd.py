"""Staging through an XRootD server with the ``xrdfs`` client (xrootd-client 5.x).

Commands (``xrdfs --help`` / ``xrdfs HOST help`` of xrootd 5.5):

* ``xrdfs URL prepare -s f1 .. fN`` stages (prints the request id), in batches of ``max_files``;
* ``xrdfs URL prepare -e f1 .. fN`` evicts the disk copies (release);
* ``xrdfs URL prepare -a ID f1 .. fN`` aborts a stage request (cancel), then evicts;
* readiness: ONE ``xrdfs URL`` process per query reading ``stat PATH`` lines on stdin (for the
  files we asked for only: a stat of a file still on tape makes the server ask its tape system) (xrdfs's
  interactive mode echoes each command as ``[host] / > stat PATH`` before its answer), so any
  number of files costs one process. ``Flags`` without ``Offline`` = on disk (present);
  ``Offline`` = still on tape (pending if we asked for it); no answer = no such file (failed).

XRootD tells nothing about a request it dropped: a file we asked for that stays Offline stays
pending (the daemon's max_staging_time warns), never AWOL. The file -> request id map (for
cancel) survives the process in ``ids_file``.
"""

from __future__ import annotations

import os
import re

from batchman.backends.base import BackendUnavailable, Capabilities, Runner, StagingBase, StagingView
from batchman.backends.staging import remote

_PROMPT = re.compile(r"^\[[^\]]*\]\s*\S*\s*>\s*stat\s+(.+?)\s*$")
_REQID = re.compile(r"^\S+:\S+$")
_NOT_FOUND = re.compile(r"\[3011\] Unable to locate (\S+?);")


# --------------------------------------------------------------------------------------------
# pure

def prepare_argvs(xrdfs: str, url: str, flags: list[str], paths: list[str], max_files: int = 100) -> list[list[str]]:
    """``xrdfs URL prepare FLAGS paths`` in batches of ``max_files``."""
    return [[xrdfs, url, "prepare", *flags, *paths[i:i + max_files]] for i in range(0, len(paths), max_files)]


def stat_script(paths: list[str]) -> str:
    """stdin for one interactive ``xrdfs URL``: one stat per file, then exit."""
    return "".join(f"stat {p}\n" for p in paths) + "exit\n"


def parse_stat_batch(stdout: str, stderr: str = "") -> dict[str, str]:
    """path -> 'online' | 'offline' | 'missing' | 'unknown' from the session of :func:`stat_script`.

    stdout echoes each command (``[host] / > stat PATH``) then its answer; a file the server does
    not have is an error on stderr, ``[3011] Unable to locate PATH; no such file or directory``.
    Anything else (connection refused, timeouts) leaves the file 'unknown'."""
    out: dict[str, str] = {}
    current = None
    for line in stdout.splitlines():
        m = _PROMPT.match(line.strip())
        if m:
            current = m.group(1)
            out.setdefault(current, "unknown")
        elif current and line.startswith("Flags:"):
            out[current] = "offline" if "Offline" in line else "online"
    for m in _NOT_FOUND.finditer(stderr):
        if out.get(m.group(1), "unknown") == "unknown":
            out[m.group(1)] = "missing"
    return out


def parse_request_id(text: str) -> str:
    """The request id ``prepare -s`` prints (``52667f000001:277289e9.6b0fc226:1``), else ''."""
    for line in text.splitlines():
        if _REQID.match(line.strip()):
            return line.strip()
    return ""


# --------------------------------------------------------------------------------------------

class XrootdStaging(StagingBase):
    """:class:`~batchman.backends.base.StagingBackend` for XRootD prepare/stat."""

    name = "xrootd"
    capabilities = Capabilities(command_log=True)

    def __init__(self, runner: Runner, url: str, stub_root: str, cache_root: str = "",
                 path_prefix: str = "", xrdfs: str = "xrdfs", max_files: int = 100,
                 timeout: float | None = None, ids_file: str | None = None):
        self.runner, self.url, self.xrdfs = runner, url.rstrip("/"), xrdfs
        self.stub_root, self.prefix = os.path.abspath(stub_root), path_prefix
        self.cache_root = os.path.abspath(cache_root) if cache_root else ""
        self.max_files, self.timeout, self.ids_file = max_files, timeout, ids_file
        self._ids = remote.load_ids(ids_file)   # remote path -> request id ('' if none printed)

    def _run(self, argv: list[str], what: str, input: str | None = None):
        cp = self.runner(argv, input=input, timeout=self.timeout)
        if cp.returncode != 0:
            msg = (cp.stderr.strip() or cp.stdout.strip() or f"exit {cp.returncode}").splitlines()
            raise BackendUnavailable(f"xrdfs {what} failed (exit {cp.returncode}): {' | '.join(msg[-2:])}")
        return cp

    def remote(self, stub: str) -> str:
        return remote.remote_path(stub, self.stub_root, self.prefix)

    def cache_path(self, stub: str) -> str:
        return remote.cache_path_below(stub, self.stub_root, self.cache_root)

    # StagingBackend ------------------------------------------------------------------------
    def request(self, files: list[str]) -> None:
        paths = [self.remote(f) for f in dict.fromkeys(files)]
        for argv in prepare_argvs(self.xrdfs, self.url, ["-s"], paths, self.max_files):
            rid = parse_request_id(self._run(argv, "prepare -s").stdout)
            self._ids.update({p: rid for p in argv[4:]})
            remote.save_ids(self.ids_file, self._ids)

    def query(self, files: list[str]) -> StagingView:
        view = StagingView()
        # only files we asked for: one not asked for can be neither pending nor failed, and one
        # already on disk is found by its (cheap) prepare -s next iteration
        files = [f for f in dict.fromkeys(files) if self.remote(f) in self._ids]
        if not files:
            return view
        paths = [self.remote(f) for f in files]
        cp = self.runner([self.xrdfs, self.url], input=stat_script(paths), timeout=self.timeout)
        seen = parse_stat_batch(cp.stdout, cp.stderr)
        if not any(w != "unknown" for w in seen.values()):    # not one answer: the server is not there
            msg = (cp.stderr.strip() or f"exit {cp.returncode}").splitlines()
            raise BackendUnavailable(f"xrdfs stat on {self.url} failed: {' | '.join(msg[-2:])}")
        for f, p in zip(files, paths):
            word = seen.get(p)
            if word == "online":
                view.present.add(f)
            elif word in ("offline", "unknown"):      # unknown: no answer this time, not lost
                view.pending.add(f)
            elif word == "missing":
                view.failed[f] = f"no such file on {self.url}"
        return view

    def release(self, files: list[str]) -> None:
        paths = [self.remote(f) for f in dict.fromkeys(files)]
        for argv in prepare_argvs(self.xrdfs, self.url, ["-e"], paths, self.max_files):
            self._run(argv, "prepare -e")
        for p in paths:
            self._ids.pop(p, None)
        remote.save_ids(self.ids_file, self._ids)

    def cancel(self, files: list[str]) -> None:
        by_id: dict[str, list[str]] = {}
        for f in dict.fromkeys(files):
            p = self.remote(f)
            if self._ids.get(p):
                by_id.setdefault(self._ids[p], []).append(p)
        for rid, paths in by_id.items():
            for argv in prepare_argvs(self.xrdfs, self.url, ["-a", rid], paths, self.max_files):
                self._run(argv, "prepare -a")
        self.release(files)

    def check(self) -> list[str]:
        """For ``batchman check``: the server answers ``xrdfs URL query config version``."""
        try:
            self._run([self.xrdfs, self.url, "query", "config", "version"], "query config version")
        except BackendUnavailable as e:
            return [f"staging.xrootd_url: {e}"]
        return []

