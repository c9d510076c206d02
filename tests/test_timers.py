"""Timers a client cannot keep resetting (issue 9) and idle closes that lose nothing (issue 10)."""
import select
import time

from .conftest import ResponseReader, connect


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
            assert reader.closed()
