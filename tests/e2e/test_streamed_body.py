"""A request body too big to wait for reaches the app as it arrives (http.body.StreamedBody)."""
import hashlib
import os
import select
import socket
import time

import pytest

from forkwsgi.http.body import StreamedBody
from forkwsgi.http.errors import BadRequest
from forkwsgi.http.parser import Limits, RequestReader

from tests.support.http import ResponseReader, connect


def streamed(data, body_bytes, pieces):
    """A StreamedBody over ``data`` already buffered, then ``pieces`` as receive() gives them."""
    buf = bytearray(data)
    body = StreamedBody(body_bytes, buf)
    queue = list(pieces)
    body.receive = lambda: queue.pop(0) if queue else b""
    return body, buf


def test_reads_across_receives_and_leaves_the_next_request_in_the_buffer():
    body, buf = streamed(b"0123", 10, [b"456", b"789GET / HTTP/1.1\r\n"])
    assert body.read(2) == b"01"
    assert body.read() == b"23456789"
    assert body.complete and body.read() == b""
    assert bytes(buf) == b"GET / HTTP/1.1\r\n"


def test_readline_finds_lines_split_across_receives():
    body, _ = streamed(b"ab", 12, [b"c\nde", b"f\n", b"ghij"])
    assert list(body) == [b"abc\n", b"def\n", b"ghij"]


def test_readline_stops_at_its_size_and_at_the_end_of_the_body():
    body, buf = streamed(b"abcdef\nNEXT", 7, [])
    assert body.readline(3) == b"abc"
    assert body.readline() == b"def\n"
    assert bytes(buf) == b"NEXT"


def test_a_client_that_closes_mid_body_is_a_400_for_the_reading_app():
    body, _ = streamed(b"abc", 10, [b"de"])
    with pytest.raises(BadRequest):
        body.read()


def test_100_continue_is_sent_once_when_the_app_first_waits_for_the_body():
    sent = []
    body, _ = streamed(b"", 4, [b"ab", b"cd"])
    body.send_continue = lambda: sent.append(b"100")
    assert body.read() == b"abcd" and sent == [b"100"]


def _reader():
    return RequestReader(Limits(stream_over=1000))


def test_the_reader_hands_out_a_big_body_once_the_in_memory_size_has_arrived():
    reader = _reader()
    reader.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 999)
    assert reader.next_request() is None  # a slow upload costs no thread while it is small
    reader.feed(b"x")
    request = reader.next_request()
    assert type(request.body) is StreamedBody and request.content_length == 5000
    assert request.body.read(1000) == b"x" * 1000


def test_a_big_body_that_expects_100_continue_is_handed_out_with_its_head():
    reader = _reader()
    reader.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    request = reader.next_request()
    assert type(request.body) is StreamedBody and request.expect_continue


def test_a_small_body_is_still_received_whole_first():
    reader = _reader()
    reader.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n" + b"x" * 899)
    assert reader.next_request() is None
    reader.feed(b"x")
    assert reader.next_request().body.read() == b"x" * 900


def _upload_until_answered(port, total, chunk=65536):
    """Send a POST of ``total`` bytes in chunks, looking for an answer after each; (bytes of body sent
    when the answer came, status)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /limited-upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        sent = 0
        piece = b"u" * chunk
        deadline = time.monotonic() + 30
        while sent < total and time.monotonic() < deadline:
            if select.select([sock], [], [], 0.001)[0]:
                break
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += chunk
        return sent, ResponseReader(sock).read()[0]


@pytest.mark.slow  # a timing scenario: its bounds hold on a quiet machine, the serial full run
@pytest.mark.parametrize("threads", ["1", "4"])
def test_an_app_refuses_a_300_mb_upload_before_much_of_it_was_sent(server_factory, tmp_path, threads):
    spool = tmp_path / "spool"
    spool.mkdir()
    server = server_factory(["-w", "1", "--threads", threads, "--spool-dir", str(spool)])
    sent, status = _upload_until_answered(server.port, 300 * 1000 * 1000)
    assert status == 413
    assert sent < 2 * 1000 * 1000, "the 413 came after %d bytes of body" % sent
    assert os.listdir(spool) == []
    with connect(server.port) as sock:  # the worker serves on
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ResponseReader(sock).read()[0] == 200


@pytest.mark.parametrize("threads", ["1", "4"])
def test_a_big_upload_the_app_reads_arrives_whole_and_the_connection_stays_open(server_factory, threads):
    server = server_factory(["-w", "1", "--threads", threads], app="tests.fault_apps:app")
    body = os.urandom(1 << 20) * 5
    with connect(server.port, timeout=30) as sock:
        reader = ResponseReader(sock)
        for expect in (b"", b"Expect: 100-continue\r\n"):
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n" % (len(body), expect))
            if expect:  # asked before the body is sent, as the app reads it
                assert reader.read()[0] == 100
            sock.sendall(body)
            status, headers, answer = reader.read()
            assert status == 200 and answer.split()[1] == hashlib.sha256(body).hexdigest().encode()
            assert headers.get("connection") != ["close"]
