"""Timers a client cannot keep resetting, and idle closes that lose nothing."""
import select
import time

import pytest

from tests.support.http import ResponseReader, connect
from tests.support.processes import wait_for


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_empty_lines_do_not_keep_a_connection_alive(server_factory):
    """RFC 9112 2.2 lets a server ignore CRLFs before a request; they must not extend any timeout."""
    server = server_factory(["-w", "1", "--keepalive", "1", "--header-timeout", "1"])
    for served_first in (False, True):
        with connect(server.port) as sock:
            reader = ResponseReader(sock)
            if served_first:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert reader.read()[0] == 200
            started = time.monotonic()
            closed = False
            answer = b""
            for _ in range(4):  # fewer than the parser refuses: only the timers can close it
                try:
                    sock.sendall(b"\r\n")
                except OSError:
                    closed = True
                    break
                if select.select([sock], [], [], 0.4)[0]:  # the close: read to the end
                    sock.settimeout(3)
                    try:
                        while True:
                            data = sock.recv(65536)
                            if not data:
                                break
                            answer += data
                    except ConnectionResetError:
                        pass
                    closed = True
                    break
            assert closed, "a connection sending empty lines was kept open"
            assert answer == b""  # closed as idle, not refused
            assert time.monotonic() - started < 3.0


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_a_keep_alive_request_sent_during_a_long_app_call_is_served(server_factory, tmp_path):
    """The idle clock of a connection does not run while its worker is busy in the app."""
    server = server_factory(["-w", "1", "--keepalive", "1", "--no-handoff"],
                            env={"TEST_MARKER_DIR": str(tmp_path)})
    with connect(server.port) as parked, connect(server.port, timeout=20) as slow:
        reader = ResponseReader(parked)
        parked.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read()[0] == 200
        slow.sendall(b"GET /sleep?2.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(2.0)  # parked is idle past --keepalive while the worker is busy
        parked.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read()[0] == 200
        assert ResponseReader(slow).read()[0] == 200


def test_a_client_that_half_closes_after_its_requests_gets_every_answer(server_factory):
    import socket
    for threads in ("1", "2"):
        server = server_factory(["-w", "1", "--threads", threads])
        with connect(server.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
            sock.shutdown(socket.SHUT_WR)
            reader = ResponseReader(sock)
            assert [reader.read()[0] for _ in range(3)] == [200] * 3
            assert reader.closed(timeout=1.0)  # at once, not after --keepalive


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_a_client_that_pipelines_and_never_reads_is_held_to_a_bounded_buffer(server_factory):
    """Its input is paused once 1 MiB waits unparsed behind output it does not take."""
    import socket
    server = server_factory(["-w", "1"])
    worker = server.wait_workers(1)[0]
    flood = socket.create_connection(("127.0.0.1", server.port))
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood.setblocking(False)
    chunk = b"GET /big?65536 HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
    sent, deadline = 0, time.monotonic() + 3
    while time.monotonic() < deadline and sent < 200 << 20:
        try:
            sent += flood.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    with open("/proc/%d/status" % worker) as handle:
        rss_kb = int(next(line for line in handle if line.startswith("VmRSS")).split()[1])
    assert rss_kb < 200 * 1024, "the worker buffered %d MB" % (rss_kb // 1024)
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ResponseReader(sock).read()[0] == 200
    flood.close()


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_a_request_that_arrives_during_a_long_loop_turn_keeps_its_connection_open(server_factory, tmp_path):
    """Many app calls, none long alone, make one long turn of the loop. A keep-alive request that
    arrives meanwhile is served at the next turn, and its connection stays open for the one after."""
    server = server_factory(["-w", "1", "--keepalive", "1"], env={"TEST_MARKER_DIR": str(tmp_path)})
    marker = tmp_path / "sleeping"
    with connect(server.port, timeout=20) as parked:
        reader = ResponseReader(parked)
        parked.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read()[0] == 200
        busy = [connect(server.port, timeout=20) for _ in range(8)]
        try:
            for sock in busy:  # each accepted and served once: all are polled in one turn from now on
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert ResponseReader(sock).read()[0] == 200
            for sock in busy:  # one turn of about 2.4 s: longer than --keepalive, no call long alone
                sock.sendall(b"GET /sleep?0.3 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert wait_for(marker.exists, 5.0)
            parked.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, _ = reader.read()
            assert status == 200 and headers.get("connection") != ["close"]
            parked.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # at once, as a client reusing it does
            assert reader.read()[0] == 200
            for sock in busy:
                assert ResponseReader(sock).read()[0] == 200
        finally:
            for sock in busy:
                sock.close()


def test_a_body_waiting_for_a_client_that_stopped_reading_ends_at_the_send_timeout(server_factory, tmp_path):
    """The app's iterable is closed (its close() runs) and the connection dropped; the worker serves on."""
    import socket
    server = server_factory(["-w", "1", "--send-timeout", "1", "--output-buffer-max", "1048576",
                             "--output-buffer-memory", "262144"], env={"TEST_MARKER_DIR": str(tmp_path)})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as stuck:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        stuck.sendall(b"GET /tracked-big?never-read HTTP/1.1\r\nHost: x\r\n\r\n")
        assert stuck.recv(1024).startswith(b"HTTP/1.1 200")
        with connect(server.port) as other:  # served while that body waits
            other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert ResponseReader(other).read()[0] == 200
        assert wait_for((tmp_path / "never-read").exists, 10.0), "the app's iterable was never closed"
