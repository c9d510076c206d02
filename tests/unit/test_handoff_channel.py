"""The hand-off channel's wire: a state message and a connection's fd travel together, whole, in order."""
import logging
import os
import select
import socket
import time

import pytest

from forkwsgi.shared.board import Board
from forkwsgi.shared.handoff import FULL_BACKOFF, MAX_MESSAGE, HandoffChannel

BIG = 64 * 1024  # a message as large as a connection's unparsed bytes may make it


@pytest.fixture
def channel():
    handoff = HandoffChannel(Board())
    assert handoff.reserve_fd()  # as a worker does before it polls the channel
    yield handoff
    handoff.receive_end.close()
    handoff.send_end.close()
    if handoff.spare_fd >= 0:
        os.close(handoff.spare_fd)


@pytest.fixture
def connections():
    """Socket pairs standing for client connections: (the worker's end, the client's end)."""
    made = []

    def make():
        pair = socket.socketpair()
        made.append(pair)
        return pair

    yield make
    for pair in made:
        for sock in pair:
            sock.close()


def readable(sock, timeout=0.0):
    return bool(select.select([sock], [], [], timeout)[0])


def test_a_connection_and_its_message_arrive_together_and_the_received_fd_is_the_connection(channel, connections):
    worker_end, client = connections()
    assert channel.send(b"state", worker_end.fileno())
    worker_end.close()  # the sender forgets it
    received, message = channel.receive()
    try:
        assert message == b"state"
        client.sendall(b"GET / HTTP/1.1\r\n\r\n")
        received.settimeout(1.0)
        assert received.recv(100) == b"GET / HTTP/1.1\r\n\r\n"
        received.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        client.settimeout(1.0)
        assert client.recv(100) == b"HTTP/1.1 200 OK\r\n\r\n"
    finally:
        received.close()
    client.settimeout(1.0)
    assert client.recv(100) == b"", "closing the received socket closes the connection: no copy is left"


def test_bytes_the_client_sent_before_the_hand_off_wait_for_the_new_owner(channel, connections):
    worker_end, client = connections()
    client.sendall(b"sent while it moved")
    assert channel.send(b"state", worker_end.fileno())
    worker_end.close()
    received, _ = channel.receive()
    with received:
        received.settimeout(1.0)
        assert received.recv(100) == b"sent while it moved"


def test_the_receive_end_polls_readable_only_while_a_connection_waits(channel, connections):
    assert not readable(channel)
    worker_end, _ = connections()
    assert channel.send(b"state", worker_end.fileno())
    assert readable(channel, 1.0)
    channel.receive()[0].close()
    assert not readable(channel)


def test_an_empty_channel_gives_nothing_and_keeps_the_reserved_fd(channel):
    assert channel.receive() is None
    assert channel.has_room()


@pytest.mark.parametrize("size", [1, 4096, BIG + 600, MAX_MESSAGE])
def test_messages_up_to_the_size_the_channel_allows_arrive_whole(channel, connections, size):
    worker_end, _ = connections()
    message = (bytes(range(251)) * (size // 251 + 1))[:size]
    assert channel.send(message, worker_end.fileno())
    received, got = channel.receive()
    received.close()
    assert got == message


def test_a_message_longer_than_the_channel_allows_is_dropped_with_its_connection_and_the_next_arrives(
        channel, connections):
    worker_end, client = connections()
    assert channel.send(b"x" * (MAX_MESSAGE + 1), worker_end.fileno())
    worker_end.close()
    second_end, _ = connections()
    assert channel.send(b"next", second_end.fileno())
    assert channel.receive() is None
    client.settimeout(1.0)
    assert client.recv(10) == b"", "the dropped connection is closed, not leaked"
    received, message = channel.receive()
    received.close()
    assert message == b"next"


def test_connections_arrive_in_the_order_sent_each_with_its_own_fd(channel, connections):
    clients = []
    for index in range(3):
        worker_end, client = connections()
        clients.append(client)
        assert channel.send(b"conn %d" % index, worker_end.fileno())
        worker_end.close()
    for index, client in enumerate(clients):
        received, message = channel.receive()
        with received:
            assert message == b"conn %d" % index
            client.sendall(b"from %d" % index)
            received.settimeout(1.0)
            assert received.recv(10) == b"from %d" % index


def test_a_full_channel_refuses_at_once_and_the_sender_keeps_its_connection(channel, connections, caplog):
    caplog.set_level(logging.WARNING, logger="forkwsgi")
    refused = None
    for _ in range(100):  # bounded: a few big messages fill the channel's buffer
        worker_end, client = connections()
        started = time.monotonic()
        sent = channel.send(b"x" * BIG, worker_end.fileno())
        assert time.monotonic() - started < 0.5, "a send into a full channel must not block"
        if not sent:
            refused = worker_end, client
            break
    assert refused is not None, "the channel never filled"
    now = time.monotonic()
    assert not channel.can_send(now), "after a refusal, siblings are left alone a moment"
    assert channel.can_send(now + FULL_BACKOFF)
    for _ in range(3):
        assert not channel.send(b"x" * BIG, refused[0].fileno())
    warnings = [record for record in caplog.records if "hand-off queue full" in record.getMessage()]
    assert len(warnings) == 1, "one warning for a burst of refusals, not one each"
    worker_end, client = refused
    worker_end.sendall(b"still mine")  # the refused connection was not lost
    client.settimeout(1.0)
    assert client.recv(20) == b"still mine"
    channel.receive()[0].close()  # a sibling takes one: room again
    assert channel.send(b"x" * BIG, worker_end.fileno())
