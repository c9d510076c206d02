"""The sans-I/O parser and body receivers, with plain bytes."""
import pytest

from forkwsgi.http.errors import HTTPError
from forkwsgi.http.parser import Limits, RequestReader
from forkwsgi.http.proxy import parse_proxy_v1

from tests.support.hostile import CASES
from tests.support.parser_verdict import outcome


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
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: t\r\n\r\n"
            b"GET /4 HTTP/1.0\r\n\r\n")
    requests, r = requests_from(data, step)
    assert [q.target for q in requests] == ["/1", "/2", "/3", "/4"]
    assert requests[1].body.read() == b"hello"
    assert requests[2].body.read() == b"abcde" and requests[2].content_length == 5
    assert not requests[3].keep_alive and not r.in_progress


def test_feed_says_whether_its_bytes_are_the_first_of_what_comes_next():
    reader = RequestReader(Limits())
    assert reader.feed(b"GET / HTTP/1.1\r\n") is True
    assert reader.feed(b"Host: x\r\n\r\n") is False  # the same head goes on
    assert reader.next_request().target == "/"
    assert reader.feed(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab") is True
    assert reader.next_request() is None  # its body is still coming
    assert reader.feed(b"cde") is False  # the rest of that body: nothing new begins
    assert reader.next_request().body.read() == b"abcde"
    assert reader.feed(b"GET /next HTTP/1.1\r\n") is True


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


# ----- verdicts by byte position, whatever the split

def verdict(data, splits=(), limits=None):
    """The targets of the requests parsed, then the error status (or None), feeding ``data`` cut at ``splits``."""
    requests, end = outcome(data, splits, limits or Limits())
    return [request[1] for request in requests], end[1] if end[0] == "error" else None


def assert_same_verdict_at_every_split(data, expected, limits=None):
    assert verdict(data, limits=limits) == expected
    for cut in range(1, len(data)):
        assert verdict(data, [cut], limits=limits) == expected, cut
    assert verdict(data, range(1, len(data)), limits=limits) == expected


def test_request_line_at_the_limit_is_accepted_even_split_after_its_cr():
    line = b"GET /" + b"a" * (4094 - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == 4094
    data = line + b"\r\nHost: x\r\n\r\n"
    cut = len(line) + 1  # right after the CR
    assert verdict(data) == verdict(data, [cut]) == ([line[4:-9].decode()], None)
    assert verdict(data, range(1, len(data))) == ([line[4:-9].decode()], None)
    longer = b"GET /a" + data[5:]
    assert verdict(longer) == verdict(longer, [cut + 1]) == verdict(longer, [cut]) == ([], 414)


def test_field_at_the_limit_is_accepted_even_split_after_its_cr():
    field = b"X: " + b"v" * (8190 - 3)
    data = b"GET / HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n"
    cut = data.index(field) + len(field) + 1
    assert verdict(data) == verdict(data, [cut]) == (["/"], None)
    data = data.replace(field, field + b"v")
    assert verdict(data) == verdict(data, [cut]) == verdict(data, [cut + 1]) == ([], 431)


@pytest.mark.parametrize("data,expected", [
    (b"GET / HTTP/1.2\r\nX\nY: z\r\n\r\n", 505),  # the request line is judged first
    (b"GET / HTTP/1.1\r\nX\nY: z\r\n\r\n", 400),
    (b"GET /" + b"a" * 70 + b"\nHost: x\r\n\r\n", 414),  # too long before the bare LF
    (b"GET /\nHost: " + b"a" * 70 + b"\r\n\r\n", 400),  # bare LF before anything too long
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70 + b"\r\nBad\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad\r\nX: " + b"a" * 70 + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: v\r\n" * 6 + b"Bad\r\n\r\n", 431),  # the 7th field is one too many
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: v\r\n" * 4 + b"Bad\r\n" + b"X: v\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400),  # CR not followed by LF
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\n", 400),  # the empty line ends in a bare LF
    (b"GET / HTTP/9.9\r\n", 505),  # judged without waiting for the rest of the head
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b" " * 70, 431),  # provably too long, never ends
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b" " * 61 + b"\r", None),  # 64 bytes, then maybe a CRLF
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b" " * 62 + b"\r", 431),
    (b"\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
    (b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
])
def test_first_failing_line_decides_at_every_split(data, expected):
    limits = Limits(request_line=64, fields=6, field_size=64)
    targets, status = verdict(data, limits=limits)
    assert status == expected
    assert_same_verdict_at_every_split(data, (targets, status), limits)


