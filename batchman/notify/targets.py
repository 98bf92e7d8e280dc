"""Notification targets: apprise URLs, checked, masked for printing, and sent to.

apprise speaks mail, Mattermost, Slack, Teams, Matrix, generic JSON webhooks and ~100
more; batchman only hands it a URL per target. A URL may carry a password or a token:
only :func:`masked` (apprise's own privacy form) is ever printed or logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _apprise():
    import apprise                      # imported only when a target is configured (~0.15 s)
    logging.getLogger("apprise").setLevel(logging.CRITICAL)   # its messages may quote hosts and tokens
    return apprise


def target_id(url: str) -> str:
    """A stable name for a target in the state file that reveals nothing of its URL."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def masked(url: str) -> str:
    """The URL with its secrets hidden (apprise's privacy form); only the scheme if apprise cannot read it."""
    try:
        plugin = _apprise().Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:          # noqa: BLE001 -- a bad URL must never reach a log unmasked
        plugin = None
    if plugin:
        return plugin.url(privacy=True).split("?", 1)[0]
    m = _SCHEME.match(url)
    return f"{m.group(1)}://..." if m else "(not a URL)"


def check_targets(urls: list[str]) -> list[str]:
    """One problem per target apprise cannot use (naming notify.targets[i], never the secret)."""
    problems = []
    apprise = _apprise()
    for i, url in enumerate(urls):
        if not apprise.Apprise.instantiate(url, suppress_exceptions=True):
            problems.append(f"notify.targets[{i}]: {masked(url)} is not a notification URL apprise knows "
                            "(e.g. mailtos://user:pass@host?to=addr, mmost://host/token, slack://..., json://host/path; "
                            "see https://github.com/caronc/apprise/wiki)")
    return problems


@dataclass
class Sent:
    target: str           # masked URL
    ok: bool
    error: str = ""


def send(url: str, title: str, body: str, timeout: float) -> Sent:
    """Send one message to one target; never raises. ``timeout`` bounds the connection and the reply."""
    apprise = _apprise()
    shown = masked(url)
    sep = "&" if "?" in url else "?"
    a = apprise.Apprise()
    if not a.add(f"{url}{sep}cto={timeout:g}&rto={timeout:g}") and not a.add(url):
        return Sent(shown, False, "not a URL apprise knows")
    try:
        ok = bool(a.notify(body=body, title=title))
    except Exception as e:     # noqa: BLE001 -- a plugin's bug must not kill the sending thread
        return Sent(shown, False, f"{type(e).__name__}")
    return Sent(shown, ok, "" if ok else "refused or unreachable")
