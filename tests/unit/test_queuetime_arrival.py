"""When a new connection's first bytes reached this host, from the kernel: arrival(sock)."""
import socket
import time

from forkwsgi.wsgi.queuetime import arrival


def test_a_head_that_waited_in_the_accept_queue_is_dated_when_it_came_not_when_it_was_accepted(listener):
    connected_at = time.monotonic()
    with socket.create_connection(listener.getsockname(), timeout=2.0) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.15)  # every worker busy: it waits to be accepted
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2.0)
            accepted_at = time.monotonic()
            came = arrival(conn)
            now = time.monotonic()
    assert connected_at <= came <= now
    assert came <= accepted_at - 0.1, "the wait in the accept queue counts"


def test_a_connection_with_no_bytes_yet_says_zero(listener):
    with socket.create_connection(listener.getsockname(), timeout=2.0):
        conn, _ = listener.accept()
        with conn:
            assert arrival(conn) == 0.0


def test_a_unix_socket_cannot_tell_and_says_minus_one():
    near, far = socket.socketpair()
    with near, far:
        far.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert arrival(near) == -1.0
