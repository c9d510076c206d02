"""A connection's life through the worker's components, in-process, against socketpairs.

Each scenario drives Channels, Scheduler and Timers as the loop would, and checks
what the client receives and the state the connection is left in
(forkwsgi/worker/states.py). test_worker_states.py runs every scenario again
to show that together they take every transition of the table.
"""
import logging
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from forkwsgi.shared.board import Board
from forkwsgi.shared.handoff import SPARE_SLOTS, HandoffChannel
from forkwsgi.worker import states
from forkwsgi.worker.handler import start_run
from forkwsgi.wsgi.environ import roomy
from tests.unit.worker_harness import Harness, grows_for_a_request, read_response, wait_readable

def get(path="a", close=False):
    return b"GET /%s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), b"Connection: close\r\n" if close else b"")


def read_until(client, marker):
    data = b""
    while marker not in data:
        chunk = client.recv(65536)
        assert chunk, "closed before %r" % marker
        data += chunk
    return data


def drain_until(harness, conn, client, done, limit=10000):
    """Read what the client is sent, and let the loop write more, until ``done()``; the bytes read."""
    received = bytearray()
    for _ in range(limit):
        if done():
            return bytes(received)
        readable, _, _ = select.select([client], [], [], 0.5)
        if readable:
            chunk = client.recv(1 << 20)
            if not chunk:
                return bytes(received)
            received += chunk
        _, writable, _ = select.select([], [conn.sock], [], 0)
        if writable and conn.state is not states.CLOSED:
            harness.channels.writable(conn)
    raise AssertionError("not done after %d rounds; state %s" % (limit, conn.state))


# ----- scenarios (each is also a test below)

def keep_alive_requests():
    harness = Harness()
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get("one"))
        assert read_response(client).endswith(b"hello /one")
        assert conn.state is states.READING and conn.served == 1
        harness.send(conn, client, get("two") + get("three"))  # pipelined: answered in order
        both = read_until(client, b"hello /three")
        assert both.index(b"hello /two") < both.index(b"hello /three")
        assert conn.state is states.READING and conn.served == 3
    finally:
        harness.close()


def last_response_closes():
    harness = Harness()
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get("bye", close=True))
        assert b"Connection: close" in read_response(client)
        assert client.recv(10) == b""
        assert conn.state is states.CLOSED and conn.fd not in harness.worker.connections
    finally:
        harness.close()


def unread_input_lingers():
    """A last response with more input behind it: our side shuts, the rest is read and dropped."""
    harness = Harness()
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get("bye", close=True) + b"GET /more HTTP/1.1\r\n")
        assert read_response(client).endswith(b"hello /bye")
        assert conn.state is states.LINGER
        assert client.recv(10) == b"", "our side is shut: the client sees the end, not a reset"
        client.sendall(b"more bytes, discarded")
        wait_readable(conn.sock)
        harness.channels.readable(conn)
        assert conn.state is states.LINGER
        client.shutdown(socket.SHUT_WR)
        wait_readable(conn.sock)
        harness.channels.readable(conn)
        assert conn.state is states.CLOSED
    finally:
        harness.close()


def refused_request():
    harness = Harness()
    try:
        conn, client = harness.connect()
        harness.send(conn, client, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        assert read_response(client).startswith(b"HTTP/1.1 400 ")
        assert conn.state is states.LINGER
    finally:
        harness.close()


def big_body(size, chunk=65536):
    closed = []

    class Body:
        def __iter__(self):
            for _ in range(size // chunk):
                yield b"x" * chunk

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(size))])
        return Body()
    return app, closed


def slow_reader_suspends_the_body():
    """The client reads slower than the app writes: the body pauses, the loop drains, it resumes."""
    size = 4 << 20
    app, closed = big_body(size)
    harness = Harness(app, output_buffer_max=256 * 1024, output_buffer_memory=64 * 1024)
    try:
        conn, client = harness.connect(sndbuf=16384, rcvbuf=16384)
        harness.send(conn, client, get("big"))
        assert conn.state is states.SUSPENDED, "the buffer filled: the app's body waits for the client"
        received = drain_until(harness, conn, client, lambda: conn.state is states.READING)
        while received.count(b"x") < size:
            received += client.recv(1 << 20)
        assert received.count(b"x") == size and closed == [True]
        assert conn.state is states.READING, "kept alive for the next request"
    finally:
        harness.close()