@pytest.mark.parametrize("data, expected", [
    (b"GET /k HTTP/1.1\r\nHost: k\r\nX-K: v\r\nX-Bad: a\x00b\r\n\r\n", 400),  # known lines, one bad
    (b"GET /k HTTP/1.1\nHost: k\r\nX-K: v\r\n\r\n", 400),  # known lines joined by a bare LF
    (b"GET /k HTTP/1.1\r\nHost: k\r\nX-K: v\rX-K: v\r\n\r\n", 400),  # ... by a bare CR
    (b"GET /k HTTP/1.1\r\nHost: k\r\nHost: k\r\n\r\n", 400),  # every line known, the framing is not
    (b"GET /k HTTP/1.1\r\nX-K: v\r\n\r\n", 400),  # no Host
    (b"GET /k HTTP/1.1\r\nHost: k\r\nX-K: v\r\nX-K: v\r\nX-K: v\r\nX-K: v\r\n\r\n", 431),  # too many
    (b"GET /k HTTP/1.1\r\nHost: k\r\nX-K: v\r\n\r\n", None),
    (b"GE\nT /k HTTP/2.0\r\nHost: k\r\n\r\n", 400),  # a new request line: its bytes first (not 505)
])
def test_remembered_lines_never_vouch_for_new_bytes(data, expected):
    """Lines accepted before are known by their text; what joins them, and the head as a whole,
    are still judged, the same way at every split."""
    limits = Limits(fields=4)
    known = b"GET /k HTTP/1.1\r\nHost: k\r\nX-K: v\r\n\r\n"
    assert verdict(known * 2, limits=limits) == (["/k", "/k"], None)  # the second from the caches
    targets, status = verdict(data, limits=limits)
    assert status == expected
    assert_same_verdict_at_every_split(data, (targets, status), limits)


def test_remembered_lines_stay_bounded_and_exact():
    from forkwsgi.http import known
    from forkwsgi.http.fields import LINE_CACHE
    from forkwsgi.http.head import VALID_REQUEST_LINES
    r = reader()
    for number in range(known.MAX + 10):  # fills both caches: they start over
        r.feed(b"GET /%d HTTP/1.1\r\nHost: h\r\nX-Id:  %d \t\r\n\r\n" % (number, number))
        request = r.next_request()
        assert (request.target, request.headers) == ("/%d" % number, [("host", "h"), ("x-id", str(number))])
    assert len(LINE_CACHE) <= known.MAX and len(VALID_REQUEST_LINES) <= known.MAX
    long_line = "X-Long: " + "v" * known.TEXT_MAX
    r.feed(b"GET / HTTP/1.1\r\nHost: h\r\n%s\r\n\r\n" % long_line.encode())
    assert r.next_request().headers[-1] == ("x-long", "v" * known.TEXT_MAX)
    assert long_line not in LINE_CACHE  # hashing it would cost more than parsing it


def test_spaces_tabs_and_obs_text_in_values():
    data = b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \t a \t b \t\r\nX-B: \xa0v\xa0\r\nX-C:\r\nX-D: \x80\xff\r\n\r\n"
    (request,), _ = requests_from(data)
    assert request.headers[1:] == [("x-a", "a \t b"), ("x-b", "\xa0v\xa0"), ("x-c", ""), ("x-d", "\x80\xff")]
    (split,), _ = requests_from(data, step=1)
    assert split.headers == request.headers


# ----- request targets, CONNECT, Upgrade

