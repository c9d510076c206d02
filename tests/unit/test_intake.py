"""Where connections come from (forkwsgi/worker/intake.py), in-process against a real 127.0.0.1 listener."""
import signal
import socket
import time

import pytest

from forkwsgi.shared.backlog import tcp_listen_queue
from forkwsgi.shared.board import LONE, PAGE_SIZE
from forkwsgi.worker import states
from forkwsgi.wsgi.environ import roomy
from tests.unit.test_worker_connections import open_handoff_channel
from tests.unit.worker_harness import Harness, grows_for_a_request, read_response


class Listener:
    """What the master hands a worker: a listening socket (master/sockets.Listener has the same face)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)

    def fileno(self):
        return self.sock.fileno()


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.sock.close()


def queue_clients(listener, count):
    """``count`` clients whose connections wait in the accept queue (each sent a request)."""
    clients = []
    for index in range(count):
        client = socket.create_connection(listener.sock.getsockname(), timeout=5)
        client.sendall(b"GET /c%d HTTP/1.1\r\nHost: x\r\n\r\n" % index)
        clients.append(client)
    deadline = time.monotonic() + 5
    while tcp_listen_queue(listener.sock)[0] < count:
        assert time.monotonic() < deadline, "the kernel did not queue the connections"
        time.sleep(0.005)
    return clients


def test_an_idle_turn_takes_one_connection_so_idle_siblings_share_new_arrivals(listener):
    harness = Harness(listeners=[listener])
    clients = queue_clients(listener, 3)
    try:
        harness.worker.intake.accept(listener)
        harness.turn_ends()
        assert len(harness.worker.connections) == 1
        assert tcp_listen_queue(listener.sock)[0] == 2, "the others stay queued for a sibling"
        assert read_response(clients[0]).endswith(b"hello /c0"), "the request that came with it is served"
    finally:
        harness.close()
        for client in clients:
            client.close()


@pytest.mark.parametrize("lone,taken", [(False, 1), (True, 4)], ids=["with-siblings", "lone"])
def test_an_idle_turn_of_a_lone_worker_takes_what_queued(listener, lone, taken):
    """Many short connections to a lone worker: one accept a wake-up would cost a loop turn and an
    epoll_wait each, and no sibling would take the rest. With siblings, one: they share arrivals."""
    flags = bytearray(PAGE_SIZE)
    flags[LONE] = 1 if lone else 0
    harness = Harness(listeners=[listener], board_page=flags)
    clients = queue_clients(listener, 4)
    try:
        harness.worker.intake.accept_ready(listener)
        harness.turn_ends()
        assert tcp_listen_queue(listener.sock)[0] == 4 - taken
        for index, client in enumerate(clients[:taken]):
            assert read_response(client).endswith(b"hello /c%d" % index)
    finally:
        harness.close()
        for client in clients:
            client.close()


def test_a_busy_turn_takes_what_the_queue_holds(listener):
    harness = Harness(listeners=[listener])
    clients = queue_clients(listener, 5)
    try:
        harness.worker.intake.accept(listener, burst=True)
        harness.turn_ends()
        assert tcp_listen_queue(listener.sock)[0] == 0
        for index, client in enumerate(clients):
            assert read_response(client).endswith(b"hello /c%d" % index)
    finally:
        harness.close()
        for client in clients:
            client.close()


def test_a_term_during_a_burst_leaves_the_rest_queued_for_the_drain(listener):
    """A burst serves each connection it takes at once; a TERM that comes during one of those app
    calls ends the burst, so the loop begins its stop and drains the rest (counted and logged)."""
    served = []

    def app(environ, start_response):
        if not served:
            harness.worker.queue_signal(signal.SIGTERM, None)  # as the signal handler would, mid-call
        served.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    harness = Harness(app, listeners=[listener])
    clients = queue_clients(listener, 3)
    try:
        harness.worker.intake.accept(listener, burst=True)
        assert served == ["/c0"]
        assert tcp_listen_queue(listener.sock)[0] == 2, "the rest wait for the stop's drain"
        assert harness.worker.stop.stop_after_turn and harness.worker.pending_signals == [signal.SIGTERM]
    finally:
        harness.close()
        for client in clients:
            client.close()


def test_no_more_than_worker_connections_are_taken_and_listeners_rest_until_one_closes(listener):
    harness = Harness(listeners=[listener], worker_connections=2)
    intake = harness.worker.intake
    clients = queue_clients(listener, 4)
    try:
        intake.accept(listener, burst=True)
        assert len(harness.worker.connections) == 2
        intake.refresh(time.monotonic())
        assert not intake.polling_listeners, "full: the listeners are not polled"
        harness.channels.close(next(iter(harness.worker.connections.values())))
        intake.refresh(time.monotonic())
        assert intake.polling_listeners
    finally:
        harness.close()
        for client in clients:
            client.close()


def test_connections_get_the_listeners_address_and_their_peers(listener):
    harness = Harness(listeners=[listener])
    clients = queue_clients(listener, 1)
    try:
        harness.worker.intake.accept(listener)
        conn = next(iter(harness.worker.connections.values()))
        host, port = listener.sock.getsockname()
        assert (conn.base["SERVER_NAME"], conn.base["SERVER_PORT"]) == (host, str(port))
        assert (conn.base["REMOTE_ADDR"], conn.base["REMOTE_PORT"]) == tuple(map(str, clients[0].getsockname()))
        assert conn.base["wsgi.url_scheme"] == "http"
    finally:
        harness.close()
        for client in clients:
            client.close()


def test_an_environ_copied_from_a_connections_keys_takes_a_requests_keys_without_growing(listener):
    harness = Harness(listeners=[listener])
    clients = queue_clients(listener, 1)
    try:
        harness.worker.intake.accept(listener)
        conn = next(iter(harness.worker.connections.values()))
        assert grows_for_a_request(conn.base) is (roomy is dict)  # (pure Python: plain dicts, which grow)
    finally:
        harness.close()
        for client in clients:
            client.close()


def begin_full_stop(harness):
    """A full stop begins, as the loop begins it on TERM: the worker stops and its intake drains."""
    now = time.monotonic()
    harness.worker.stop.begin(now)
    harness.worker.intake.begin_drain(now)
    harness.worker.intake.refresh(now)


def test_a_full_stop_serves_what_the_backlog_held_then_closes_the_listeners(listener):
    harness = Harness(listeners=[listener])
    intake = harness.worker.intake
    clients = queue_clients(listener, 3)
    try:
        begin_full_stop(harness)
        assert intake.polling_listeners, "draining: still accepting what was queued"
        for _ in range(3):
            intake.accept(listener)
        assert intake.drain_done(time.monotonic())
        intake.close_listeners()
        assert listener.sock.fileno() == -1
        for index, client in enumerate(clients):
            assert b"Connection: close" in read_response(client), "a full stop closes each connection"
    finally:
        harness.close()
        for client in clients:
            client.close()


def test_a_connection_queued_after_the_stops_count_is_taken_too(listener):
    """The count taken at the stop ends the drain only once the queue is empty: a handshake the
    kernel had answered before the master stopped admitting joins the queue a round trip later,
    and is served rather than reset when the listeners close."""
    harness = Harness(listeners=[listener])
    intake = harness.worker.intake
    clients = queue_clients(listener, 1)
    try:
        begin_full_stop(harness)
        intake.accept(listener)  # the one counted at the stop
        clients += queue_clients(listener, 1)  # then one more completes
        assert not intake.drain_done(time.monotonic()), "the queue still holds one"
        intake.accept(listener)
        assert intake.drain_done(time.monotonic())
        intake.close_listeners()
        for client in clients:
            assert read_response(client).endswith(b"hello /c0"), "each is served, none reset"
    finally:
        harness.close()
        for client in clients:
            client.close()


def hand_over(channel, harness, served, sent=b""):
    """A sibling hands ``harness`` a connection from 10.0.0.9:5555 with the bytes ``sent`` read
    already; the client's end of it."""
    client, server_end = socket.socketpair()
    message = (b'{"environ": {"REMOTE_ADDR": "10.0.0.9", "REMOTE_PORT": "5555", "SERVER_NAME": "h", '
               b'"SERVER_PORT": "80", "wsgi.url_scheme": "http"}, "peer": ["10.0.0.9", 5555], "served": %d, '
               b'"proxy": false, "started": 1.0, "last_io": 1.0, "waiting_since": 0.0, "arrived": 0.0}' % served)
    assert channel.send(len(message).to_bytes(4, "big") + message + sent, server_end.fileno())
    server_end.close()
    channel.reserve_fd()
    assert harness.worker.intake.take_handoff()
    return client