def queued_response_drains():
    """A whole response bigger than the socket takes at once is queued and drained by the loop."""
    size = 1 << 20
    app, _ = big_body(size)
    harness = Harness(app)
    try:
        conn, client = harness.connect(sndbuf=16384, rcvbuf=16384)
        harness.send(conn, client, get("big"))
        assert conn.state is states.SENDING and conn.out
        received = drain_until(harness, conn, client, lambda: conn.state is states.READING)
        while received.count(b"x") < size:
            received += client.recv(1 << 20)
        assert received.count(b"x") == size
    finally:
        harness.close()


def non_reading_client_is_dropped():
    """A queued response the client never takes: --send-timeout closes the connection."""
    app, _ = big_body(1 << 20)
    harness = Harness(app, send_timeout=5)
    try:
        conn, client = harness.connect(sndbuf=16384, rcvbuf=16384)
        harness.send(conn, client, get("big"))
        assert conn.state is states.SENDING
        harness.worker.timers.sweep(harness.worker.connections, time.monotonic() + 6, time.monotonic() + 6, 0.0)
        assert conn.state is states.CLOSED
    finally:
        harness.close()


def suspended_body_of_a_gone_client_is_closed():
    app, closed = big_body(8 << 20)
    harness = Harness(app, output_buffer_max=256 * 1024, output_buffer_memory=64 * 1024)
    try:
        conn, client = harness.connect(sndbuf=16384, rcvbuf=16384)
        harness.send(conn, client, get("big"))
        assert conn.state is states.SUSPENDED
        client.close()
        for _ in range(100):
            _, writable, _ = select.select([], [conn.sock], [], 1)
            harness.channels.writable(conn)
            if conn.state is states.CLOSED:
                break
        assert conn.state is states.CLOSED and closed == [True], "the app's iterable is closed with it"
    finally:
        harness.close()


def idle_connection_times_out():
    harness = Harness(keepalive=2)
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get())
        read_response(client)
        later = time.monotonic() + 3
        harness.worker.timers.sweep(harness.worker.connections, later, later, 0.0)
        assert conn.state is states.LINGER and client.recv(10) == b""
    finally:
        harness.close()


def slow_head_is_refused():
    harness = Harness(header_timeout=2)
    try:
        conn, client = harness.connect()
        harness.send(conn, client, b"GET / HTTP/1.1\r\nHost:")
        later = time.monotonic() + 3
        harness.worker.timers.sweep(harness.worker.connections, later, later, 0.0)
        assert read_response(client).startswith(b"HTTP/1.1 408 ")
        assert conn.state is states.LINGER
    finally:
        harness.close()


def client_that_closes_is_closed():
    harness = Harness()
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get())
        read_response(client)
        client.shutdown(socket.SHUT_WR)
        wait_readable(conn.sock)
        harness.channels.readable(conn)
        assert conn.state is states.CLOSED
    finally:
        harness.close()


class Gate:
    """An app whose /block requests wait until the test opens the gate."""

    def __init__(self):
        self.opened = threading.Event()
        self.entered = threading.Semaphore(0)

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/block":
            self.entered.release()
            self.opened.wait(10)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]


def busy_worker(gate, handoff=None, **settings):
    """A worker with its two threads busy in /block; (harness, blocked connections)."""
    harness = Harness(gate, handoff=handoff, threads=2, **settings)
    blocked = []
    for _ in range(2):
        conn, client = harness.connect()
        harness.send(conn, client, get("block"))
        assert conn.state is states.APP
        blocked.append((conn, client))
    for _ in range(2):
        assert gate.entered.acquire(timeout=5)
    return harness, blocked


def request_waits_for_a_thread():
    gate = Gate()
    harness, blocked = busy_worker(gate)
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get("late"))
        assert conn.state is states.WAITING and harness.scheduler.waiting
        gate.opened.set()
        while conn.state is states.WAITING:
            harness.collect()
            harness.scheduler.serve_waiting()
        for other, other_client in blocked:
            assert read_response(other_client).endswith(b"ok")
        while conn.state is states.APP:
            harness.collect()
        assert read_response(client).endswith(b"ok") and conn.state is states.READING
    finally:
        gate.opened.set()
        harness.close()


