"""The WLCG Tape REST API (v1), pure: request bodies, response parsers, path mapping.

The API (dCache, CERN CTA/EOS, StoRM; "WLCG Tape REST API" v1, 2022):

* ``GET  {site}/.well-known/wlcg-tape-rest-api`` -> ``{"endpoints": [{"uri": U, "version": "v1"}, ..]}``
* ``POST {U}/stage`` ``{"files": [{"path": p}, ..]}`` -> ``201 {"requestId": id}``
* ``GET  {U}/stage/{id}`` -> ``{"id", "createdAt", "startedAt", "completedAt",
  "files": [{"path", "state", "onDisk", "error", "startedAt", "finishedAt"}, ..]}``
  (file states: SUBMITTED, STARTED, CANCELLED, FAILED, COMPLETED)
* ``POST {U}/stage/{id}/cancel`` and ``POST {U}/release/{id}`` ``{"paths": [p, ..]}``
* ``DELETE {U}/stage/{id}``
* ``POST {U}/archiveinfo`` ``{"paths": [..]}`` -> ``[{"path", "locality" | "error"}, ..]``
  (locality: TAPE, DISK, DISK_AND_TAPE, LOST, NONE, UNAVAILABLE)
* errors: RFC 7807 problem documents ``{"title", "status", "detail"}``.

Nothing here touches the network or a file: :mod:`taperest` does, and the tests feed these
functions literal JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

from batchman.backends.staging.remote import norm

PENDING_STATES = frozenset({"SUBMITTED", "STARTED"})
DONE_STATES = frozenset({"COMPLETED"})
FAILED_STATES = frozenset({"FAILED"})
ON_DISK = frozenset({"DISK", "DISK_AND_TAPE"})
GONE = frozenset({"LOST", "NONE", "UNAVAILABLE"})      # the server's word that staging cannot work
DISCOVERY_PATH = "/.well-known/wlcg-tape-rest-api"


class ApiError(ValueError):
    """A response that does not follow the specification (the message says what is wrong)."""


@dataclass
class FileState:
    """One file of a stage request, as the server reports it."""
    path: str
    state: str = ""            # SUBMITTED | STARTED | CANCELLED | FAILED | COMPLETED ("" if absent)
    on_disk: bool = False
    error: str = ""


@dataclass
class StageRequest:
    request_id: str
    files: dict[str, FileState] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# URLs and bodies

def discovery_url(site: str) -> str:
    """The discovery document of a site given as ``https://host:port`` (any path is dropped)."""
    from urllib.parse import urlsplit
    u = urlsplit(site)
    return f"{u.scheme}://{u.netloc}{DISCOVERY_PATH}"


def check_url(url: str) -> str:
    """'' if ``url`` can be a Tape REST site, else what is wrong (for ``batchman check``)."""
    from urllib.parse import urlsplit
    if not url:
        return "empty; give the site's https://host:port (where /.well-known/wlcg-tape-rest-api answers)"
    try:
        u = urlsplit(url)
        u.port
    except ValueError as e:
        return f"{url!r} is not a URL: {e}"
    if u.scheme not in ("https", "http") or not u.hostname:
        return f"{url!r} is not an https://host[:port] URL"
    return ""


def stage_url(uri: str, request_id: str = "", action: str = "") -> str:
    base = uri.rstrip("/") + "/stage"
    if request_id:
        base += "/" + quote(request_id, safe="")
    return base + ("/" + action if action else "")


def release_url(uri: str, request_id: str) -> str:
    return uri.rstrip("/") + "/release/" + quote(request_id, safe="")


def archiveinfo_url(uri: str) -> str:
    return uri.rstrip("/") + "/archiveinfo"


def stage_body(paths: list[str], disk_lifetime: str = "") -> dict:
    """The body of ``POST /stage``: the files in the order given (one tape pass can follow it)."""
    entry = {"diskLifetime": disk_lifetime} if disk_lifetime else {}
    return {"files": [{"path": p, **entry} for p in paths]}


