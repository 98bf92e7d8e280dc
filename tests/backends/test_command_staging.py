"""CommandStaging: template rendering/validation and parsers, then small shell scripts as the site."""

from __future__ import annotations

import math
import os
import stat
import time
from pathlib import Path

import pytest

from batchman.backends.base import BackendUnavailable, Rejected, Runner
from batchman.backends.staging.command import (
    CommandStaging, parse_json, parse_lines, render, render_calls, validate_templates,
)

# ------------------------------------------------------------------------------------------------
# pure functions


def test_render_files_token_expands_to_argv_elements():
    files = ["/d/a b.dat", "/d/c.dat"]
    assert render("stage -q {files}", files=files) == ["stage", "-q", "/d/a b.dat", "/d/c.dat"]


def test_render_embedded_placeholders_are_shell_quoted():
    files = ["/d/a b.dat", "/d/it's.dat"]
    argv = render("sh -c 'stage {files} >> {cache_dir}/log'", files=files, cache_dir="/c")
    assert argv[:2] == ["sh", "-c"]
    assert argv[2] == "stage '/d/a b.dat' '/d/it'\"'\"'s.dat' >> /c/log"
    assert render("stat --path={file}", file="/d/x.dat") == ["stat", "--path=/d/x.dat"]
    assert render("echo {{literal}} {file}", file="/f") == ["echo", "{literal}", "/f"]


def test_render_calls_batches_and_per_file():
    files = [f"/d/f{i}" for i in range(250)]
    calls = render_calls("req {files}", files, max_files=100)
    assert [len(c) - 1 for c in calls] == [100, 100, 50]
    assert render_calls("req {file}", files[:3]) == [["req", "/d/f0"], ["req", "/d/f1"], ["req", "/d/f2"]]
    assert render_calls("list-all-pending", files) == [["list-all-pending"]]
    assert render_calls("req {files}", []) == []


def test_validate_templates():
    ok = {"request": "stage {files}", "query": "status {files}", "present": "test -f {file}",
          "release": None, "cancel": ""}
    assert validate_templates(ok) == []
    errs = validate_templates({"request": "stage {filez}", "query": "q {files} {file}"})
    assert any(e.startswith("staging.request:") and "{filez}" in e for e in errs)
    assert any(e.startswith("staging.query:") and "both" in e for e in errs)
    errs = validate_templates({"query": "q"}, parser="xml")
    assert "staging.request: missing (a command template is required)" in errs
    assert any(e.startswith("staging.parser:") and "xml" in e for e in errs)
    errs = validate_templates({"request": "stage 'unbalanced {files}", "query": "q"})
    assert any(e.startswith("staging.request:") and "shell" in e for e in errs)
    errs = validate_templates({"request": "stage", "query": "q", "release": "rel {user} {oops}"})
    assert any(e.startswith("staging.request:") and "cannot name the files" in e for e in errs)
    assert any(e.startswith("staging.release:") and "{oops}" in e for e in errs)
    errs = validate_templates({"request": "stage {files", "query": "q"})
    assert any(e.startswith("staging.request:") and "braces" in e for e in errs)


def test_parse_lines():
    v = parse_lines("# comment\nPENDING /a\npresent /b\nFAILED /c tape unreadable\n/d\n\nFAILED: /e\n")
    assert v.pending == {"/a", "/d"}
    assert v.present == {"/b"}
    assert v.failed == {"/c": "tape unreadable", "/e": "failed"}
    assert parse_lines("/x\n", bare="present").present == {"/x"}


def test_parse_json():
    v = parse_json('{"pending": ["/a"], "present": ["/b"], "failed": {"/c": "bad tape"}}')
    assert (v.pending, v.present, v.failed) == ({"/a"}, {"/b"}, {"/c": "bad tape"})
    assert parse_json('{"failed": ["/c"]}').failed == {"/c": "failed"}
    assert parse_json("").pending == set()
    with pytest.raises(ValueError):
        parse_json("not json")
    with pytest.raises(ValueError):
        parse_json("[1, 2]")


