"""Accept-queue readings from the kernel, against real listeners on 127.0.0.1."""
import os
import socket
import time

import pytest

from forkwsgi.shared.backlog import listen_drops, tcp_listen_queue


def wait_until(read, expected, timeout=2.0):
    """``read()`` once it gives ``expected``, or its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.005)


def connect_many(listener, count):
    return [socket.create_connection(listener.getsockname(), timeout=2.0) for _ in range(count)]


def test_the_accept_queue_counts_connections_not_yet_accepted_and_its_maximum(listener):
    assert tcp_listen_queue(listener) == (0, 16)
    clients = connect_many(listener, 5)
    try:
        assert wait_until(lambda: tcp_listen_queue(listener), (5, 16)) == (5, 16)
        for _ in range(2):
            listener.accept()[0].close()
        assert tcp_listen_queue(listener) == (3, 16)
    finally:
        for client in clients:
            client.close()


def test_unix_sockets_have_no_accept_queue_reading(tmp_path):
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(tmp_path / "sock"))
        unix.listen(4)
        assert tcp_listen_queue(unix) is None


@pytest.mark.skipif(not os.access("/proc/net/netstat", os.R_OK), reason="/proc/net/netstat is hidden here")
def test_listen_drops_counts_connections_a_full_accept_queue_turned_away():
    before = listen_drops()
    assert before is not None and all(isinstance(value, int) and value >= 0 for value in before)
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(1)  # the queue holds two; the rest are turned away
        clients = []
        try:
            for _ in range(6):
                client = socket.socket()
                client.setblocking(False)
                client.connect_ex(full.getsockname())
                clients.append(client)
            deadline = time.monotonic() + 2.0
            after = listen_drops()
            while not (after[0] > before[0] and after[1] > before[1]) and time.monotonic() < deadline:
                time.sleep(0.01)
                after = listen_drops()
        finally:
            for client in clients:
                client.close()
    assert after[0] > before[0] and after[1] > before[1], (before, after)