def waiting_request_is_shed():
    gate = Gate()
    harness, blocked = busy_worker(gate, max_queue_time=0.05)
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get("late"))
        assert conn.state is states.WAITING
        time.sleep(0.06)  # past its deadline: the wait being measured is the point of this test
        harness.scheduler.serve_waiting()
        response = read_response(client)
        assert response.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in response
        assert conn.state in (states.LINGER, states.CLOSED)
    finally:
        gate.opened.set()
        harness.close()


def request_that_comes_during_an_inline_app_call_is_shed_at_its_deadline():
    """Inline, with --max-queue-time: a connection already here (accepted before its request came, or
    kept alive) gets its request while the loop is inside another request's app call. The watcher reads
    it, so it waits from when it came and is answered 503 at its deadline, not served once the call ends."""
    harness = Harness(max_queue_time=0.05)
    try:
        conn, client = harness.connect()
        assert conn.state is states.READING
        harness.worker.executor.free = 0  # the loop is inside an app call (InlineExecutor.submit says so)
        client.sendall(get("late"))
        wait_readable(conn.sock)
        harness.scheduler.watch_turn(None)  # the watcher's turn, holding the lock
        assert conn.state is states.WAITING
        time.sleep(0.06)  # past its deadline: the wait being measured is the point of this test
        harness.scheduler.watch_turn(None)
        response = read_response(client)
        assert response.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in response
    finally:
        harness.close()


