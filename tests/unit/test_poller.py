"""Poller on a socket pair: which readiness it reports, after add, modify and remove."""
import socket
import time

import pytest

from forkwsgi.worker.poller import READ, WRITE, Poller


@pytest.fixture
def pair():
    near, far = socket.socketpair()
    for sock in (near, far):
        sock.setblocking(False)
    near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    yield near, far
    near.close()
    far.close()


def ready(poller, timeout=0):
    """{fd: events} the poller reports now (or within ``timeout`` seconds)."""
    return dict(poller.poll(timeout))


def fill(sock):
    """Send until the socket takes no more: the client stopped reading."""
    for _ in range(10000):
        try:
            sock.send(b"x" * 65536)
        except BlockingIOError:
            return
    raise AssertionError("the socket never filled")


def drain(sock):
    while True:
        try:
            if not sock.recv(1 << 20):
                return
        except BlockingIOError:
            return


def test_a_socket_polls_readable_once_bytes_wait_and_not_before(pair):
    near, far = pair
    poller = Poller()
    poller.add(near.fileno())  # READ unless told otherwise
    assert ready(poller) == {}
    far.send(b"GET")
    assert ready(poller, 1.0) == {near.fileno(): READ}
    near.recv(10)
    assert ready(poller) == {}


def test_a_socket_polls_writable_only_while_its_send_buffer_has_room(pair):
    near, far = pair
    poller = Poller()
    poller.add(near.fileno(), WRITE)
    assert ready(poller) == {near.fileno(): WRITE}
    fill(near)
    assert ready(poller) == {}
    drain(far)
    assert ready(poller, 1.0) == {near.fileno(): WRITE}


def test_modify_changes_which_readiness_is_reported(pair):
    near, far = pair
    far.send(b"x")  # near is readable, and writable too
    poller = Poller()
    poller.add(near.fileno(), READ)
    assert ready(poller, 1.0) == {near.fileno(): READ}
    poller.modify(near.fileno(), WRITE)
    assert ready(poller) == {near.fileno(): WRITE}
    poller.modify(near.fileno(), READ | WRITE)
    assert ready(poller) == {near.fileno(): READ | WRITE}


def test_several_fds_are_told_apart(pair):
    near, far = pair
    poller = Poller()
    poller.add(near.fileno(), READ)
    poller.add(far.fileno(), READ)
    near.send(b"to far")
    assert ready(poller, 1.0) == {far.fileno(): READ}


def test_a_removed_fd_is_no_longer_reported(pair):
    near, far = pair
    poller = Poller()
    poller.add(near.fileno(), READ | WRITE)
    poller.remove(near.fileno())
    far.send(b"x")
    assert ready(poller) == {}
    poller.add(near.fileno(), READ)  # and it may be added again
    assert ready(poller) == {near.fileno(): READ}


def test_removing_an_fd_twice_or_one_never_added_or_already_closed_is_harmless(pair):
    near, far = pair
    poller = Poller()
    poller.add(near.fileno())
    poller.remove(near.fileno())
    poller.remove(near.fileno())
    poller.remove(far.fileno())
    closed = socket.socket()
    fd = closed.fileno()
    poller.add(fd)
    closed.close()
    poller.remove(fd)
    poller.remove(-1)
    assert ready(poller) == {}


def test_a_peer_that_closes_makes_the_socket_readable_to_find_the_end(pair):
    near, far = pair
    poller = Poller()
    poller.add(near.fileno(), READ)
    far.close()
    events = ready(poller, 1.0)
    assert events.get(near.fileno(), 0) & READ
    assert near.recv(10) == b""


def test_poll_waits_up_to_its_timeout_in_seconds_when_nothing_is_ready(pair):
    near, _ = pair
    poller = Poller()
    poller.add(near.fileno(), READ)
    started = time.monotonic()
    assert poller.poll(0.05) == []
    assert 0.04 <= time.monotonic() - started < 1.0
