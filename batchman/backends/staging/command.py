"""Staging through site commands (dCache, XRootD, HPSS, a copy script...) given as templates.

Templates come from ``batchman.yaml``, e.g.::

    staging:
      backend: command
      request: "dccp -P {files}"
      query: "my-stage-status --json {files}"
      parser: json
      present: null
      release: "my-unpin {files}"
      cancel: null
      cache_dir: /pnfs/site/cache
      timeout: 120

Rendering (never through a shell): the template is first split with :func:`shlex.split`, then
placeholders are replaced token by token:

* ``{files}`` -- every file. A token that is exactly ``{files}`` becomes one argv element per
  file; inside a larger token (``sh -c 'stage {files} | tee log'``) it becomes the files
  shell-quoted and space-separated, as a shell would need them. Calls are split into batches of
  ``max_files``.
* ``{file}`` -- one file: the command is run once per file (only when the template uses it;
  prefer ``{files}``). Exact token -> raw path; inside a larger token -> shell-quoted.
* ``{cache_dir}``, ``{user}`` -- the configured cache directory / user name.
* ``{{`` and ``}}`` are literal braces.

Output of the query command, ``parser="lines"``: one entry per line, blank lines and ``#``
comments ignored::

    PENDING /path/a        requested, in the staging queue
    PRESENT /path/b        on disk and usable
    FAILED /path/c reason  staging failed for good (reason optional)
    /path/d                a bare path counts as PENDING

Keywords are case-insensitive. Files the query does not mention are neither (the caller decides
when that means lost). ``parser="json"``: ``{"pending": [...], "present": [...], "failed":
{path: reason}}`` (``failed`` may also be a list; missing keys mean empty).

Paths in the output may be the requested paths or their cache paths (``cache_path``).

Present check (``present`` template, optional), applied to files the query did not call present
or failed: with ``{file}`` the exit status decides (0 present, anything else not); with
``{files}`` the output lists present files, one per line (same keywords; a bare path = present).
Without it, when ``cache_dir`` is set, a file is also present when its cache path exists.

Exit status: a non-zero exit of any command raises ``BackendUnavailable`` (site down), except
exit codes listed in ``reject_codes`` from request, which raise ``Rejected`` with the command's
own message. A timed-out command raises ``BackendUnavailable`` (from the runner).
"""

from __future__ import annotations

import json
import os
import shlex
import string
from typing import Iterable

from batchman.backends.base import BackendUnavailable, Capabilities, Rejected, Runner, StagingBase, StagingView

PLACEHOLDERS = frozenset({"files", "file", "cache_dir", "user"})
TEMPLATE_KEYS = ("request", "query", "present", "release", "cancel")
REQUIRED_KEYS = ("request", "query")
PARSERS = ("lines", "json")


# --------------------------------------------------------------------------------------------
# templates (pure)