@pytest.mark.parametrize("line,status", [
    (b"GET /a?b HTTP/1.1", None),
    (b"POST http://example.com/a?b HTTP/1.1", None),
    (b"GET HTTPS://example.com HTTP/1.1", None),
    (b"OPTIONS * HTTP/1.1", None),
    (b"BREW /pot HTTP/1.1", None),  # any token is a method
    (b"GET * HTTP/1.1", 400),
    (b"GET example.com:443 HTTP/1.1", 400),
    (b"GET foo/bar HTTP/1.1", 400),
    (b"GET http:// HTTP/1.1", 400),
    (b"GET ftp://example.com/ HTTP/1.1", 400),
    (b"CONNECT example.com:443 HTTP/1.1", 501),
    (b"CONNECT [::1]:443 HTTP/1.1", 501),
    (b"CONNECT / HTTP/1.1", 400),
    (b"CONNECT example.com HTTP/1.1", 400),
    (b"GET / HTTP/1.1 ", 400),
    (b"GET\t/ HTTP/1.1", 400),
    (b"GET / HTTP/1.\xb2", 400),
    (b"GET / HTTP/10.0", 505),
])
def test_request_target_forms(line, status):
    targets, got = verdict(line + b"\r\nHost: x\r\n\r\n")
    assert got == status
    if status is None:
        assert targets == [line.split(b" ")[1].decode()]


