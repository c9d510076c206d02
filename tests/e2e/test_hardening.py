"""A live server facing hostile input, slow clients, disconnects and broken apps."""
import socket
import time

import pytest
import requests

from tests.support.http import ResponseReader, connect, request
from tests.support.hostile import CASES, LIVE_LIMITS


@pytest.fixture(scope="module")
def hardened(request):
    from tests.support.server import Server
    server = Server(["-w", "1", "--header-timeout", "1", "--body-timeout", "1"] + LIVE_LIMITS).wait_ready()
    request.addfinalizer(server.stop)
    return server


@pytest.mark.parametrize("name,raw,status", CASES, ids=[case[0] for case in CASES])
def test_hostile_request_gets_exact_status_and_server_keeps_serving(hardened, name, raw, status):
    with connect(hardened.port) as sock:
        sock.sendall(raw)
        reader = ResponseReader(sock)
        got, headers, _ = reader.read()
        assert got == status
        assert headers["connection"] == ["close"]
        assert reader.closed()
    assert request(hardened.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[2] == b"hello"


def test_refusals_are_logged(hardened):
    request(hardened.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert hardened.wait_log("400 Bad Request: HTTP/1.1 request needs exactly one Host header, got 2", 5)


def test_slowloris_gets_408_and_does_not_pin_the_worker(hardened):
    slow = [connect(hardened.port) for _ in range(30)]
    for sock in slow:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    started = time.monotonic()
    assert request(hardened.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[2] == b"hello"
    assert time.monotonic() - started < 0.5  # the one worker answered at once
    statuses = [ResponseReader(sock).read()[0] for sock in slow]
    assert statuses == [408] * 30
    for sock in slow:
        sock.close()


def test_stalled_body_times_out(hardened):
    with connect(hardened.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        assert ResponseReader(sock).read()[0] == 408


def test_idle_keep_alive_clients_do_not_pin_workers(server_factory):
    server = server_factory(["-w", "2", "--keepalive", "30"])
    idle = []
    for _ in range(100):
        sock = connect(server.port)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ResponseReader(sock).read()[2] == b"hello"
        idle.append(sock)  # now an idle keep-alive connection
    started = time.monotonic()
    assert requests.get(server.url("/"), timeout=5).text == "hello"
    assert time.monotonic() - started < 0.5
    for sock in idle:  # and every idle one is still usable
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ResponseReader(sock).read()[2] == b"hello"
        sock.close()


def test_keep_alive_idle_timeout_closes(server_factory):
    server = server_factory(["--keepalive", "0.5"])
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = ResponseReader(sock)
        assert reader.read()[2] == b"hello"
        assert reader.closed(timeout=5)


def test_client_disconnects_mid_request_and_mid_response(server_factory):
    server = server_factory(["-w", "1", "--log-level", "debug"])
    pid = requests.get(server.url("/pid")).text
    with connect(server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
    with connect(server.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big?%d HTTP/1.1\r\nHost: x\r\n\r\n" % (64 << 20))
        sock.recv(1000)
    sock = connect(server.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.sendall(b"GET /big?%d HTTP/1.1\r\nHost: x\r\n\r\n" % (64 << 20))
    sock.close()  # reset
    assert requests.get(server.url("/pid")).text == pid
    assert server.wait_log("closed the connection mid-request", 5)
    assert server.wait_log("went away", 5)


@pytest.mark.parametrize("path,needle", [
    ("/bad-status", "invalid status"),
    ("/bad-header", "invalid value for header X-Injected"),
    ("/bad-header-name", "invalid header name"),
    ("/not-bytes", "response body must be bytes"),
    ("/raise", "boom before start_response"),
])
def test_app_mistakes_before_headers_give_500(server_factory, path, needle):
    server = server_factory(["-w", "1"])
    pid = requests.get(server.url("/pid")).text
    status, headers, body = request(server.port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    assert status == 500 and "set-cookie" not in headers and b"evil" not in body
    assert server.wait_log(needle, 5)
    assert requests.get(server.url("/pid")).text == pid


@pytest.mark.parametrize("path", ["/raise-after-headers", "/short"])
def test_app_mistakes_after_headers_close_the_connection(server_factory, path):
    server = server_factory(["-w", "1"])
    with connect(server.port) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        reader = ResponseReader(sock)
        status, headers, _ = reader.read(head_only=True)
        assert status == 200
        assert reader.closed()
    assert requests.get(server.url("/")).text == "hello"


def test_leaky_app_is_contained_by_max_requests(server_factory):
    server = server_factory(["-w", "1", "--max-requests", "5"])
    counts = [int(requests.get(server.url("/leak")).text) for _ in range(12)]
    assert max(counts) <= 5 and counts.count(1) >= 2  # fresh workers started from zero


def test_upgrade_is_served_once_then_the_connection_closes(hardened):
    """No protocol switch; and nothing smuggled behind an Upgrade is ever read as a request."""
    with connect(hardened.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                     b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = ResponseReader(sock)
        status, headers, body = reader.read()
        assert (status, body) == (200, b"hello") and headers["connection"] == ["close"]
        assert reader.closed()


def test_empty_lines_before_a_request_are_ignored_up_to_a_bound(hardened):
    assert request(hardened.port, b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")[2] == b"hello"