def template_fields(template: str) -> list[str]:
    """Placeholder names used in ``template`` (raises ValueError on malformed braces)."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def validate_templates(templates: dict[str, str | None], parser: str = "lines",
                       prefix: str = "staging.", suffix: str = "", parser_key: str = "parser") -> list[str]:
    """Error messages for staging templates, each naming the key (``staging.query``...).

    Keys of ``templates`` are request/query/present/release/cancel; messages name them as
    ``prefix + key + suffix`` (batchman.yaml: ``staging.request_cmd``) and the parser as
    ``prefix + parser_key``.
    """
    errors: list[str] = []
    for key in REQUIRED_KEYS:
        if not templates.get(key):
            errors.append(f"{prefix}{key}{suffix}: missing (a command template is required)")
    for key, tpl in templates.items():
        if tpl is None or tpl == "":
            continue
        name = f"{prefix}{key}{suffix}"
        if key not in TEMPLATE_KEYS:
            errors.append(f"{name}: unknown key (expected one of {', '.join(TEMPLATE_KEYS)})")
            continue
        if not isinstance(tpl, str):
            errors.append(f"{name}: must be a string, got {type(tpl).__name__}")
            continue
        try:
            tokens = shlex.split(tpl)
        except ValueError as e:
            errors.append(f"{name}: cannot be split like a shell command line: {e}")
            continue
        if not tokens:
            errors.append(f"{name}: empty command")
            continue
        fields: list[str] = []
        for tok in tokens:
            try:
                fields += template_fields(tok)
            except ValueError as e:
                errors.append(f"{name}: bad braces in {tok!r}: {e} (write {{{{ and }}}} for literal braces)")
        for f in dict.fromkeys(fields):
            if f not in PLACEHOLDERS:
                errors.append(f"{name}: unknown placeholder {{{f}}} "
                              f"(known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))})")
        if "files" in fields and "file" in fields:
            errors.append(f"{name}: uses both {{files}} and {{file}}; use one")
        if key in ("request", "release", "cancel", "present") and not ({"files", "file"} & set(fields)):
            errors.append(f"{name}: does not use {{files}} or {{file}}, so it cannot name the files")
    if parser not in PARSERS:
        errors.append(f"{prefix}{parser_key}: unknown parser {parser!r} (expected one of {', '.join(PARSERS)})")
    return errors


def _substitute(token: str, values: dict[str, str], files: list[str] | None, file: str | None) -> list[str]:
    if token == "{files}" and files is not None:
        return list(files)
    if token == "{file}" and file is not None:
        return [file]
    out = []
    for literal, fname, spec, conv in string.Formatter().parse(token):
        out.append(literal)
        if fname is None:
            continue
        if fname == "files":
            out.append(" ".join(shlex.quote(f) for f in files or []))
        elif fname == "file":
            out.append(shlex.quote(file or ""))
        else:
            out.append(values.get(fname, ""))
    return ["".join(out)]


def render(template: str, files: list[str] | None = None, file: str | None = None,
           **values: str) -> list[str]:
    """One argv from a template (see module doc); never goes through a shell."""
    argv: list[str] = []
    for tok in shlex.split(template):
        argv += _substitute(tok, values, files, file)
    return argv


def uses(template: str, name: str) -> bool:
    return any(name in template_fields(t) for t in shlex.split(template))


def render_calls(template: str, files: list[str], max_files: int = 100, **values: str) -> list[list[str]]:
    """All argvs needed to pass ``files`` to ``template``: per file for {file}, batched for {files}."""
    if uses(template, "file"):
        return [render(template, file=f, **values) for f in files]
    if uses(template, "files"):
        return [render(template, files=files[i:i + max_files], **values)
                for i in range(0, len(files), max_files)] if files else []
    return [render(template, **values)]


# --------------------------------------------------------------------------------------------
# output parsers (pure)

def parse_lines(text: str, bare: str = "pending") -> StagingView:
    """``PENDING p`` / ``PRESENT p`` / ``FAILED p [reason]`` / bare ``p`` (= ``bare``)."""
    view = StagingView()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        kw = word.upper().rstrip(":")
        if kw in ("PENDING", "PRESENT", "FAILED") and rest.strip():
            rest = rest.strip()
            if kw == "PENDING":
                view.pending.add(rest)
            elif kw == "PRESENT":
                view.present.add(rest)
            else:
                path, _, reason = rest.partition(" ")
                view.failed[path] = reason.strip() or "failed"
        elif bare == "present":
            view.present.add(line)
        else:
            view.pending.add(line)
    return view


def parse_json(text: str) -> StagingView:
    """``{"pending": [...], "present": [...], "failed": {path: reason} | [...]}``."""
    try:
        data = json.loads(text or "{}")
    except ValueError as e:
        raise ValueError(f"query output is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError("query output must be a JSON object with pending/present/failed")
    failed = data.get("failed") or {}
    if isinstance(failed, list):
        failed = {str(p): "failed" for p in failed}
    return StagingView(present={str(p) for p in data.get("present") or []},
                       pending={str(p) for p in data.get("pending") or []},
                       failed={str(k): str(v) for k, v in failed.items()})


def merge_views(views: Iterable[StagingView]) -> StagingView:
    out = StagingView()
    for v in views:
        out.present |= v.present
        out.pending |= v.pending
        out.failed.update(v.failed)
    return out


# --------------------------------------------------------------------------------------------

class CommandStaging(StagingBase):
    """:class:`~batchman.backends.base.StagingBackend` driven by site command templates."""

    name = "command"
    capabilities = Capabilities(command_log=True)

    def __init__(self, runner: Runner, request_cmd: str, query_cmd: str,
                 present_cmd: str | None = None, release_cmd: str | None = None,
                 cancel_cmd: str | None = None, parser: str = "lines",
                 cache_dir: str | None = None, timeout: float | None = None,
                 stub_root: str | None = None, max_files: int = 100,
                 reject_codes: Iterable[int] = (), user: str | None = None):
        templates = {"request": request_cmd, "query": query_cmd, "present": present_cmd,
                     "release": release_cmd, "cancel": cancel_cmd}
        errors = validate_templates(templates, parser)
        if errors:
            raise ValueError("; ".join(errors))
        self.runner = runner
        self.request_cmd, self.query_cmd, self.present_cmd = request_cmd, query_cmd, present_cmd
        self.release_cmd, self.cancel_cmd = release_cmd, cancel_cmd
        self.parser, self.cache_dir, self.timeout = parser, cache_dir, timeout
        self.stub_root = stub_root.rstrip("/") if stub_root else None
        self.max_files, self.reject_codes = max_files, set(reject_codes)
        self.values = {"cache_dir": cache_dir or "", "user": user or os.environ.get("USER", "")}

    def cache_path(self, stub: str) -> str:
        """``cache_dir`` + path below ``stub_root`` (or the base name); the stub itself without cache_dir."""
        if not self.cache_dir:
            return stub
        if self.stub_root and stub.startswith(self.stub_root + "/"):
            return self.cache_dir.rstrip("/") + stub[len(self.stub_root):]
        return os.path.join(self.cache_dir, os.path.basename(stub))

    def _run(self, argv: list[str], what: str, reject: bool = False):
        cp = self.runner(argv, timeout=self.timeout)
        if cp.returncode != 0:
            msg = cp.stderr.strip() or cp.stdout.strip() or f"exit {cp.returncode}"
            if reject and cp.returncode in self.reject_codes:
                raise Rejected(msg)
            raise BackendUnavailable(f"staging {what} command {argv[0]} failed (exit {cp.returncode}): {msg}")
        return cp

    def _calls(self, template: str, files: list[str]) -> list[list[str]]:
        return render_calls(template, files, self.max_files, **self.values)

    def _parse(self, text: str) -> StagingView:
        try:
            return parse_json(text) if self.parser == "json" else parse_lines(text)
        except ValueError as e:
            raise BackendUnavailable(f"staging query output unreadable: {e}") from None

    # StagingBackend -----------------------------------------------------------------------------
    def request(self, files: list[str]) -> None:
        for argv in self._calls(self.request_cmd, list(dict.fromkeys(files))):
            self._run(argv, "request", reject=True)

    def query(self, files: list[str]) -> StagingView:
        view = StagingView()
        if not files:
            return view
        files = list(dict.fromkeys(files))
        raw = merge_views(self._parse(self._run(argv, "query").stdout)
                          for argv in self._calls(self.query_cmd, files))
        alias = {}
        for f in files:
            alias[f] = f
            alias.setdefault(self.cache_path(f), f)
        for p in raw.present:
            if p in alias:
                view.present.add(alias[p])
        for p, reason in raw.failed.items():
            if p in alias and alias[p] not in view.present:
                view.failed[alias[p]] = reason
        for p in raw.pending:
            if p in alias and alias[p] not in view.present and alias[p] not in view.failed:
                view.pending.add(alias[p])
        rest = [f for f in files if f not in view.present and f not in view.failed]
        if rest and self.present_cmd:
            view.present |= self._present(rest)
        elif rest and self.cache_dir:
            view.present |= {f for f in rest if os.path.isfile(self.cache_path(f))}
        view.pending -= view.present
        return view

    def _present(self, files: list[str]) -> set[str]:
        found: set[str] = set()
        if uses(self.present_cmd, "file"):
            for f in files:
                cp = self.runner(render(self.present_cmd, file=f, **self.values), timeout=self.timeout)
                if cp.returncode == 0:
                    found.add(f)
            return found
        alias = {self.cache_path(f): f for f in files} | {f: f for f in files}
        for argv in self._calls(self.present_cmd, files):
            listed = parse_lines(self._run(argv, "present").stdout, bare="present")
            found |= {alias[p] for p in listed.present if p in alias}
        return found

    def release(self, files: list[str]) -> None:
        if self.release_cmd:
            for argv in self._calls(self.release_cmd, list(dict.fromkeys(files))):
                self._run(argv, "release")

    def cancel(self, files: list[str]) -> None:
        if self.cancel_cmd:
            for argv in self._calls(self.cancel_cmd, list(dict.fromkeys(files))):
                self._run(argv, "cancel")
