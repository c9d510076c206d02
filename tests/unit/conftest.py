"""Fixtures shared by the in-process tests."""
import socket

import pytest


@pytest.fixture
def listener():
    """A plain TCP listener on 127.0.0.1 with room for 16 queued connections."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()