# ------------------------------------------------------------------------------------------------
# against small site scripts

SITE = r"""#!/bin/bash
# A toy staging site: "tape" = $SRC, cache = $CACHE, requests are files in $Q.
# Every invocation is logged to $LOG. Faults via files in $Q: down, hang, lose, fail, and hold
# (requests stay pending while it exists).
# (Shell builtins where they do: a command per file made test_number_of_calls' 300 files ~6,000
# processes; the names are those of `basename` and of `tr '/ ' '__'`.)
echo "${0##*/} $*" >> "$LOG"
[ -e "$Q/hang" ] && exec sleep 60
[ -e "$Q/down" ] && { echo "site: connection refused" >&2; exit 3; }
"""

SCRIPTS = {
    "stage": SITE + r"""
for f in "$@"; do
  [ -e "$f" ] || { echo "no such file: $f" >&2; exit 2; }
  n=${f//[\/ ]/_}; echo "$f" > "$Q/$n"
done
""",
    # completes requests older than $DELAY seconds, then reports one line per asked file
    "stagestat": SITE + r"""
printf -v now '%(%s)T' -1
# age = now - mtime in whole seconds >= DELAY  <=>  mtime before now - DELAY + 1: older than $ref
ref="$Q/.age-$$"; touch -d "@$(( now - ${DELAY:-0} + 1 ))" "$ref"
for r in "$Q"/_*; do
  [ -e "$r" ] || continue
  IFS= read -r f < "$r"
  if [ -e "$Q/lose" ]; then rm -f "$r"; continue; fi
  if [ -e "$Q/fail" ]; then mv "$r" "$r.failed"; continue; fi
  if [ "$r" -ot "$ref" ] && [ ! -e "$Q/hold" ]; then cp "$f" "$CACHE/${f##*/}"; rm -f "$r"; fi
done
rm -f "$ref"
for f in "$@"; do
  n=${f//[\/ ]/_}
  if [ -e "$Q/$n.failed" ]; then echo "FAILED $f tape error"
  elif [ -e "$Q/$n" ]; then echo "PENDING $f"
  elif [ -e "$CACHE/${f##*/}" ]; then echo "PRESENT $f"
  fi
done
""",
    "stagejson": SITE + r"""
printf '{"pending": ['; sep=
for r in "$Q"/_*; do [ -e "$r" ] || continue; IFS= read -r f < "$r"; printf '%s"%s"' "$sep" "$f"; sep=,; done
printf '], "present": [], "failed": {}}\n'
""",
    "isthere": SITE + r"""test -f "$1" """,
    "unstage": SITE + r"""for f in "$@"; do rm -f "$CACHE/${f##*/}"; done""",
    "unrequest": SITE + r"""for f in "$@"; do rm -f "$Q/${f//[\/ ]/_}"; done""",
}


class Site:
    def __init__(self, root: Path):
        self.root = root
        self.bin, self.src, self.cache, self.q = (root / d for d in ("bin", "src", "cache", "q"))
        for d in (self.bin, self.src, self.cache, self.q):
            d.mkdir()
        self.log = root / "calls.log"
        for name, text in SCRIPTS.items():
            p = self.bin / name
            p.write_text(text)
            p.chmod(p.stat().st_mode | stat.S_IXUSR)

    def files(self, n: int) -> list[str]:
        out = []
        for i in range(n):
            p = self.src / f"run{i:04d}.dat"
            p.write_text(f"data {i}\n")
            out.append(str(p))
        return out

    def calls(self, name: str | None = None) -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [line for line in lines if name is None or line.split()[0] == name]

    def fault(self, name: str, on: bool = True) -> None:
        p = self.q / name
        p.touch() if on else p.unlink(missing_ok=True)

    def runner(self, timeout: float = 20.0, **env) -> Runner:
        return Runner(timeout=timeout, env={
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", "LOG": str(self.log),
            "Q": str(self.q), "CACHE": str(self.cache), **env})

    def backend(self, runner: Runner | None = None, **kw) -> CommandStaging:
        args = dict(request_cmd="stage {files}", query_cmd="stagestat {files}",
                    release_cmd="unstage {files}", cancel_cmd="unrequest {files}",
                    cache_dir=str(self.cache), stub_root=str(self.src))
        args.update(kw)
        return CommandStaging(runner or self.runner(), **args)


