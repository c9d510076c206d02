"""A full stop's socket filter (master/sockets.py Listener.stop_admitting), against real sockets on
127.0.0.1: no new handshake completes, while what the kernel already took, or completes from a
handshake it had answered, still reaches the workers whole."""
import errno
import select
import socket
import time

import pytest

from forkwsgi.master.sockets import Listener
from forkwsgi.shared.backlog import tcp_listen_queue

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def _wait(read, expected, timeout=2.0):
    deadline = time.monotonic() + timeout
    while read() != expected and time.monotonic() < deadline:
        time.sleep(0.002)
    return read()


def _recv_within(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(1024)
    except socket.timeout:
        return None


@pytest.fixture
def tcp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield Listener(sock, "127.0.0.1:%d" % sock.getsockname()[1])
    sock.close()


def test_a_queued_connection_is_served_whole_and_no_new_handshake_completes(tcp_listener):
    queued = socket.create_connection(tcp_listener.sock.getsockname(), timeout=2.0)
    late = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        assert _wait(lambda: tcp_listen_queue(tcp_listener.sock)[0], 1) == 1
        tcp_listener.stop_admitting()
        queued.sendall(REQUEST)  # after the filter: still the worker's to read
        late.setblocking(False)
        assert late.connect_ex(tcp_listener.sock.getsockname()) == errno.EINPROGRESS
        # its SYN goes unanswered: no connection completes, none joins the queue
        assert select.select([], [late], [], 0.3)[1] == []
        assert tcp_listen_queue(tcp_listener.sock)[0] == 1
        conn, _ = tcp_listener.sock.accept()
        with conn:
            assert _recv_within(conn, 2.0) == REQUEST
    finally:
        queued.close()
        late.close()


def test_a_connection_that_copies_the_filter_still_hears_its_client(tcp_listener):
    """A connection whose handshake the kernel completes just after the filter is set copies the
    listener's filter (sk_clone_lock), and the client's final ACK meets it too: the filter must keep
    everything but a new SYN, or that client is connected, sends its request, and is never heard
    (then reset, or closed unanswered). Deterministic: the filter is set on the accepted socket."""
    client = socket.create_connection(tcp_listener.sock.getsockname(), timeout=2.0)
    conn, _ = tcp_listener.sock.accept()
    try:
        Listener(conn, "accepted").stop_admitting()  # as the kernel copies it to a child
        client.sendall(REQUEST)
        assert _recv_within(conn, 2.0) == REQUEST
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        assert _recv_within(client, 2.0).startswith(b"HTTP/1.1 200")
    finally:
        conn.close()
        client.close()
