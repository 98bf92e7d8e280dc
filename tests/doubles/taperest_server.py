"""A WLCG Tape REST API (v1) server for tests: real HTTPS on 127.0.0.1, a directory as the tape.

Follows the published specification (v1): discovery ``/.well-known/wlcg-tape-rest-api``,
``POST {uri}/stage`` (201 + requestId), ``GET {uri}/stage/{id}``, ``POST {uri}/stage/{id}/cancel``,
``POST {uri}/release/{id}``, ``DELETE {uri}/stage/{id}``, ``POST {uri}/archiveinfo``; errors are
RFC 7807 problem documents. A path ``/a/b`` is the file ``tape/a/b``; staging copies it to
``disk/a/b`` (the site's disk pool), one file after the other, ``delay`` seconds each.

Faults, set on the object while it runs: ``delay`` (slow), ``lose_requests()`` (the server
forgets every request), ``lost`` (paths whose tape copy is LOST), ``tokens`` (accepted bearer
tokens; None: no authentication) with ``expire(token)``, ``hang`` (seconds each answer waits).
``log`` lists (method, path) of every call.

Certificates: :func:`make_tls` makes a CA and a server certificate for 127.0.0.1/localhost with
the ``openssl`` command and a hashed CA directory (what ``X509_CERT_DIR`` / ``capath`` want).

Run by hand: ``python tests/doubles/taperest_server.py TAPE DISK [--port N] [--delay S]``.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

API = "/api/v1/tape"


def make_tls(directory: str) -> dict[str, str]:
    """CA + server certificate (openssl); returns paths: ca_dir, ca, cert, key."""
    d = os.path.abspath(directory)
    cadir = os.path.join(d, "ca")
    os.makedirs(cadir, exist_ok=True)
    ca, cakey = os.path.join(cadir, "batchman-test-ca.pem"), os.path.join(d, "ca.key")
    cert, key, csr = (os.path.join(d, n) for n in ("server.pem", "server.key", "server.csr"))

    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=batchman test CA",
         "-keyout", cakey, "-out", ca, "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr)
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-days", "2",
         "-out", cert, "-extfile", ext)
    h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", ca], check=True,
                       capture_output=True, text=True).stdout.strip()
    link = os.path.join(cadir, f"{h}.0")
    if not os.path.exists(link):
        os.symlink(os.path.basename(ca), link)
    return {"ca_dir": cadir, "ca": ca, "cert": cert, "key": key}


class TapeRestDouble:
    def __init__(self, tape: str, disk: str, tls: dict[str, str], delay: float = 0.0, port: int = 0):
        self.tape, self.disk = os.path.abspath(tape), os.path.abspath(disk)
        self.delay, self.hang = delay, 0.0
        self.lost: set[str] = set()
        self.tokens: set[str] | None = None
        self.requests: dict[str, dict] = {}
        self.pins: dict[str, int] = {}          # path -> pins held (stage adds, release removes)
        self.log: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None   # a client that gave up: not news
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls["cert"], tls["key"])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> "TapeRestDouble":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.hang = 0.0
        self.httpd.shutdown()
        self.httpd.server_close()

    # faults ------------------------------------------------------------------------------
    def lose_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def expire(self, token: str) -> None:
        with self.lock:
            if self.tokens is not None:
                self.tokens.discard(token)

    def calls(self, method: str | None = None, prefix: str = "") -> list[tuple[str, str]]:
        return [c for c in self.log if (method is None or c[0] == method) and c[1].startswith(prefix)]

    # the tape library --------------------------------------------------------------------
    def tape_file(self, path: str) -> str:
        return os.path.join(self.tape, path.lstrip("/"))

    def disk_file(self, path: str) -> str:
        return os.path.join(self.disk, path.lstrip("/"))

    def locality(self, path: str) -> str:
        if path in self.lost:
            return "LOST"
        on_tape = os.path.isfile(self.tape_file(path))
        on_disk = os.path.isfile(self.disk_file(path))
        return {(True, True): "DISK_AND_TAPE", (True, False): "TAPE", (False, True): "DISK"}.get((on_tape, on_disk), "NONE")

    def _advance(self, req: dict) -> None:
        """Files of a request are staged one after the other, ``delay`` seconds each."""
        now = time.time()
        t = req["startedAt"]
        for f in req["files"]:
            if f["state"] in ("COMPLETED", "FAILED", "CANCELLED"):
                t = max(t, f.get("finishedAt", t))
                continue
            f.setdefault("startedAt", int(t))
            t += self.delay
            if now < t:
                f["state"] = "STARTED"
                return
            self._stage_one(f, t)

    def _stage_one(self, f: dict, t: float) -> None:
        path = f["path"]
        f["finishedAt"] = int(t)
        if path in self.lost:
            f.update(state="FAILED", error="the tape copy of this file is LOST")
            return
        if not os.path.isfile(self.tape_file(path)):
            f.update(state="FAILED", error="no such file on tape")
            return
        dst = self.disk_file(path)
        if not os.path.isfile(dst):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(self.tape_file(path), dst + ".part")
            os.replace(dst + ".part", dst)
        f.update(state="COMPLETED", onDisk=True)

    def unpin(self, path: str) -> None:
        self.pins[path] = self.pins.get(path, 0) - 1
        if self.pins[path] <= 0:
            self.pins.pop(path)
            if self.disk != self.tape:
                try:
                    os.unlink(self.disk_file(path))
                except FileNotFoundError:
                    pass


def _norm(p: str) -> str:
    return "/" + os.path.normpath(unquote(p)).lstrip("/")


def _handler(srv: TapeRestDouble):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_double = srv

        def log_message(self, *a):                  # quiet
            pass

        def _reply(self, code: int, data=None, headers: dict | None = None):
            body = b"" if data is None else json.dumps(data).encode()
            self.send_response(code)
            ctype = "application/problem+json" if code >= 400 else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _problem(self, code: int, title: str, detail: str = ""):
            self._reply(code, {"type": "about:blank", "title": title, "status": code, "detail": detail})

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                return json.loads(raw or b"{}")
            except ValueError:
                return None

        def _authorised(self) -> bool:
            if srv.tokens is None:
                return True
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[7:].strip() in srv.tokens:
                return True
            self._problem(401, "Unauthorized", "the bearer token is missing, invalid or expired")
            return False

        def _go(self, method: str):
            path = urlsplit(self.path).path
            srv.log.append((method, path))
            if srv.hang:
                time.sleep(srv.hang)
            if path == "/.well-known/wlcg-tape-rest-api" and method == "GET":
                return self._reply(200, {"sitename": "batchman-double", "description": "test double",
                                         "endpoints": [{"uri": srv.url + API, "version": "v1", "metadata": {}}]})
            if not path.startswith(API + "/"):
                return self._problem(404, "Not Found", path)
            if not self._authorised():
                return
            body = self._body() if method in ("POST", "PUT") else {}
            if body is None:
                return self._problem(400, "Bad Request", "the body is not JSON")
            parts = [unquote(p) for p in path[len(API) + 1:].split("/") if p]   # "stage/" too (gfal2)
            with srv.lock:
                for req in srv.requests.values():     # the library works whether or not anyone asks
                    srv._advance(req)
                return _route(self, method, parts, body)

        def do_GET(self):
            self._go("GET")

        def do_POST(self):
            self._go("POST")

        def do_DELETE(self):
            self._go("DELETE")

    return H


def _paths(h, body, key="paths"):
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        h._problem(400, "Bad Request", f"'{key}' must be a non-empty list")
        return None
    return [_norm(p["path"] if isinstance(p, dict) else p) for p in items]


def _route(h, method: str, parts: list[str], body):
    srv = h.server_double
    if parts == ["stage"] and method == "POST":
        paths = _paths(h, body, "files")
        if paths is None:
            return
        rid = str(uuid.uuid4())
        now = time.time()
        srv.requests[rid] = {"id": rid, "createdAt": int(now), "startedAt": now,
                             "files": [{"path": p, "state": "SUBMITTED", "onDisk": False} for p in paths]}
        for p in paths:
            srv.pins[p] = srv.pins.get(p, 0) + 1
        return h._reply(201, {"requestId": rid}, {"Location": f"{API}/stage/{rid}"})
    if parts == ["archiveinfo"] and method == "POST":
        paths = _paths(h, body)
        if paths is not None:
            return h._reply(200, [{"path": p, "locality": srv.locality(p)} for p in paths])
        return
    if len(parts) >= 2 and parts[0] in ("stage", "release"):
        req = srv.requests.get(parts[1])
        if req is None and parts[0] == "release" and len(parts) == 2 and method == "POST":
            return _release_by_path(h, srv, body)     # gfal-evict without a token sends an id of its own
        if req is None:
            return h._problem(404, "Not Found", f"no stage request {parts[1]}")
        return _on_request(h, srv, method, parts, req, body)
    return h._problem(404, "Not Found", "/".join(parts))


def _release_by_path(h, srv, body):
    """Release by path (servers that ignore the id; gfal2 sends "gfal2-placeholder-id")."""
    paths = _paths(h, body)
    if paths is None:
        return
    for req in srv.requests.values():
        for f in req["files"]:
            if f["path"] in paths and not f.get("released"):
                f["released"] = True
                srv.unpin(f["path"])
    return h._reply(200)


def _on_request(h, srv, method, parts, req, body):
    if parts[0] == "stage" and len(parts) == 2 and method == "GET":
        out = {k: req[k] for k in ("id", "createdAt")}
        out["startedAt"] = int(req["startedAt"])
        if all(f["state"] in ("COMPLETED", "FAILED", "CANCELLED") for f in req["files"]):
            out["completedAt"] = max([f.get("finishedAt", out["startedAt"]) for f in req["files"]])
        out["files"] = [{k: v for k, v in f.items() if k != "released"} for f in req["files"]]
        return h._reply(200, out)
    if parts[0] == "stage" and len(parts) == 2 and method == "DELETE":
        for f in req["files"]:
            if f["state"] in ("SUBMITTED", "STARTED"):
                f["state"] = "CANCELLED"
        del srv.requests[req["id"]]
        return h._reply(200)
    if method != "POST" or not ((parts[0] == "stage" and parts[2:] == ["cancel"]) or
                                (parts[0] == "release" and len(parts) == 2)):
        return h._problem(405 if len(parts) == 2 else 404, "Not allowed", "/".join(parts))
    paths = _paths(h, body)
    if paths is None:
        return
    mine = {f["path"]: f for f in req["files"]}
    strangers = [p for p in paths if p not in mine]
    if strangers:
        return h._problem(400, "Bad Request", f"not in request {req['id']}: {', '.join(strangers[:3])}")
    for p in paths:
        if parts[0] == "stage" and mine[p]["state"] in ("SUBMITTED", "STARTED"):
            mine[p]["state"] = "CANCELLED"
        if parts[0] == "release" and not mine[p].get("released"):
            mine[p]["released"] = True
            srv.unpin(p)
    return h._reply(200)


def main() -> None:                                 # pragma: no cover - by hand only
    import argparse
    import tempfile
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tape")
    ap.add_argument("disk")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.0)
    a = ap.parse_args()
    tls = make_tls(tempfile.mkdtemp(prefix="taperest-tls-"))
    d = TapeRestDouble(a.tape, a.disk, tls, a.delay, a.port)
    print(f"{d.url}  (CA directory: {tls['ca_dir']})", flush=True)
    d.httpd.serve_forever()


if __name__ == "__main__":
    main()
