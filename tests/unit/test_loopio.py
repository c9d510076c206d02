"""The loop's compiled reads and writes (_loopio.c) against the socket's own recv and send, on socket
pairs: the same bytes, the same ends of input, the same errors."""
import os
import socket
import subprocess
import sys

import pytest

from forkwsgi.worker.connection import recv_nowait, send_nowait

from tests.support.server import ROOT
from tests.unit.worker_harness import Harness

compiled_only = pytest.mark.skipif(recv_nowait is None, reason=(
    "the compiled socket calls are not built (no C compiler at install, FORKWSGI_NO_EXTENSIONS or "
    "FORKWSGI_PURE_PYTHON)"))


@pytest.fixture
def pairs():
    """Two socket pairs alike, non-blocking: one for the socket's methods, one for the compiled calls."""
    made = [socket.socketpair() for _ in range(2)]
    for pair in made:
        for sock in pair:
            sock.setblocking(False)
    yield made
    for pair in made:
        for sock in pair:
            sock.close()


def outcome(call):
    try:
        return "ok", call()
    except OSError as exc:
        return type(exc), exc.errno


@compiled_only
@pytest.mark.parametrize("size", [1, 10, 65536, 65537, 300_000])
@pytest.mark.parametrize("waiting", [0, 5, 70_000, 400_000])
def test_recv_gives_what_the_sockets_recv_gives(pairs, size, waiting):
    (near, far), (near2, far2) = pairs
    for sock in (far, far2):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        sent = 0
        while sent < waiting:
            sent += sock.send(bytes(range(256)) * 2000)
    for _ in range(3):  # what is there, then what is left, then nothing: BlockingIOError
        assert outcome(lambda: recv_nowait(near2.fileno(), size)) == outcome(lambda: near.recv(size))


def tcp_pair():
    """(ours, the client's): a TCP connection on 127.0.0.1, ours non-blocking."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    ours.setblocking(False)
    return ours, client


@compiled_only
def test_recv_gives_the_end_of_input_and_a_reset_as_the_socket_does(pairs):
    (near, far), (near2, far2) = pairs
    far.close()
    far2.close()
    assert recv_nowait(near2.fileno(), 100) == near.recv(100) == b""
    (ours, client), (ours2, client2) = tcp_pair(), tcp_pair()
    try:
        for mine, theirs in ((ours, client), (ours2, client2)):
            mine.send(b"unread by the client")
            theirs.close()  # closed with input unread: a reset
        compiled = outcome(lambda: recv_nowait(ours2.fileno(), 10))
        assert compiled == outcome(lambda: ours.recv(10)) and compiled[0] is ConnectionResetError
        assert outcome(lambda: recv_nowait(ours2.fileno(), 10)) == outcome(lambda: ours.recv(10)) == ("ok", b"")
    finally:
        ours.close()
        ours2.close()


@compiled_only
@pytest.mark.parametrize("data", [b"", b"x", b"y" * 100_000, memoryview(b"abcdef")[2:], bytearray(b"12")])
def test_send_takes_what_the_sockets_send_takes(pairs, data):
    (near, far), (near2, far2) = pairs
    for _ in range(3):
        assert outcome(lambda: send_nowait(near2.fileno(), data)) == outcome(lambda: near.send(data))


@compiled_only
def test_send_to_a_client_gone_fails_as_the_sockets_send_does(pairs):
    (near, far), (near2, far2) = pairs
    far.close()
    far2.close()
    assert outcome(lambda: send_nowait(near2.fileno(), b"x")) == outcome(lambda: near.send(b"x"))


@compiled_only
def test_bad_arguments_are_refused_as_the_socket_refuses_them(pairs):
    (near, _), _ = pairs
    with pytest.raises(ValueError):
        recv_nowait(near.fileno(), -1)
    with pytest.raises(TypeError):
        send_nowait(near.fileno(), "text")
    with pytest.raises(OSError):
        send_nowait(-1, b"x")


def test_with_threads_a_closed_connection_refuses_a_send_instead_of_writing_to_a_reused_descriptor():
    harness = Harness(threads=4)
    conn, _ = harness.connect()
    fd = conn.fd
    conn.sock.close()
    reused, peer = socket.socketpair()  # takes the lowest free number: the closed one
    try:
        assert reused.fileno() == fd
        with pytest.raises(OSError):
            conn.send_some(b"not for this socket")
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(100)
    finally:
        reused.close()
        peer.close()


_SMALL_STACK = """
import socket, threading
from forkwsgi.worker.connection import recv_nowait, send_nowait
from forkwsgi.worker.poller import READ, Poller
threading.stack_size(32768)  # the least Python allows: an app may ask for it
near, far = socket.socketpair()
far.send(b"x" * 1000)
answers = []
def run():
    poller = Poller()
    poller.add(near.fileno(), READ)
    answers.append(poller.poll(1.0) == [(near.fileno(), READ)])
    answers.append(len(recv_nowait(near.fileno(), 65536)))
    answers.append(send_nowait(near.fileno(), b"y"))
thread = threading.Thread(target=run)
thread.start()
thread.join()
print(answers)
"""


@compiled_only
def test_the_calls_run_in_a_thread_with_the_smallest_stack_python_allows():
    result = subprocess.run([sys.executable, "-c", _SMALL_STACK], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert (result.returncode, result.stdout.strip()) == (0, "[True, 1000, 1]"), result.stderr
