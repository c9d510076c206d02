"""Poller on a socket pair: which readiness it reports, after add, modify and remove; each test runs
with select.epoll.poll (the reference) and with the compiled wait (_poll.c) where it is built."""
import select
import signal
import socket
import time

import pytest

from forkwsgi.worker.poller import READ, WRITE, Poller, compiled_wait

WAITS = [pytest.param(None, id="select.epoll"),
         pytest.param(compiled_wait, id="compiled", marks=pytest.mark.skipif(
             compiled_wait is None, reason="the compiled wait is not built (no C compiler at install, "
                                           "FORKWSGI_NO_EXTENSIONS or FORKWSGI_PURE_PYTHON)"))]


def test_the_event_bits_are_those_of_poll_and_epoll():
    assert (READ, WRITE) == (select.POLLIN, select.POLLOUT) == (select.EPOLLIN, select.EPOLLOUT)


@pytest.fixture(params=WAITS)
def poller(request):
    return Poller(wait=request.param)


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


def test_a_socket_polls_readable_once_bytes_wait_and_not_before(pair, poller):
    near, far = pair
    poller.add(near.fileno())  # READ unless told otherwise
    assert ready(poller) == {}
    far.send(b"GET")
    assert ready(poller, 1.0) == {near.fileno(): READ}
    near.recv(10)
    assert ready(poller) == {}


def test_a_socket_polls_writable_only_while_its_send_buffer_has_room(pair, poller):
    near, far = pair
    poller.add(near.fileno(), WRITE)
    assert ready(poller) == {near.fileno(): WRITE}
    fill(near)
    assert ready(poller) == {}
    drain(far)
    assert ready(poller, 1.0) == {near.fileno(): WRITE}


def test_modify_changes_which_readiness_is_reported(pair, poller):
    near, far = pair
    far.send(b"x")  # near is readable, and writable too
    poller.add(near.fileno(), READ)
    assert ready(poller, 1.0) == {near.fileno(): READ}
    poller.modify(near.fileno(), WRITE)
    assert ready(poller) == {near.fileno(): WRITE}
    poller.modify(near.fileno(), READ | WRITE)
    assert ready(poller) == {near.fileno(): READ | WRITE}


def test_several_fds_are_told_apart(pair, poller):
    near, far = pair
    poller.add(near.fileno(), READ)
    poller.add(far.fileno(), READ)
    near.send(b"to far")
    assert ready(poller, 1.0) == {far.fileno(): READ}


def test_a_removed_fd_is_no_longer_reported(pair, poller):
    near, far = pair
    poller.add(near.fileno(), READ | WRITE)
    poller.remove(near.fileno())
    far.send(b"x")
    assert ready(poller) == {}
    poller.add(near.fileno(), READ)  # and it may be added again
    assert ready(poller) == {near.fileno(): READ}


def test_removing_an_fd_twice_or_one_never_added_or_already_closed_is_harmless(pair, poller):
    near, far = pair
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


def test_a_peer_that_closes_makes_the_socket_readable_to_find_the_end(pair, poller):
    near, far = pair
    poller.add(near.fileno(), READ)
    far.close()
    events = ready(poller, 1.0)
    assert events.get(near.fileno(), 0) & READ
    assert near.recv(10) == b""


def test_poll_waits_up_to_its_timeout_in_seconds_when_nothing_is_ready(pair, poller):
    near, _ = pair
    poller.add(near.fileno(), READ)
    started = time.monotonic()
    assert poller.poll(0.05) == []
    assert 0.04 <= time.monotonic() - started < 1.0


def test_an_fd_ready_ends_a_wait_for_ever_at_once(pair, poller):
    near, far = pair
    poller.add(near.fileno(), READ)
    far.send(b"x")
    assert poller.poll(None) == [(near.fileno(), READ)]
    assert poller.poll(-1) == [(near.fileno(), READ)]


@pytest.fixture
def alarm():
    """Deliver SIGALRM once, ``after`` seconds from now, to ``handler``; restored after the test."""
    previous = signal.getsignal(signal.SIGALRM)

    def arm(after, handler):
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, after)
    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_a_signal_whose_handler_only_records_does_not_cut_the_wait_short(pair, poller, alarm):
    near, _ = pair
    poller.add(near.fileno(), READ)
    seen = []
    alarm(0.02, lambda signum, frame: seen.append(signum))
    started = time.monotonic()
    assert poller.poll(0.2) == []
    assert seen == [signal.SIGALRM]
    assert 0.19 <= time.monotonic() - started < 2.0


def test_a_signal_whose_handler_raises_ends_the_wait_with_its_exception(pair, poller, alarm):
    near, _ = pair
    poller.add(near.fileno(), READ)

    def stop(signum, frame):
        raise KeyboardInterrupt
    alarm(0.02, stop)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        poller.poll(5.0)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("timeout, error", [(float("nan"), ValueError), ("1", TypeError), (1e12, OverflowError)])
def test_a_timeout_that_is_no_time_is_refused_as_select_refuses_it(poller, timeout, error):
    with pytest.raises(error):
        poller.poll(timeout)


def test_every_ready_fd_is_reported_once_with_its_events(poller):
    pairs = [socket.socketpair() for _ in range(50)]
    try:
        for near, far in pairs:
            poller.add(near.fileno(), READ | WRITE if near.fileno() % 2 else READ)
            far.send(b"x")
        expected = {near.fileno(): READ | WRITE if near.fileno() % 2 else READ for near, _ in pairs}
        reported = poller.poll(1.0)
        assert len(reported) == len(expected) and dict(reported) == expected
    finally:
        for near, far in pairs:
            near.close()
            far.close()
