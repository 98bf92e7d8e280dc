"""Real receivers on loopback: a webhook (http.server in a thread) and an SMTP server (aiosmtpd).

The fixtures are in conftest.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    """Captures JSON POSTs. ``mode``: ok | refuse (HTTP 503) | slow (answers after ``delay`` s)."""

    def __init__(self):
        self.posts: list[dict] = []
        self.mode = "ok"
        self.delay = 0.0
        rec = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if rec.mode == "slow":
                    time.sleep(rec.delay)
                if rec.mode == "refuse":
                    self.send_response(503)
                    self.end_headers()
                    return
                rec.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, secret: str = "s3cretTOKEN") -> str:
        return f"json://bm:{secret}@127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        return [p.get("title", "") for p in self.posts]

    def wait(self, n: int, timeout: float = 20.0) -> list[dict]:
        end = time.monotonic() + timeout
        while len(self.posts) < n and time.monotonic() < end:
            time.sleep(0.05)
        return self.posts


class Mailbox:
    def __init__(self):
        from aiosmtpd.controller import Controller
        self.mails: list[str] = []
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                box.mails.append(envelope.content.decode(errors="replace"))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=batchman@lab.example&to=shift@lab.example&mode=insecure"

    def subjects(self) -> list[str]:
        import email
        from email.header import decode_header, make_header
        return [str(make_header(decode_header(email.message_from_string(m)["Subject"] or ""))) for m in self.mails]