def test_a_connection_handed_over_is_served_with_the_bytes_that_came_with_it():
    channel = open_handoff_channel()
    harness = Harness(handoff=channel)
    client = hand_over(channel, harness, 3, b"GET /moved HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        harness.turn_ends()
        conn = next(iter(harness.worker.connections.values()))
        assert conn.peer == ("10.0.0.9", 5555) and conn.served == 4 and conn.state is states.READING
        client.settimeout(5)
        assert read_response(client).endswith(b"hello /moved")
    finally:
        harness.close()
        client.close()


def test_a_connection_handed_over_keeps_the_room_of_the_workers_keys():
    channel = open_handoff_channel()
    harness = Harness(handoff=channel)
    client = hand_over(channel, harness, 0)
    try:
        conn = next(iter(harness.worker.connections.values()))
        assert conn.base["REMOTE_ADDR"] == "10.0.0.9"
        assert grows_for_a_request(conn.base) is (roomy is dict)
    finally:
        harness.close()
        client.close()


def test_accepted_tcp_connections_have_nagle_off(listener):
    """Set once on the listener, TCP_NODELAY reaches every connection accepted from it."""
    harness = Harness(listeners=[listener])
    clients = queue_clients(listener, 2)
    try:
        harness.worker.intake.accept(listener, burst=True)
        for conn in harness.worker.connections.values():
            assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        harness.close()
        for client in clients:
            client.close()