@pytest.fixture
def site(tmp_path):
    return Site(tmp_path)


def wait_for(cond, timeout=10.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    return cond()


def test_constructor_rejects_bad_templates(site):
    with pytest.raises(ValueError, match=r"staging.request: unknown placeholder \{filez\}"):
        site.backend(request_cmd="stage {filez}")


def test_request_pending_then_present(site):
    files = site.files(3)
    b = site.backend()
    site.fault("hold")  # not a delay: ages count in whole seconds, so any delay can pass at once
    b.request(files)
    assert len(site.calls("stage")) == 1
    v = b.query(files)
    assert v.pending == set(files) and not v.present
    site.fault("hold", on=False)
    v = wait_for(lambda: (lambda v: v if v.present == set(files) else None)(b.query(files)))
    assert v.present == set(files) and not v.pending
    assert b.cache_path(files[0]) == str(site.cache / "run0000.dat")
    b.release(files)
    assert not any(site.cache.iterdir())
    assert site.calls("unstage") == ["unstage " + " ".join(files)]


def test_lost_is_neither(site):
    files = site.files(2)
    b = site.backend(site.runner(DELAY="100"))
    b.request(files)
    site.fault("lose")
    v = b.query(files)
    assert not v.present and not v.pending and not v.failed


def test_failed(site):
    files = site.files(2)
    b = site.backend(site.runner(DELAY="100"))
    b.request(files)
    site.fault("fail")
    v = b.query(files)
    assert v.failed == {f: "tape error" for f in files} and not v.pending


def test_unreachable_and_rejected(site):
    files = site.files(1)
    b = site.backend(reject_codes=[2])
    with pytest.raises(Rejected, match="no such file"):
        b.request([str(site.src / "missing.dat")])
    site.fault("down")
    for call in (b.request, b.query, b.release, b.cancel):
        with pytest.raises(BackendUnavailable, match="connection refused"):
            call(files)
    # without reject_codes a refusal is indistinguishable from an outage
    site.fault("down", False)
    with pytest.raises(BackendUnavailable):
        site.backend().request([str(site.src / "missing.dat")])


def test_hang_times_out(site):
    files = site.files(1)
    site.fault("hang")
    b = site.backend(site.runner(timeout=30), timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match="timed out"):
        b.query(files)
    assert time.monotonic() - t0 < 10


def test_number_of_calls(site):
    files = site.files(300)
    b = site.backend(site.runner(DELAY="1000"), max_files=100)
    b.request(files)
    assert len(site.calls("stage")) == math.ceil(300 / 100)
    v = b.query(files)
    assert v.pending == set(files)
    assert len(site.calls("stagestat")) == 3          # {files} in the query template: batched too
    # a query template without file placeholders runs once whatever the number of files
    j = site.backend(site.runner(DELAY="1000"), query_cmd="stagejson", parser="json")
    v = j.query(files)
    assert v.pending == set(files)
    assert len(site.calls("stagejson")) == 1


def test_per_file_template(site):
    files = site.files(3)
    b = site.backend(request_cmd="stage {file}")
    b.request(files)
    assert len(site.calls("stage")) == 3


def test_present_command_per_file(site):
    files = site.files(2)
    # without cache_dir the files are staged in place; present_cmd tests them one by one
    b = site.backend(query_cmd="stagejson", parser="json", present_cmd="isthere {file}", cache_dir=None)
    v = b.query(files + [str(site.src / "absent.dat")])
    assert v.present == set(files)
    assert len(site.calls("isthere")) == 3


def test_cancel(site):
    files = site.files(2)
    b = site.backend(site.runner(DELAY="1000"))
    b.request(files)
    b.cancel(files[:1])
    assert b.query(files).pending == {files[1]}
    assert len(site.calls("unrequest")) == 1
