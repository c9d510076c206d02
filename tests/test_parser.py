"""The sans-I/O parser and body receivers, with plain bytes."""
import pytest

from forkwsgi.http.errors import HTTPError
from forkwsgi.http.parser import Limits, RequestReader
from forkwsgi.http.proxy import parse_proxy_v1

from .hostile import CASES


def reader(limits=None):
    return RequestReader(limits or Limits())


def requests_from(data, step=None, limits=None):
    """Feed ``data`` (all at once, or ``step`` bytes at a time) and collect complete requests."""
    r = reader(limits)
    out = []
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        r.feed(piece)
        while True:
            request = r.next_request()
            if request is None:
                break
            out.append(request)
    return out, r


def test_simple_get():
    (request,), r = requests_from(b"GET /a?b=1 HTTP/1.1\r\nHost: example\r\nX-A:  padded \t\r\n\r\n")
    assert (request.method, request.target, request.version) == ("GET", "/a?b=1", "HTTP/1.1")
    assert request.headers == [("host", "example"), ("x-a", "padded")]
    assert request.keep_alive and request.body is None and not r.in_progress


@pytest.mark.parametrize("step", [None, 1, 7])
def test_pipelined_requests_any_split(step):
    data = (b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
            b"GET /4 HTTP/1.0\r\n\r\n")
    requests, r = requests_from(data, step)
    assert [q.target for q in requests] == ["/1", "/2", "/3", "/4"]
    assert requests[1].body.read() == b"hello"
    assert requests[2].body.read() == b"abcde" and requests[2].content_length == 5
    assert not requests[3].keep_alive and not r.in_progress


def test_leading_empty_lines_are_ignored():
    (request,), _ = requests_from(b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert request.target == "/"


def test_connection_semantics():
    (close,), _ = requests_from(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n")
    (keep10,), _ = requests_from(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert not close.keep_alive and keep10.keep_alive


def test_expect_continue_signalled_once_before_body():
    r = reader()
    r.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert r.next_request() is None
    assert r.needs_continue() and not r.needs_continue()
    r.feed(b"abc")
    assert r.next_request().body.read() == b"abc"


def test_body_larger_than_spool_goes_to_a_file():
    size = (1 << 20) + 10
    (request,), _ = requests_from(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
                                  + b"z" * size, step=65536)
    assert len(request.body.read()) == size


@pytest.mark.parametrize("name,raw,status", CASES, ids=[case[0] for case in CASES])
def test_hostile_request_refused_with_exact_status(name, raw, status):
    limits = Limits(request_line=200, fields=20, field_size=200, body=1000)
    with pytest.raises(HTTPError) as info:
        requests_from(raw, limits=limits)
    assert info.value.status == status, info.value.detail


def test_incomplete_head_waits_without_error():
    r = reader()
    r.feed(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert r.next_request() is None and r.in_progress


def test_proxy_protocol_v1():
    buf = bytearray(b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 80\r\nGET")
    assert parse_proxy_v1(buf) == (("10.1.2.3", 5555),) and buf == b"GET"
    assert parse_proxy_v1(bytearray(b"PROXY UNKNOWN\r\n")) == (None,)
    assert parse_proxy_v1(bytearray(b"PROXY TCP4 1.2")) is None
    for bad in (b"GET / HTTP/1.1\r\n", b"PROXY TCP4 ::1 ::1 1 2\r\n", b"PROXY TCP4 1.2.3.4 1.2.3.4 99999 1\r\n"):
        with pytest.raises(HTTPError):
            parse_proxy_v1(bytearray(bad))
