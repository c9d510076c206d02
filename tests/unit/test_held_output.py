"""Responses held to the end of the loop's turn (Connection.send_or_hold, Channels.release_held).

The inline loop holds each small app response until its turn ends, so that a
turn of many requests wakes a client once, not once per response. What must
never change: every response arrives, in order, before any close; nothing is
handed to a sibling with output still held; a response too big to hold, or
anything sent after a held one, keeps its place in line; and nothing held
waits behind an app that has been slow lately, or behind more than a few
dozen others.
"""
import select
import socket
import time

from forkwsgi.worker import states
from forkwsgi.worker.connection import HOLD_MAX
from forkwsgi.worker.executor import HOLD_COUNT
from tests.unit.worker_harness import Harness, read_response, wait_readable


def get(path="a", close=False):
    return b"GET /%s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), b"Connection: close\r\n" if close else b"")


def read_all(client, count):
    """What the client receives until it holds ``count`` responses (each ends in its 'hello' body)."""
    data = b""
    while data.count(b"HTTP/1.1 ") < count or not data.endswith((b"\n", b"/1", b"/2", b"/3", b"/ok")):
        chunk = client.recv(65536)
        assert chunk, "closed after %r" % data[-200:]
        data += chunk
    return data


def pending(client):
    """Whether anything has reached the client's socket yet."""
    return bool(select.select([client], [], [], 0)[0])


def serve_without_turn_end(harness, conn, client, data):
    client.sendall(data)
    wait_readable(conn.sock)
    harness.channels.readable(conn)


def big_app(environ, start_response):
    body = b"b" * (HOLD_MAX + 1)
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def test_responses_of_one_turn_leave_together_when_it_ends():
    # No call here may count as slow (past the hand-off delay, 3 ms by default): after one, what is
    # held leaves before the next call (the test below). On a loaded machine a descheduled hello
    # call can take that long.
    harness = Harness(handoff_delay=1.0)
    try:
        (one, client_one), (two, client_two) = harness.connect(), harness.connect()
        serve_without_turn_end(harness, one, client_one, get("one"))
        serve_without_turn_end(harness, two, client_two, get("two"))
        assert not pending(client_one) and not pending(client_two), "held until the turn ends"
        harness.turn_ends()
        assert read_response(client_one).endswith(b"hello /one")
        assert read_response(client_two).endswith(b"hello /two")
        assert one.state is states.READING and two.state is states.READING
    finally:
        harness.close()


def test_pipelined_responses_keep_their_order():
    harness = Harness()
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get("1") + get("2") + get("3"))
        data = read_all(client, 3)
        assert data.index(b"hello /1") < data.index(b"hello /2") < data.index(b"hello /3")
    finally:
        harness.close()


def pieces_app(environ, start_response):
    """A body in pieces: each is written on its own."""
    start_response("200 OK", [("Content-Length", "9")])
    yield b"one"
    yield b"two"
    yield b"thr"


def test_a_response_written_in_pieces_is_held_whole_and_leaves_in_order():
    harness = Harness(app=pieces_app)
    try:
        conn, client = harness.connect()
        serve_without_turn_end(harness, conn, client, get())
        assert not pending(client), "held until the turn ends"
        harness.turn_ends()
        data = b""
        while not data.endswith(b"onetwothr"):
            chunk = client.recv(65536)
            assert chunk, "closed after %r" % data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200") and data.count(b"HTTP/1.1") == 1
        assert conn.held is None and conn.state is states.READING
    finally:
        harness.close()


def test_a_last_response_leaves_before_the_connection_closes():
    harness = Harness()
    try:
        conn, client = harness.connect()
        serve_without_turn_end(harness, conn, client, get("last", close=True))
        assert conn.state is states.CLOSED, "closed in the same turn"
        assert read_response(client).endswith(b"hello /last")
        assert client.recv(100) == b""
    finally:
        harness.close()


