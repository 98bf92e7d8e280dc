"""Change values in batchman.yaml the way a person would: in place.

The file is round-tripped with ruamel.yaml, so the user's comments, the order of keys and
the formatting of every value that does not change stay as they were; only the values that
differ from what the file says now are rewritten (a parameter the file does not mention is
added to its section).
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from batchman import params as P


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096             # never fold a long line the user wrote on one
    return y


def file_values(doc: Any) -> dict[str, Any]:
    """What the parsed document says for each parameter (checked value, or the raw one if bad;
    the default when the file does not mention it)."""
    out = P.defaults()
    if not isinstance(doc, dict):
        return out
    for p in P.SCHEMA:
        body = doc.get(p.section)
        if isinstance(body, dict) and p.name in body:
            v, problem = P._check(p, body[p.name])
            out[p.key] = body[p.name] if problem else v
    return out


def update_text(text: str, changes: dict[str, Any]) -> str | None:
    """``text`` (a batchman.yaml) with the parameters of ``changes`` ({key: value}) set where
    the file says otherwise, everything else kept; None when ``text`` cannot be round-tripped
    (not YAML, not a mapping), for the caller to write the file afresh."""
    y = _yaml()
    try:
        doc = y.load(text)
    except YAMLError:
        return None
    if doc is None or not isinstance(doc, dict):
        return None
    now = file_values(doc)
    for key, value in changes.items():
        p = P.BY_KEY[key]
        if value == now[key]:
            continue
        body = doc.get(p.section)
        if not isinstance(body, dict):
            doc[p.section] = body = {}
        body[p.name] = _plain(value)
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def _plain(v: Any) -> Any:
    """A value as ruamel writes it: lists and mappings in flow style, like `batchman init`."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    if isinstance(v, list):
        seq = CommentedSeq(_plain(x) for x in v)
        seq.fa.set_flow_style()
        return seq
    if isinstance(v, dict):
        m = CommentedMap((k, _plain(x)) for k, x in v.items())
        m.fa.set_flow_style()
        return m
    return v