def probe_is_answered_while_every_thread_is_busy():
    """--health-path is answered by the loop, never queued behind the app, and says 503 once stopping."""
    gate = Gate()
    harness, blocked = busy_worker(gate, health_path="/healthz")
    try:
        conn, client = harness.connect()
        harness.send(conn, client, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(client).endswith(b"ok\n") and conn.state is states.READING
        harness.worker.stop.begin(time.monotonic())
        harness.send(conn, client, b"HEAD /healthz?deep=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(1000).startswith(b"HTTP/1.1 503 ")
    finally:
        gate.opened.set()
        harness.close()


def app_call_at_the_graceful_deadline_is_closed():
    """At --graceful-timeout the loop closes what is left, a request in the app included."""
    gate = Gate()
    harness, blocked = busy_worker(gate)
    try:
        conn, _ = blocked[0]
        harness.channels.close(conn)
        assert conn.state is states.CLOSED
    finally:
        gate.opened.set()
        harness.close()


def open_handoff_channel():
    board = Board()
    board.handoff_open = True
    channel = HandoffChannel(board)
    channel.slot = 0
    channel.spare_page[1 % SPARE_SLOTS] = 1  # a sibling says it has a thread to spare
    return channel


def waiting_connection_moves_to_a_sibling():
    gate = Gate()
    channel = open_handoff_channel()
    harness, blocked = busy_worker(gate, handoff=channel, handoff_delay=0.0)
    try:
        conn, client = harness.connect()
        harness.send(conn, client, b"GET /moved HTTP/1.1\r\nHost: x\r\n")  # a head not whole yet: raw bytes
        assert conn.state is states.WAITING
        harness.scheduler.serve_waiting()
        assert conn.state is states.CLOSED and conn.fd not in harness.worker.connections
        sock, message = _receive(channel)
        assert message.endswith(b"GET /moved HTTP/1.1\r\nHost: x\r\n"), "the raw bytes travel with it"
        sock.sendall(b"from the sibling")
        assert client.recv(100) == b"from the sibling", "the client's connection lives on in the sibling"
        sock.close()
    finally:
        gate.opened.set()
        harness.close()


def _receive(channel):
    channel.reserve_fd()
    received = channel.receive()
    assert received is not None
    return received


@pytest.fixture(scope="module")
def server_context(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate to test TLS with")
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=localhost"], cwd=directory, check=True,
                   capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(directory / "cert.pem"), str(directory / "key.pem"))
    return context


def tls_handshake_then_request(context):
    harness = Harness(tls_context=context)
    try:
        conn, raw = harness.connect(tls=True)
        assert conn.state is states.HANDSHAKE
        client_context = ssl.create_default_context()
        client_context.check_hostname = False
        client_context.verify_mode = ssl.CERT_NONE
        client = client_context.wrap_socket(raw, do_handshake_on_connect=False)
        done = threading.Thread(target=client.do_handshake)
        done.start()
        for _ in range(100):
            if conn.state is not states.HANDSHAKE:
                break
            wait_readable(conn.sock)
            harness.channels.readable(conn)
        done.join(5)
        assert conn.state is states.READING
        client.sendall(get("secure"))
        wait_readable(conn.sock)
        harness.channels.readable(conn)
        assert read_response(client).endswith(b"hello /secure")
    finally:
        harness.close()


def plain_http_on_tls_gets_a_plain_400(context):
    harness = Harness(tls_context=context)
    try:
        conn, client = harness.connect(tls=True)
        harness.send(conn, client, get())
        assert conn.state is states.LINGER
        assert client.recv(200).startswith(b"HTTP/1.1 400 ")
    finally:
        harness.close()


def silent_tls_client_times_out(context):
    harness = Harness(tls_context=context, header_timeout=2)
    try:
        conn, client = harness.connect(tls=True)
        later = time.monotonic() + 3
        harness.worker.timers.sweep(harness.worker.connections, later, later, 0.0)
        assert conn.state is states.CLOSED
    finally:
        harness.close()


PLAIN_SCENARIOS = (keep_alive_requests, last_response_closes, unread_input_lingers, refused_request,
                   slow_reader_suspends_the_body, queued_response_drains, non_reading_client_is_dropped,
                   suspended_body_of_a_gone_client_is_closed, idle_connection_times_out, slow_head_is_refused,
                   client_that_closes_is_closed, request_waits_for_a_thread, waiting_request_is_shed,
                   request_that_comes_during_an_inline_app_call_is_shed_at_its_deadline,
                   probe_is_answered_while_every_thread_is_busy,
                   app_call_at_the_graceful_deadline_is_closed, waiting_connection_moves_to_a_sibling)
TLS_SCENARIOS = (tls_handshake_then_request, plain_http_on_tls_gets_a_plain_400, silent_tls_client_times_out)


@pytest.mark.parametrize("scenario", PLAIN_SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_connection_scenario(scenario):
    scenario()


@pytest.mark.parametrize("scenario", TLS_SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_tls_connection_scenario(scenario, server_context):
    scenario(server_context)


def test_a_proxy_protocol_header_gives_the_client_and_the_keys_keep_their_room():
    harness = Harness(proxy_protocol="v1")
    server, client = socket.socketpair()
    server.setblocking(False)
    client.settimeout(5)
    try:
        keys = harness.worker.intake.base.copy()
        keys.update(REMOTE_ADDR="127.0.0.1", REMOTE_PORT="40000", SERVER_NAME="127.0.0.1", SERVER_PORT="8000")
        conn = harness.worker.intake.kit.new(server, ("127.0.0.1", 40000), keys, True)
        harness.scheduler.admit(conn)
        harness.send(conn, client, b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 80\r\n" + get("p"))
        assert read_response(client).endswith(b"hello /p")
        assert (conn.base["REMOTE_ADDR"], conn.base["REMOTE_PORT"]) == ("10.1.2.3", "5555")
        assert grows_for_a_request(conn.base) is (roomy is dict)  # (pure Python: plain dicts, which grow)
    finally:
        harness.close()
        client.close()


def test_a_response_begun_after_its_connection_closed_finds_the_client_gone(caplog):
    """A thread may start writing a response just after the loop closed its connection (the
    graceful timeout): the write finds the client gone, as a send on the closed socket would."""
    harness = Harness()
    try:
        conn, client = harness.connect()
        conn.reader.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        request = conn.reader.next_request()
        harness.channels.close(conn)
        with caplog.at_level(logging.DEBUG, logger="forkwsgi"):
            assert start_run(harness.worker.site, conn, request).run() is False
        assert "went away: the connection is closed" in caplog.text
        assert "error handling" not in caplog.text
        assert client.recv(100) == b"", "nothing reaches the client of a closed connection"
    finally:
        harness.close()
