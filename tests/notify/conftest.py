import pytest

from receivers import Mailbox, Receiver


@pytest.fixture
def webhook():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def smtp():
    m = Mailbox()
    yield m
    m.controller.stop()
