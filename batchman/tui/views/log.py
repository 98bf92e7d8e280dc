"""A task's log file, following new lines as they are written (like tail -f)."""

from __future__ import annotations

import os

from batchman.core.model import Task
from batchman.tui.views.base import TextView, handles

TAIL_BYTES = 64 * 1024
MAX_LINES = 5000


class LogView(TextView):
    title = "log"
    keyctx = ("log", "global")

    def __init__(self, app, task: Task, ext: str = "out") -> None:
        super().__init__(app)
        self.task = task
        self.follow = True
        self.open(ext)

    def open(self, ext: str) -> None:
        self.ext = ext
        self.path = self.app.paths.log(self.task.run, self.task.job, max(1, self.task.attempt), ext, self.task.seg)
        self.offset = 0
        self.partial = b""
        self.ino = None
        self.buf: list[str] = []
        self.read_more()

    def read_more(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            self.buf = []
            self.show(f"(no log yet: {self.path})")
            return
        if self.ino != st.st_ino or st.st_size < self.offset:   # replaced or truncated: start again
            self.ino, self.offset, self.partial, self.buf = st.st_ino, max(0, st.st_size - TAIL_BYTES), b"", []
        if st.st_size == self.offset and self.buf:
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        self.buf.extend(x.decode(errors="replace") for x in lines)
        del self.buf[:-MAX_LINES]
        self.show()

    def show(self, note: str = "") -> None:
        items = list(self.buf) + ([self.partial.decode(errors="replace")] if self.partial else [])
        if note:
            items = [note]
        what = f" {self.ext} log of run {self.task.run} ({self.task.job}, attempt {max(1, self.task.attempt)})"
        keys = f"[{'following' if self.follow else 'paused'}: f]  tab out/err  esc back"
        short = f" {self.ext} log of run {self.task.run} (attempt {max(1, self.task.attempt)})"
        self.head.set(f"{what}: {self.path}   {keys}", f"{what}   {keys}", f"{short}   {keys}", f"{what}: {self.path}")
        self.set_lines(items)
        if self.follow:
            self.to_end()

    def tick(self) -> None:
        if self.follow:
            self.read_more()

    @handles("log.follow")
    def toggle_follow(self) -> None:
        self.follow = not self.follow
        self.show()
        if self.follow:
            self.read_more()

    @handles("log.switch")
    def switch(self) -> None:
        self.open("err" if self.ext == "out" else "out")
