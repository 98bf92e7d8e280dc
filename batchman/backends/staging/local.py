"""The local staging backend: a directory plays the tape, another the cache disk.

``request`` marks each file pending (``<cache>/.pending/<name>``) and starts one detached
copier for the whole batch (``local_copier``), which copies file by file (temp name, then
rename, optionally slowed by ``delay`` seconds per file) and removes each mark when done.
If the tape and cache directories are the same, files are used in place: present or
not, nothing is ever copied or deleted.
"""

from __future__ import annotations

import os
import subprocess
import sys

from batchman.backends.base import Capabilities, StagingBase, StagingView


class LocalStaging(StagingBase):
    name = "local"
    capabilities = Capabilities()

    def __init__(self, stub_dir: str, cache_dir: str, delay: float = 0.0):
        self.stub_dir = os.path.abspath(stub_dir)
        self.cache_dir = os.path.abspath(cache_dir)
        self.delay = delay
        self.in_place = self.stub_dir == self.cache_dir
        self.pending_dir = os.path.join(self.cache_dir, ".pending")

    def cache_path(self, stub: str) -> str:
        if self.in_place:
            return stub
        rel = os.path.relpath(os.path.abspath(stub), self.stub_dir)
        return os.path.join(self.cache_dir, rel)

    def _mark(self, stub: str) -> str:
        rel = os.path.relpath(os.path.abspath(stub), self.stub_dir)
        return os.path.join(self.pending_dir, rel.replace(os.sep, "%"))

    def request(self, files: list[str]) -> None:
        if self.in_place or not files:
            return
        os.makedirs(self.pending_dir, exist_ok=True)
        todo = []
        for f in files:
            if os.path.exists(self.cache_path(f)):
                continue
            with open(self._mark(f), "w", encoding="utf-8"):
                pass
            todo.append(f)
        if not todo:
            return
        argv = [sys.executable, "-m", "batchman.backends.staging.local_copier", "--delay", str(self.delay)]
        for f in todo:
            argv += [f, self.cache_path(f), self._mark(f)]
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True).returncode = 0

    def query(self, files: list[str]) -> StagingView:
        v = StagingView()
        for f in files:
            if os.path.exists(self.cache_path(f)):
                v.present.add(f)
            elif not self.in_place and os.path.exists(self._mark(f)):
                v.pending.add(f)
        return v

    def release(self, files: list[str]) -> None:
        if self.in_place:
            return
        for f in files:
            for p in (self.cache_path(f), self._mark(f)):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass

    def cancel(self, files: list[str]) -> None:
        if self.in_place:
            return
        for f in files:
            try:
                os.unlink(self._mark(f))
            except FileNotFoundError:
                pass