def test_a_refusal_after_a_held_response_comes_after_it():
    harness = Harness()
    try:
        conn, client = harness.connect()
        serve_without_turn_end(harness, conn, client, get("ok") + b"GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n")
        data = read_all(client, 2)
        assert data.startswith(b"HTTP/1.1 200") and data.index(b"hello /ok") < data.index(b"HTTP/1.1 400")
    finally:
        harness.close()


def test_a_response_too_big_to_hold_leaves_at_once():
    harness = Harness(app=big_app)
    try:
        conn, client = harness.connect(rcvbuf=4 << 20)
        serve_without_turn_end(harness, conn, client, get())
        assert pending(client)
        assert conn.held is None
    finally:
        harness.close()


def test_what_a_full_socket_does_not_take_at_the_turn_end_is_drained_before_the_next_request():
    harness = Harness(app=lambda environ, start_response: (
        start_response("200 OK", [("Content-Length", str(60000))]) and None) or [b"x" * 60000])
    try:
        conn, client = harness.connect(sndbuf=4096, rcvbuf=4096)
        serve_without_turn_end(harness, conn, client, get("1") + get("2"))
        harness.turn_ends()
        assert conn.out, "part of the first response is queued"
        received = b""
        for _ in range(10000):
            if received.count(b"HTTP/1.1 200") == 2 and len(received) >= 2 * 60000:
                break
            if select.select([client], [], [], 0)[0]:
                received += client.recv(65536)
            if conn.out and select.select([], [conn.sock], [], 0)[1]:
                harness.channels.writable(conn)
                harness.turn_ends()
        assert received.count(b"HTTP/1.1 200") == 2
        assert received.index(b"HTTP/1.1 200", 1) > 60000, "the second response came after all of the first"
    finally:
        harness.close()


def test_a_connection_holding_output_is_not_handed_to_a_sibling():
    harness = Harness()
    try:
        conn, client = harness.connect()
        serve_without_turn_end(harness, conn, client, get())
        assert conn.held is not None and not conn.can_hand_off()
        harness.turn_ends()
        assert conn.can_hand_off()
        read_response(client)
    finally:
        harness.close()


def test_a_client_gone_before_the_turn_ends_is_closed():
    harness = Harness()
    try:
        conn, client = harness.connect()
        serve_without_turn_end(harness, conn, client, get())
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()  # a reset
        harness.turn_ends()
        assert conn.state is states.CLOSED
    finally:
        harness.close()


def test_with_threads_nothing_is_held():
    harness = Harness(threads=2)
    try:
        conn, client = harness.connect()
        client.sendall(get())
        wait_readable(conn.sock)
        harness.channels.readable(conn)
        harness.collect()
        assert read_response(client).endswith(b"hello /a")
        assert not harness.worker.intake.kit.held
    finally:
        harness.close()


def sometimes_slow(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(0.05)
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def test_after_a_slow_app_call_nothing_held_waits_for_the_next_call():
    harness = Harness(app=sometimes_slow, handoff_delay=0.01)
    try:
        (slow, slow_client), (fast, fast_client), (third, third_client) = (harness.connect() for _ in range(3))
        harness.send(slow, slow_client, get("slow"))
        read_response(slow_client)
        serve_without_turn_end(harness, fast, fast_client, get("fast"))
        serve_without_turn_end(harness, third, third_client, get("third"))
        assert pending(fast_client), "sent before the next app call began, not at the turn's end"
        harness.turn_ends()
    finally:
        harness.close()


def test_a_turn_holds_the_responses_of_a_bounded_number_of_connections():
    harness = Harness()
    try:
        pairs = [harness.connect() for _ in range(HOLD_COUNT + 2)]
        for conn, client in pairs:
            serve_without_turn_end(harness, conn, client, get())
        assert pending(pairs[0][1]) and not pending(pairs[-1][1])
        harness.turn_ends()
        assert all(read_response(client).endswith(b"hello /a") for _, client in pairs)
    finally:
        harness.close()