def paths_body(paths: list[str]) -> dict:
    """The body of cancel, release and archiveinfo."""
    return {"paths": list(paths)}


# --------------------------------------------------------------------------------------------
# parsers

def _json(text: str | bytes, what: str):
    try:
        return json.loads(text or b"null")
    except ValueError as e:
        raise ApiError(f"{what}: the answer is not JSON ({e})") from None


def parse_discovery(text: str | bytes, version: str = "v1") -> str:
    """The endpoint URI of ``version`` from the discovery document."""
    data = _json(text, "discovery")
    eps = data.get("endpoints") if isinstance(data, dict) else None
    if not isinstance(eps, list):
        raise ApiError("discovery: no 'endpoints' list in the answer")
    for ep in eps:
        if isinstance(ep, dict) and ep.get("version") == version and isinstance(ep.get("uri"), str):
            return ep["uri"]
    have = ", ".join(str(ep.get("version")) for ep in eps if isinstance(ep, dict)) or "none"
    raise ApiError(f"discovery: the site offers no {version} endpoint (versions: {have})")


def parse_stage_created(text: str | bytes) -> str:
    data = _json(text, "stage")
    rid = data.get("requestId") if isinstance(data, dict) else None
    if not isinstance(rid, str) or not rid:
        raise ApiError("stage: no 'requestId' in the answer")
    return rid


def parse_stage_status(text: str | bytes, request_id: str) -> StageRequest:
    data = _json(text, "stage status")
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ApiError(f"stage request {request_id}: no 'files' list in the answer")
    req = StageRequest(str(data.get("id") or request_id))
    for f in data["files"]:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            continue
        req.files[norm(f["path"])] = FileState(norm(f["path"]), str(f.get("state") or "").upper(),
                                               bool(f.get("onDisk")), str(f.get("error") or ""))
    return req


def parse_archiveinfo(text: str | bytes) -> dict[str, tuple[str, str]]:
    """path -> (locality, error) ; a file the server could not look up has locality ''."""
    data = _json(text, "archiveinfo")
    if not isinstance(data, list):
        raise ApiError("archiveinfo: the answer is not a list")
    out = {}
    for f in data:
        if isinstance(f, dict) and isinstance(f.get("path"), str):
            out[norm(f["path"])] = (str(f.get("locality") or "").upper(), str(f.get("error") or ""))
    return out


def problem_text(status: int, text: str | bytes) -> str:
    """One line from an error answer: the problem document's title/detail, else the status."""
    try:
        data = json.loads(text or b"{}")
    except ValueError:
        data = None
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("title", "detail") if data.get(k)]
        if parts:
            return f"HTTP {status}: " + ": ".join(parts)
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else (text or "")
    body = " ".join(body.split())[:200]
    return f"HTTP {status}" + (f": {body}" if body else "")


# --------------------------------------------------------------------------------------------
# the views of one file

def classify(fs: FileState | None) -> tuple[str, str]:
    """('present'|'pending'|'failed'|'', reason) for one file of a stage request."""
    if fs is None:
        return "", ""
    if fs.state in DONE_STATES or (fs.on_disk and fs.state not in FAILED_STATES):
        return "present", ""
    if fs.state in PENDING_STATES:
        return "pending", ""
    if fs.state in FAILED_STATES:
        return "failed", fs.error or "staging failed"
    return "", fs.error        # CANCELLED or a state we do not know: neither staged nor staging


def classify_locality(locality: str, error: str) -> tuple[str, str]:
    """('present'|'failed'|'', reason) from archiveinfo, for a file no live request holds."""
    if locality in ON_DISK:
        return "present", ""
    if locality in GONE:
        return "failed", f"the server says the file is {locality}" + (f": {error}" if error else "")
    if not locality and error:
        return "failed", f"archiveinfo: {error}"
    return "", ""                # TAPE: the request was lost; AWOL after the grace period
