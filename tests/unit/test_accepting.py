"""Taking a connection from a listener (forkwsgi/worker/accepting.py): the Python reference and the
compiled accept, on real sockets. Both must give a non-blocking, close-on-exec socket and the peer's
address; the compiled one must do it without the ioctl the reference pays for."""
import fcntl
import os
import select
import shutil
import socket
import subprocess
import sys

import pytest

from forkwsgi.worker import accepting
from forkwsgi.worker.accepting import acceptor

from tests.support.server import ROOT

NOT_BUILT = ("the compiled accept is not built "
             "(no C compiler at install, FORKWSGI_NO_EXTENSIONS or FORKWSGI_PURE_PYTHON)")
compiled_only = pytest.mark.skipif(accepting.compiled_accept is None, reason=NOT_BUILT)
each_accept = pytest.mark.parametrize("accept", [
    pytest.param(None, id="python"),
    pytest.param(accepting.compiled_accept, id="compiled", marks=compiled_only)])


def _listener(family=socket.AF_INET, address=("127.0.0.1", 0)):
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(8)
    sock.setblocking(False)
    return sock


def _ipv6_loopback():
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.bind(("::1", 0))
        sock.close()
        return True
    except OSError:
        return False


@each_accept
@pytest.mark.parametrize("family,address", [
    pytest.param(socket.AF_INET, ("127.0.0.1", 0), id="ipv4"),
    pytest.param(socket.AF_INET6, ("::1", 0), id="ipv6",
                 marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here"))])
def test_a_tcp_connection_comes_non_blocking_with_its_peer_address(accept, family, address):
    listener = _listener(family, address)
    client = socket.create_connection(listener.getsockname()[:2], timeout=5)
    try:
        sock, peer = acceptor(listener, accept)()
        with sock:
            assert peer[:2] == client.getsockname()[:2]
            assert len(peer) == (2 if family == socket.AF_INET else 4)
            assert (sock.family, sock.type) == (family, socket.SOCK_STREAM)
            assert sock.gettimeout() == 0.0
            assert fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK, "the fd itself must not block"
            assert not os.get_inheritable(sock.fileno()), "close-on-exec, as socket.accept() gives"
            with pytest.raises(BlockingIOError):
                sock.recv(10)  # nothing sent yet: a non-blocking socket says so, it does not wait
            client.sendall(b"ping")
            assert select.select([sock], [], [], 5)[0], "the bytes sent never arrived"
            assert sock.recv(10) == b"ping"
    finally:
        client.close()
        listener.close()


@each_accept
@pytest.mark.parametrize("peer_host", ["127.0.0.1", "127.10.99.100", "127.255.0.9", "127.200.109.250"])
def test_an_ipv4_peer_address_reads_as_the_kernel_gives_it(accept, peer_host):
    """Every octet width (one, two, three digits; 0 and 255) comes out as socket.accept() writes it."""
    listener = _listener(socket.AF_INET, ("0.0.0.0", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.bind((peer_host, 0))  # all of 127/8 is loopback on Linux
        client.settimeout(5)
        client.connect(("127.0.0.1", listener.getsockname()[1]))
        sock, peer = acceptor(listener, accept)()
        sock.close()
        assert peer == (peer_host, client.getsockname()[1])
        assert type(peer[0]) is str and type(peer[1]) is int
    finally:
        client.close()
        listener.close()


@each_accept
def test_a_unix_socket_connection_works_and_has_no_address_to_read(accept, tmp_path):
    path = str(tmp_path / "s")
    listener = _listener(socket.AF_UNIX, path)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    try:
        sock, peer = acceptor(listener, accept)()
        with sock:
            assert not peer  # '' from Python's accept, None from the compiled one: the intake ignores it
            assert sock.family == socket.AF_UNIX and sock.gettimeout() == 0.0
            client.sendall(b"x")
            sock.setblocking(True)
            assert sock.recv(1) == b"x"
    finally:
        client.close()
        listener.close()


@each_accept
def test_an_empty_queue_raises_blocking_io_error(accept):
    listener = _listener()
    try:
        with pytest.raises(BlockingIOError):
            acceptor(listener, accept)()
    finally:
        listener.close()


@compiled_only
def test_a_closed_listener_raises_os_error_with_its_errno():
    listener = _listener()
    fd = listener.detach()
    os.close(fd)
    with pytest.raises(OSError) as raised:
        accepting.compiled_accept(fd)
    assert raised.value.errno == 9  # EBADF


_COUNT_IOCTLS = """
import socket, sys
from forkwsgi.worker import accepting
accept = accepting.compiled_accept if sys.argv[1] == "compiled" else None
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(8)
clients = [socket.create_connection(listener.getsockname()) for _ in range(5)]
take = accepting.acceptor(listener, accept)
sys.stdout.write("accepting\\n"); sys.stdout.flush()
accepted = [take() for _ in range(5)]
sys.stdout.write("accepted\\n"); sys.stdout.flush()
"""


@compiled_only
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("kind,ioctls", [("compiled", 0), ("python", 5)])
def test_system_calls_per_connection(tmp_path, kind, ioctls):
    """The compiled accept takes a connection in one accept4; the reference adds an ioctl(FIONBIO)."""
    trace = tmp_path / "trace"
    result = subprocess.run(["strace", "-f", "-e", "trace=accept4,ioctl,write", "-o", str(trace),
                             sys.executable, "-c", _COUNT_IOCTLS, kind],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, timeout=60)
    if result.returncode != 0 and b"ptrace" in result.stderr.lower():  # a sandbox that forbids tracing
        pytest.skip("strace cannot trace here: %s" % result.stderr.decode(errors="replace").strip())
    assert result.returncode == 0, result.stderr
    lines = trace.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "accepting" in line)
    end = next(i for i, line in enumerate(lines) if "accepted" in line and i > start)
    between = lines[start + 1:end]
    assert sum("accept4(" in line for line in between) == 5
    assert sum("FIONBIO" in line for line in between) == ioctls
