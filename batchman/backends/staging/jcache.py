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

The argv builders and parsers are in :mod:`batchman.backends.staging.jcache_text`.
"""

from __future__ import annotations

import getpass
import json
import os
import stat as _stat

from batchman.backends.base import BackendUnavailable, Capabilities, Runner, StagingBase, StagingView
from batchman.backends.staging.jcache_text import (  # noqa: F401 - the pure half, also used as jcache.X
    DEFAULT_CANCEL_CMD, DEFAULT_GET_CMD, DEFAULT_PENDING_CMD, DEFAULT_RELEASE_CMD, DEFAULT_STATUS_CMD,
    FAILED_WORDS, PENDING_WORDS, JcacheRequest, cache_path_for, chunk_files, expand_cmd, files_argvs, id_argv,
    parse_pending, parse_stub, stub_path_for, tape_order,
)
from batchman.util.files import atomic_write


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
            atomic_write(self.ids_file, json.dumps({"requests": self._request_of, "rejected": self._rejected}),
                         sync=False)
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
