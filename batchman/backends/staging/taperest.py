"""Staging through the WLCG Tape REST API (dCache, CERN CTA/EOS, StoRM) with httpx.

Per daemon iteration: ONE ``POST /stage`` for the new files (in the order asked), ONE
``GET /stage/{id}`` per request that still holds files we asked about, and at most one
``POST /archiveinfo`` for the files no live request accounts for (request lost, file gone):
LOST/NONE/UNAVAILABLE there fails the file with the server's word, TAPE leaves it to the
daemon's AWOL rule. ``release`` is ``POST /release/{id}`` per request (and ``DELETE
/stage/{id}`` once none of its files is held); ``cancel`` is ``POST /stage/{id}/cancel``
then the release. The file -> request id map survives the process in ``ids_file`` (the
daemon's oneshot mode is a new process each time).

Authentication: a bearer token file (read again whenever it changes: token renewers rewrite
it), and/or an X.509 proxy or certificate; TLS is verified against ``ca_dir`` (a hashed
directory such as /etc/grid-security/certificates) or the system's CAs. Every failure to ask
(refused, timed out, 5xx, 401/403) is :class:`BackendUnavailable` and changes nothing; a 400
on ``POST /stage`` is :class:`Rejected` with the server's problem text.
"""

from __future__ import annotations

import os
import ssl
from collections import deque

import httpx

from batchman.backends.base import BackendUnavailable, Rejected, StagingBase, StagingView
from batchman.backends.staging import remote, taperest_api as api


class TokenFile:
    """A bearer token read from a file, read again when the file's mtime or size changes."""

    def __init__(self, path: str):
        self.path = path
        self._stamp: tuple | None = None
        self._token = ""

    def get(self) -> str:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp:
                with open(self.path, encoding="utf-8") as f:
                    self._token = f.read().strip()
                self._stamp = stamp
        except OSError as e:
            raise BackendUnavailable(f"bearer token file {self.path}: {e.strerror or e}") from None
        if not self._token:
            raise BackendUnavailable(f"bearer token file {self.path} is empty")
        return self._token


def ssl_context(ca_dir: str = "", cert: str = "", key: str = "", verify: bool = True) -> ssl.SSLContext:
    """TLS verified by default: ``ca_dir`` (hashed CA directory) or the system's CAs."""
    ctx = ssl.create_default_context(capath=ca_dir or None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key or None)     # a proxy holds certificate and key in one file
    return ctx