def test_connect_refusal_says_why():
    with pytest.raises(HTTPError) as info:
        requests_from(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert info.value.status == 501 and "tunnel" in info.value.detail


def test_upgrade_is_a_plain_request_that_closes_the_connection():
    (request, after), _ = requests_from(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                                        b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not request.keep_alive and ("upgrade", "h2c") in request.headers
    assert after.keep_alive  # the parser reads on; the server closes after the first response
    (old,), _ = requests_from(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nUpgrade: x\r\n\r\n")
    assert not old.keep_alive


# ----- Expect

@pytest.mark.parametrize("headers,status,expects", [
    (b"Expect: 100-continue\r\n", None, True),
    (b"Expect: 100-Continue\r\n", None, True),
    (b"Expect: 100-continue, \r\n", None, True),
    (b"Expect: 100-continue\r\nExpect: 100-continue\r\n", None, True),
    (b"Expect: foo\r\nExpect: 100-continue\r\n", 417, None),
    (b"Expect: 100-continue\r\nExpect: foo\r\n", 417, None),
    (b"Expect: 100-continue, foo\r\n", 417, None),
    (b"Expect: 100-continue;x=1\r\n", 417, None),
])
def test_every_expectation_is_checked(headers, status, expects):
    data = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n" + headers + b"\r\na"
    r = reader()
    r.feed(data)
    if status is not None:
        with pytest.raises(HTTPError) as info:
            r.next_request()
        assert info.value.status == status
    else:
        assert r.next_request().expect_continue is expects


def test_http10_ignores_expect():
    (request,), _ = requests_from(b"POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: foo\r\n\r\na")
    assert not request.expect_continue


# ----- empty lines, in_progress, feed_eof

def test_empty_lines_before_a_request_are_not_a_request_in_progress():
    r = reader()
    for piece in (b"\r", b"\n", b"\r\n", b"\r"):
        r.feed(piece)
        assert r.next_request() is None
        assert not r.in_progress
        r.feed_eof()  # a clean close
    r.feed(b"\nG")
    assert r.next_request() is None and r.in_progress
    r.feed(b"ET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n")
    assert r.next_request().target == "/" and not r.in_progress


def test_empty_lines_are_bounded_per_request():
    r = reader()
    r.feed(b"\r\n" * 4 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\r\n" * 4)
    assert r.next_request() is not None and r.next_request() is None
    r.feed(b"\r\n")
    with pytest.raises(HTTPError) as info:
        r.next_request()
    assert info.value.status == 400


@pytest.mark.parametrize("data", [
    b"G",
    b"GET / HTTP/1.1\r\nHost: x\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r",
    b"\r\n\nGET",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
])
def test_feed_eof_refuses_a_partial_request(data):
    r = reader()
    r.feed(data)
    try:
        assert r.next_request() is None
    except HTTPError:
        return
    with pytest.raises(HTTPError) as info:
        r.feed_eof()
    assert info.value.status == 400


@pytest.mark.parametrize("data", [b"", b"\r\n", b"\r\n\r", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n",
                                  b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"])
def test_feed_eof_between_requests_is_clean(data):
    requests, r = requests_from(data)
    r.feed_eof()


# ----- trailers and chunk lines

@pytest.mark.parametrize("name", [b"Content-Length", b"transfer-encoding", b"HOST", b"Content-Encoding",
                                  b"Content-Type", b"Content-Range", b"Trailer", b"TE", b"Connection",
                                  b"Keep-Alive", b"Upgrade", b"Expect", b"Max-Forwards", b"Authorization",
                                  b"Proxy-Authorization", b"Cookie", b"Set-Cookie", b"WWW-Authenticate",
                                  b"Proxy-Authenticate", b"Cache-Control", b"Age", b"Expires", b"Date",
                                  b"Location", b"Retry-After", b"Vary", b"Warning", b"Range", b"If-Match",
                                  b"If-None-Match", b"If-Modified-Since", b"If-Unmodified-Since", b"If-Range"])
def test_forbidden_trailers(name):
    data = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n" + name + b": 1\r\n\r\n"
    assert verdict(data) == ([], 400)


def test_allowed_trailers_and_trailer_limits():
    body = b"1\r\na\r\n0\r\nX-Checksum: abc\r\nServer-Timing: x;dur=1\r\n\r\n"
    data = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    assert verdict(data) == (["/"], None)
    limits = Limits(fields=1, field_size=20)
    assert verdict(data, limits=limits) == ([], 431)
    long_trailer = data.replace(b"abc", b"c" * 20)
    assert_same_verdict_at_every_split(long_trailer, ([], 431), Limits(field_size=20))


@pytest.mark.parametrize("line,ok", [
    (b"a", True), (b"A;x", True), (b"a ; x = y", True), (b'a;x="q \\" ;"', True), (b"a;x;y=1;z", True),
    (b"a  ", True), (b"a;x=", False), (b"a;", False), (b"a;x y", False), (b'a;x="open', False),
    (b"a;=1", False), (b"a,1", False), (b"0" * 15 + b"1", True), (b"0" * 16 + b"1", False), (b"", False),
    (b"a;x=\"\x7f\"", False), (b"a" + b" " * 4000 + b";", False),
])
def test_chunk_lines(line, ok):
    data = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + line + b"\r\n"
            + b"x" * int(line[:1] or b"0", 16) + b"\r\n0\r\n\r\n")
    if line.startswith(b"0"):
        data = data.replace(line + b"\r\n", line + b"\r\nx", 1)
    assert verdict(data)[1] == (None if ok else 400)


# ----- the buffer, seen from outside

def test_buffer_changed_from_outside_is_parsed_again():
    r = reader()
    r.feed(b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHo")
    assert parse_proxy_v1(r.buf) == (("10.1.2.3", 5555),)
    assert r.next_request() is None
    r.feed(b"st: x\r\n\r\n")
    assert r.next_request().target == "/"
    r.feed(b"GET /a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n")
    assert r.next_request() is None
    r.buf[:] = b"GET /b HTTP/1.1\r\n"  # shorter: the lines judged before are gone
    r.feed(b"Host: b\r\n\r\n")
    request = r.next_request()
    assert (request.target, request.headers) == ("/b", [("host", "b")])
    r.feed(b"GET /next HTTP/1.1\r\nHost: y\r\n")
    assert r.next_request() is None
    copy = reader()
    copy.feed(bytes(r.buf))
    r.feed(b"\r\n")
    copy.feed(b"\r\n")
    assert r.next_request().headers == copy.next_request().headers == [("host", "y")]
    r.feed(b"GET /a HTTP/1.1\r\nX-Long: aaaa")
    assert r.next_request() is None
    r.buf.clear()
    r.feed(b"GET /b HTTP/1.1\r\nHost: z\r\n\r\n")
    assert r.next_request().target == "/b"


def test_spooling_errors_propagate(tmp_path):
    size = (1 << 20) + 10
    limits = Limits(spool_dir=str(tmp_path / "missing"))
    r = reader(limits)
    r.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    assert r.next_request() is None
    r.feed(b"z" * size)
    with pytest.raises(OSError):
        r.next_request()
    ok = reader(Limits(spool_dir=str(tmp_path)))
    ok.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + b"z" * size)
    assert len(ok.next_request().body.read()) == size


def test_feed_eof_with_complete_requests_not_taken_yet():
    r = reader()
    r.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not parsed yet (a worker may queue it raw)
    r.feed_eof()
    r.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nab")
    with pytest.raises(HTTPError) as info:
        r.feed_eof()
    assert info.value.status == 400
    assert r.next_request().target == "/" and r.next_request() is None  # feed_eof took nothing
