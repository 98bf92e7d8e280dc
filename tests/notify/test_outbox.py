"""Delivery: a slow, refusing or dead target never holds the daemon; nothing is resent after a restart."""

from __future__ import annotations

import os
import time

from batchman.core.alerts import Message
from batchman.notify.outbox import Outbox
from batchman.notify import targets as T


def msg(key="stalled", kind="start", at=None):
    return Message(key, kind, f"title {key}", f"body {key}", at or time.time())


def queue(ob: Outbox, *msgs):
    with ob.lock:
        af = ob.load()
        ob.queue(af, list(msgs), time.time())
        ob.save(af)


def test_a_message_reaches_the_webhook_once_and_is_not_resent(tmp_path, webhook):
    ob = Outbox(str(tmp_path / "s.alerts.json"), [webhook.url()], timeout=5, retry_after=60)
    queue(ob, msg())
    ob.kick()
    assert ob.wait(10)
    assert webhook.titles() == ["title stalled"]
    again = Outbox(ob.path, [webhook.url()], timeout=5, retry_after=60)   # a restarted daemon
    again.kick()
    again.wait(10)
    assert webhook.titles() == ["title stalled"] and again.load().outbox == []


def test_a_refusing_target_is_retried_later_and_delivered_when_back(tmp_path, webhook):
    lines = []
    ob = Outbox(str(tmp_path / "s.alerts.json"), [webhook.url("TOPSECRET")], timeout=5, retry_after=0.5, log=lines.append)
    webhook.mode = "refuse"
    queue(ob, msg())
    assert ob.deliver() == 0
    af = ob.load()
    assert len(af.outbox) == 1 and af.outbox[0].tries == 1
    assert ob.deliver() == 0 and webhook.posts == []               # not due yet: not tried again
    webhook.mode = "ok"
    time.sleep(0.6)
    assert ob.deliver() == 1 and webhook.titles() == ["title stalled"]
    text = "\n".join(lines) + open(ob.path).read()
    assert "TOPSECRET" not in text and "bm:****@127.0.0.1" in text and "did not take" in text


def test_a_slow_target_does_not_hold_the_caller(tmp_path, webhook):
    webhook.mode, webhook.delay = "slow", 3.0
    ob = Outbox(str(tmp_path / "s.alerts.json"), [webhook.url()], timeout=1, retry_after=60)
    queue(ob, msg())
    t0 = time.monotonic()
    ob.kick()
    assert time.monotonic() - t0 < 0.2                              # the daemon goes on at once
    assert ob.wait(5)                                               # and the sender gives up in bounded time
    assert len(ob.load().outbox) == 1                               # kept for later


def test_a_dead_target_does_not_stop_the_others(tmp_path, webhook, smtp):
    dead = "json://127.0.0.1:9/hook"
    ob = Outbox(str(tmp_path / "s.alerts.json"), [dead, webhook.url(), smtp.url()], timeout=3, retry_after=60)
    queue(ob, msg("finished", "event"))
    assert ob.deliver() == 2
    assert webhook.titles() == ["title finished"] and smtp.subjects() == ["title finished"]
    left = ob.load().outbox
    assert len(left) == 1 and left[0].targets == [T.target_id(dead)]    # only the dead one is retried


def test_masked_never_shows_the_secret():
    for url in ["json://u:pa55word@host/p", "mailtos://me:pa55word@smtp.x.org?to=a@b.org",
                "mmost://chat.lab.org/pa55word", "bogus://u:pa55word@x"]:
        assert "pa55word" not in T.masked(url), url


def test_a_corrupt_state_file_starts_afresh_and_says_so(tmp_path):
    p = tmp_path / "s.alerts.json"
    p.write_text("{not json")
    lines = []
    ob = Outbox(str(p), [], timeout=1, retry_after=1, log=lines.append)
    assert ob.load().outbox == [] and "unreadable" in lines[0]
    assert os.path.exists(p)