class TapeRestStaging(StagingBase):
    """:class:`~batchman.backends.base.StagingBackend` for the WLCG Tape REST API."""

    name = "tape-rest"

    def __init__(self, url: str, stub_root: str, cache_root: str = "", path_prefix: str = "",
                 token_file: str = "", ca_dir: str = "", cert: str = "", key: str = "",
                 verify: bool = True, timeout: float = 60.0, ids_file: str | None = None,
                 disk_lifetime: str = "", transport: httpx.BaseTransport | None = None):
        self.url, self.stub_root, self.prefix = url, os.path.abspath(stub_root), path_prefix
        self.cache_root = os.path.abspath(cache_root) if cache_root else ""
        self.token = TokenFile(token_file) if token_file else None
        self.disk_lifetime, self.timeout, self.ids_file = disk_lifetime, timeout, ids_file
        self._ctx_args = (ca_dir, cert, key, verify)
        self._transport = transport
        self._client: httpx.Client | None = None
        self._uri = ""
        # the last calls, (method, url, status), for tests and people; bounded for a daemon that runs for days
        self.calls: deque[tuple[str, str, int | None]] = deque(maxlen=1000)
        self._ids = remote.load_ids(ids_file)                  # remote path -> request id

    # plumbing ----------------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        if self._client is None:
            try:
                ctx = ssl_context(*self._ctx_args)
            except (OSError, ssl.SSLError) as e:
                raise BackendUnavailable(f"tape REST TLS setup (ca_dir/cert/key): {e}") from None
            self._client = httpx.Client(verify=ctx, timeout=self.timeout, transport=self._transport,
                                        follow_redirects=True)
        return self._client

    def _send(self, method: str, url: str, body=None) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token.get()
        try:
            r = self._http().request(method, url, json=body, headers=headers)
        except httpx.TimeoutException:
            self.calls.append((method, url, None))
            raise BackendUnavailable(f"tape REST {method} {url}: no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as e:
            self.calls.append((method, url, None))
            raise BackendUnavailable(f"tape REST {method} {url}: {e}") from None
        self.calls.append((method, url, r.status_code))
        if r.status_code in (401, 403):
            who = f" (token file {self.token.path})" if self.token else ""
            raise BackendUnavailable(f"tape REST {method} {url}: not authorised{who}: "
                                     f"{api.problem_text(r.status_code, r.content)}")
        if r.status_code >= 500:
            raise BackendUnavailable(f"tape REST {method} {url}: {api.problem_text(r.status_code, r.content)}")
        return r

    def endpoint(self) -> str:
        """The v1 endpoint URI, from discovery (asked once per process)."""
        if not self._uri:
            r = self._send("GET", api.discovery_url(self.url))
            if r.status_code != 200:
                raise BackendUnavailable(f"tape REST discovery: {api.problem_text(r.status_code, r.content)}")
            try:
                self._uri = api.parse_discovery(r.content)
            except api.ApiError as e:
                raise BackendUnavailable(f"tape REST {e}") from None
        return self._uri

    def remote(self, stub: str) -> str:
        return remote.remote_path(stub, self.stub_root, self.prefix)

    def _by_request(self, files: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for f in dict.fromkeys(files):
            rid = self._ids.get(self.remote(f))
            if rid:
                out.setdefault(rid, []).append(f)
        return out

    # StagingBackend ------------------------------------------------------------------------
    def cache_path(self, stub: str) -> str:
        return remote.cache_path_below(stub, self.stub_root, self.cache_root)

    def request(self, files: list[str]) -> None:
        paths = [self.remote(f) for f in dict.fromkeys(files)]
        if not paths:
            return
        r = self._send("POST", api.stage_url(self.endpoint()), api.stage_body(paths, self.disk_lifetime))
        if r.status_code == 400:
            raise Rejected(f"tape REST stage: {api.problem_text(r.status_code, r.content)}")
        if r.status_code not in (200, 201):
            raise BackendUnavailable(f"tape REST stage: {api.problem_text(r.status_code, r.content)}")
        try:
            rid = api.parse_stage_created(r.content)
        except api.ApiError as e:
            raise BackendUnavailable(f"tape REST {e}") from None
        self._ids.update({p: rid for p in paths})
        remote.save_ids(self.ids_file, self._ids)

    def query(self, files: list[str]) -> StagingView:
        view = StagingView()
        verdict: dict[str, tuple[str, str]] = {}
        for rid, fs in self._by_request(files).items():
            r = self._send("GET", api.stage_url(self.endpoint(), rid))
            if r.status_code == 404:
                continue                                  # the server lost the request
            if r.status_code != 200:
                raise BackendUnavailable(f"tape REST stage {rid}: {api.problem_text(r.status_code, r.content)}")
            try:
                req = api.parse_stage_status(r.content, rid)
            except api.ApiError as e:
                raise BackendUnavailable(f"tape REST {e}") from None
            for f in fs:
                verdict[f] = api.classify(req.files.get(self.remote(f)))
        unknown = [f for f in dict.fromkeys(files) if not verdict.get(f, ("", ""))[0] and self.remote(f) in self._ids]
        if unknown:
            verdict.update(self._archiveinfo(unknown))
        for f, (what, why) in verdict.items():
            if what == "present":
                view.present.add(f)
            elif what == "pending":
                view.pending.add(f)
            elif what == "failed":
                view.failed[f] = why
        return view

    def _archiveinfo(self, files: list[str]) -> dict[str, tuple[str, str]]:
        r = self._send("POST", api.archiveinfo_url(self.endpoint()), api.paths_body([self.remote(f) for f in files]))
        if r.status_code != 200:
            raise BackendUnavailable(f"tape REST archiveinfo: {api.problem_text(r.status_code, r.content)}")
        try:
            info = api.parse_archiveinfo(r.content)
        except api.ApiError as e:
            raise BackendUnavailable(f"tape REST {e}") from None
        return {f: api.classify_locality(*info.get(self.remote(f), ("", ""))) for f in files}

    def release(self, files: list[str]) -> None:
        self._post_paths(files, lambda uri, rid: api.release_url(uri, rid))

    def cancel(self, files: list[str]) -> None:
        self._post_paths(files, lambda uri, rid: api.stage_url(uri, rid, "cancel"), then_release=True)

    def _post_paths(self, files: list[str], url_of, then_release: bool = False) -> None:
        """One POST per request id with the paths of ``files``; forget them; drop empty requests."""
        for rid, fs in self._by_request(files).items():
            paths = [self.remote(f) for f in fs]
            urls = [url_of(self.endpoint(), rid)] + ([api.release_url(self.endpoint(), rid)] if then_release else [])
            for url in urls:
                r = self._send("POST", url, api.paths_body(paths))
                if r.status_code not in (200, 201, 202, 204, 404):
                    raise BackendUnavailable(f"tape REST {url}: {api.problem_text(r.status_code, r.content)}")
            for p in paths:
                self._ids.pop(p, None)
            remote.save_ids(self.ids_file, self._ids)
            if rid not in self._ids.values():
                self._send("DELETE", api.stage_url(self.endpoint(), rid))   # any answer will do (404: gone)

    def check(self) -> list[str]:
        """For ``batchman check``: the URL, the credentials this process can read, discovery."""
        err = api.check_url(self.url)
        if err:
            return [f"staging.tape_rest_url: {err}"]
        problems = []
        ca_dir, cert, _key, _verify = self._ctx_args
        if ca_dir and not os.path.isdir(ca_dir):
            problems.append(f"staging.ca_dir: {ca_dir} is not a directory")
        if cert and not os.access(cert, os.R_OK):
            problems.append(f"staging.x509_proxy: {cert} cannot be read")
        if self.token:
            try:
                self.token.get()
            except BackendUnavailable as e:
                problems.append(f"staging.token_file: {e}")
        if not problems:
            try:
                self.endpoint()
            except BackendUnavailable as e:
                problems.append(f"staging.tape_rest_url: discovery does not answer: {e}")
        return problems

