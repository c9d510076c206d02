"""The head scanners (forkwsgi/http/scan.py), called directly: the Python reference and the compiled one.

A scanner only ever accepts or declines (None, "in doubt"): it must accept
well-formed heads with exactly what the lines say, and decline everything it
does not take, leaving the verdict to the parser's line-by-line path. Where
the compiled one accepts, the Python one must give the same answer.
"""
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forkwsgi.http import scan
from forkwsgi.http.head import Request
from forkwsgi.http.parser import Limits

from tests.support.parser_verdict import outcome
from tests.support.server import ROOT

NOT_BUILT = ("the compiled head scanner is not built "
             "(no C compiler at install, FORKWSGI_NO_EXTENSIONS or FORKWSGI_PURE_PYTHON)")
compiled_only = pytest.mark.skipif(scan.compiled_scan_head is None, reason=NOT_BUILT)
SCANNERS = [pytest.param(scan.python_scan_head, id="python"),
            pytest.param(scan.compiled_scan_head, id="compiled", marks=compiled_only)]
each_scanner = pytest.mark.parametrize("scanner", SCANNERS)

DEFAULT = Limits()


def run(scanner, head, limits=DEFAULT, need_request_line=True, kind=bytearray):
    """The scanner's answer for ``head`` (its lines, without the CRLFCRLF that ends it), as the parser asks."""
    buf = kind(head + b"\r\n\r\n")
    return scanner(buf, 0, len(head), need_request_line, limits.fields, limits.field_size, limits.request_line)


def decline(*args):
    """A scanner that accepts nothing: the parser's line-by-line path alone."""
    return None


def line_by_line(head, limits=DEFAULT):
    """The parser's verdict on ``head`` read line by line (no scanner)."""
    return outcome(head + b"\r\n\r\n", (), limits, decline)


# ----- heads a scanner accepts, and what it must make of them

HELLO = b"GET / HTTP/1.1\r\nHost: localhost:8000"
BROWSER = (b"GET /static/app.js?v=3 HTTP/1.1\r\n"
           b"Host: example.com\r\n"
           b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0\r\n"
           b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
           b"Accept-Language: en-US,en;q=0.5\r\n"
           b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
           b"Referer: https://example.com/\r\n"
           b"Cookie: session=abc123; theme=dark\r\n"
           b"Connection: keep-alive\r\n"
           b"Sec-Fetch-Dest: script")
PROXY = (b"POST /api/v1/orders HTTP/1.1\r\n"
         b"Host: orders.internal\r\n"
         b"X-Request-Id: 7f0c1a52-9a4e-4d0b-8c59-2f3f7e1d6a11\r\n"
         b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
         b"X-Forwarded-For: 203.0.113.7, 10.0.0.2\r\n"
         b"X-Forwarded-Proto: https\r\n"
         b"Content-Type: application/json\r\n"
         b"Content-Length: 2")

ACCEPTED = {
    "hello": (HELLO, (("GET", "/", "HTTP/1.1"), [("host", "localhost:8000")])),
    "browser-like": (BROWSER, (("GET", "/static/app.js?v=3", "HTTP/1.1"), [
        ("host", "example.com"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("referer", "https://example.com/"),
        ("cookie", "session=abc123; theme=dark"),
        ("connection", "keep-alive"),
        ("sec-fetch-dest", "script")])),
    "proxy-like": (PROXY, (("POST", "/api/v1/orders", "HTTP/1.1"), [
        ("host", "orders.internal"),
        ("x-request-id", "7f0c1a52-9a4e-4d0b-8c59-2f3f7e1d6a11"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("x-forwarded-for", "203.0.113.7, 10.0.0.2"),
        ("x-forwarded-proto", "https"),
        ("content-type", "application/json"),
        ("content-length", "2")])),
    "OWS trimmed, tabs too": (b"GET / HTTP/1.1\r\nHost:x\r\nX-A:  \t a b \t \r\nX-B:\tv\t\r\nX-D: \t ",
                              (("GET", "/", "HTTP/1.1"), [("host", "x"), ("x-a", "a b"), ("x-b", "v"), ("x-d", "")])),
    "obs-text in values": (b"GET / HTTP/1.1\r\nHost: x\r\nX-O: caf\xe9 \x80\xff\r\nX-N: \xa0v\xa0",
                           (("GET", "/", "HTTP/1.1"), [("host", "x"), ("x-o", "caf\xe9 \x80\xff"),
                                                       ("x-n", "\xa0v\xa0")])),  # NBSP is no OWS
    "empty value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-C:", (("GET", "/", "HTTP/1.1"), [("host", "x"), ("x-c", "")])),
    "names in any case": (b"GET / HTTP/1.1\r\nHOST: x\r\ncontent-type: a\r\nX-MiXeD-CaSe: b\r\nX!#$%&'*+-.^_`|~9: c",
                          (("GET", "/", "HTTP/1.1"), [("host", "x"), ("content-type", "a"), ("x-mixed-case", "b"),
                                                      ("x!#$%&'*+-.^_`|~9", "c")])),
    "OPTIONS *": (b"OPTIONS * HTTP/1.1\r\nHost: x", (("OPTIONS", "*", "HTTP/1.1"), [("host", "x")])),
    "HEAD": (b"HEAD /h HTTP/1.1\r\nHost: x", (("HEAD", "/h", "HTTP/1.1"), [("host", "x")])),
    "POST": (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0",
             (("POST", "/p", "HTTP/1.1"), [("host", "x"), ("content-length", "0")])),
    "PUT": (b"PUT /u?x=%20 HTTP/1.1\r\nHost: x", (("PUT", "/u?x=%20", "HTTP/1.1"), [("host", "x")])),
    "other token method": (b"PURGE /c HTTP/1.1\r\nHost: x", (("PURGE", "/c", "HTTP/1.1"), [("host", "x")])),
    "HTTP/1.0, no fields": (b"GET /old HTTP/1.0", (("GET", "/old", "HTTP/1.0"), [])),
}


@each_scanner
@pytest.mark.parametrize("name", ACCEPTED)
def test_accepts_well_formed_heads(scanner, name):
    head, expected = ACCEPTED[name]
    for _ in range(3):  # again: the Python scanner answers repeated lines from what it remembers
        assert run(scanner, head) == expected


@each_scanner
@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_heads_parse_as_line_by_line(scanner, name):
    """What the parser makes of a head the scanner accepts is what it makes of it line by line."""
    head = ACCEPTED[name][0]
    data = head + b"\r\n\r\n" + (b"{}" if head is PROXY else b"")
    assert outcome(data, (), DEFAULT, scanner) == outcome(data, (), DEFAULT, decline)
    assert outcome(data, (), DEFAULT, scanner)[0], "the head was refused"


# ----- heads a scanner must decline (the line-by-line path refuses them all)

SMALL = Limits(request_line=20, fields=2, field_size=12)
DOUBTS = {
    "bare LF after the request line": (b"GET / HTTP/1.1\nHost: x", DEFAULT),
    "bare LF between fields": (b"GET / HTTP/1.1\r\nHost: x\nX: y", DEFAULT),
    "lone CR in the request line": (b"GET / HTTP/1.1\rHost: x", DEFAULT),
    "lone CR in a value": (b"GET / HTTP/1.1\r\nHost: x\rX: y", DEFAULT),
    "CR at the end of a value": (b"GET / HTTP/1.1\r\nHost: x\r", DEFAULT),
    "NUL in a value": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b", DEFAULT),
    "CTL in a value": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x1bb", DEFAULT),
    "vertical tab in a value": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x0bb", DEFAULT),
    "DEL in a value": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb", DEFAULT),
    "DEL in the target": (b"GET /\x7f HTTP/1.1\r\nHost: x", DEFAULT),
    "NUL in the target": (b"GET /\x00 HTTP/1.1\r\nHost: x", DEFAULT),
    "space before the colon": (b"GET / HTTP/1.1\r\nHost : x", DEFAULT),
    "obs-fold with a space": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded", DEFAULT),
    "obs-fold with a tab": (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tfolded", DEFAULT),
    "no colon": (b"GET / HTTP/1.1\r\nHost: x\r\nBad", DEFAULT),
    "empty name": (b"GET / HTTP/1.1\r\nHost: x\r\n: v", DEFAULT),
    "tab in a name": (b"GET / HTTP/1.1\r\nHost: x\r\nX\tY: z", DEFAULT),
    "obs-text in a name": (b"GET / HTTP/1.1\r\nHost: x\r\nX-\x80: v", DEFAULT),
    "request line of 2 parts": (b"GET /\r\nHost: x", DEFAULT),
    "request line of 4 parts": (b"GET / HTTP/1.1 x\r\nHost: x", DEFAULT),
    "two spaces in the request line": (b"GET  / HTTP/1.1\r\nHost: x", DEFAULT),
    "tab in the request line": (b"GET\t/ HTTP/1.1\r\nHost: x", DEFAULT),
    "empty method": (b" / HTTP/1.1\r\nHost: x", DEFAULT),
    "method not a token": (b"G(T / HTTP/1.1\r\nHost: x", DEFAULT),
    "lower-case http/1.1": (b"GET / http/1.1\r\nHost: x", DEFAULT),
    "HTTP/1.2": (b"GET / HTTP/1.2\r\nHost: x", DEFAULT),
    "HTTP/2.0": (b"GET / HTTP/2.0\r\nHost: x", DEFAULT),
    "CONNECT authority-form": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443", DEFAULT),
    "CONNECT origin-form": (b"CONNECT / HTTP/1.1\r\nHost: x", DEFAULT),
    "asterisk but not OPTIONS": (b"GET * HTTP/1.1\r\nHost: x", DEFAULT),
    "target of no form": (b"GET foo/bar HTTP/1.1\r\nHost: x", DEFAULT),
    "0x80 in the target": (b"GET /caf\x80 HTTP/1.1\r\nHost: x", DEFAULT),
    "request line too long": (b"GET /0123456789 HTTP/1.1\r\nHost: x", SMALL),  # 25 > 20
    "field line too long": (b"GET / HTTP/1.1\r\nHost: x\r\nX-L: 123456789", SMALL),  # 13 > 12
    "one field too many": (b"GET / HTTP/1.1\r\nHost: x\r\nX: 1\r\nY: 2", SMALL),
}


@each_scanner
@pytest.mark.parametrize("name", DOUBTS)
def test_declines_what_it_does_not_take(scanner, name):
    head, limits = DOUBTS[name]
    assert run(scanner, head, limits) is None
    assert run(scanner, head, limits) is None  # and again: nothing of it was remembered as valid


@pytest.mark.parametrize("name", DOUBTS)
def test_declined_heads_are_refused_line_by_line(name):
    """Each doubt above is a head the parser refuses: a scanner accepting it would change a verdict."""
    head, limits = DOUBTS[name]
    requests, end = line_by_line(head, limits)
    assert requests == [] and end[0] == "error", (requests, end)


@each_scanner
def test_limits_are_inclusive(scanner):
    """A line exactly at its limit, and exactly the allowed number of fields, are accepted."""
    head = b"GET /012345 HTTP/1.1\r\nX-L: 1234567\r\nY: 2"  # request line 20, field line 12, 2 fields
    assert run(scanner, head, SMALL) == (("GET", "/012345", "HTTP/1.1"), [("x-l", "1234567"), ("y", "2")])


@each_scanner
def test_absolute_form_is_judged_as_line_by_line(scanner):
    """The compiled scanner leaves absolute-form targets to the Python path; the Python scanner may
    accept them, then with what the line-by-line path makes of them."""
    head = b"GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com"
    found = run(scanner, head)
    if scanner is scan.compiled_scan_head:
        assert found is None
    elif found is not None:
        assert found == (("GET", "http://example.com/p?q=1", "HTTP/1.1"), [("host", "example.com")])
    assert outcome(head + b"\r\n\r\n", (), DEFAULT, scanner) == line_by_line(head)
    assert line_by_line(head)[0][0][1] == "http://example.com/p?q=1"


# ----- where the parser asks: fields only, a range in the middle of its buffer

@each_scanner
def test_fields_only_when_the_request_line_was_judged(scanner):
    """need_request_line=False: every line is a field line, and no request line comes back."""
    assert run(scanner, b"Host: x\r\nX-A: b", need_request_line=False) == (None, [("host", "x"), ("x-a", "b")])
    assert run(scanner, b"GET / HTTP/1.1\r\nHost: x", need_request_line=False) is None  # no colon in a field


@each_scanner
def test_range_in_the_middle_of_the_buffer(scanner):
    """Only buf[start:end] is read: bytes around it, even ones no head may hold, do not count."""
    head = b"GET /m HTTP/1.1\r\nHost: x"
    buf = bytearray(b"\x00junk\n\r" + head + b"\r\n\r\n\x00\rmore")
    start = buf.index(b"GET")
    end = start + len(head)
    assert scanner(buf, start, end, True, 100, 8190, 4094) == (("GET", "/m", "HTTP/1.1"), [("host", "x")])
    fields = buf.index(b"Host")
    assert scanner(buf, fields, end, False, 100, 8190, 4094) == (None, [("host", "x")])
    assert scanner(buf, start, end - 1, True, 100, 8190, 4094) == (("GET", "/m", "HTTP/1.1"), [("host", "")])


@each_scanner
def test_empty_range(scanner):
    """end <= start (the head ended right after the lines already judged): no fields, and no request
    line where one is needed."""
    buf = bytearray(b"GET / HTTP/1.1\r\n\r\n")
    for start, end in ((16, 16), (16, 14)):  # (16, 14): the parser's CRLFCRLF search starts 2 bytes back
        assert scanner(buf, start, end, False, 100, 8190, 4094) == (None, [])
        assert scanner(buf, start, end, True, 100, 8190, 4094) is None


@each_scanner
def test_bytes_and_bytearray_alike(scanner):
    for head, expected in ACCEPTED.values():
        assert run(scanner, head, kind=bytes) == run(scanner, head, kind=bytearray) == expected
    assert run(scanner, b"GET / HTTP/1.1\r\nX: \x00", kind=bytes) is None


@compiled_only
def test_compiled_scanner_lets_go_of_the_buffer():
    """The parser grows and cuts its bytearray right after a scan: the scanner must not hold it exported."""
    compiled = scan.compiled_scan_head
    buf = bytearray(HELLO + b"\r\n\r\n")
    assert compiled(buf, 0, len(HELLO), True, 100, 8190, 4094) is not None
    buf += b"x"  # BufferError if it were still exported
    assert compiled(buf, 0, len(HELLO), True, 1, 8190, 4) is None  # declined
    buf += b"x"
    with pytest.raises(ValueError):
        compiled(buf, 0, len(buf) + 1, True, 100, 8190, 4094)  # a range outside the buffer
    buf += b"x"
    del buf[:4]
    assert len(buf) == len(HELLO) + 3


# ----- the compiled scanner never accepts anything the Python one would not, nor differently

ALPHABET = [b"\r\n", b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b"a", b"Z", b"0", b"/", b"*", b"-", b"\x00", b"\x7f",
            b"\x80", b"\xa0", b"\xff", b"(", b"GET", b"HTTP/1.1", b"HTTP/1.0", b"Host", b"X-A", b"\r\n\r\n"]
HEAD_NOISE = st.binary(max_size=80) | st.lists(st.sampled_from(ALPHABET), max_size=40).map(b"".join)
METHODS = st.sampled_from(["GET", "POST", "HEAD", "PUT", "OPTIONS"] * 3 + ["CONNECT", "PURGE", "get", "G(T", ""])
TARGETS = st.sampled_from(["/", "/a?b=1", "*"] * 4 + ["http://h/p", "https://h", "h:443", "/\x7f", "/\x80", "/ /", ""])
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0"] * 4 + ["HTTP/1.2", "http/1.1", "HTTP/1.1 ", "HTTP/1"])
GOOD_FIELD_LINES = [b"Host: x", b"X-A:  \t a \t", b"X-C:", b"x-o: \xe9\xff", b"Cookie: a=1; b=2",
                    b"X-Request-Id: 7f0c1a52-9a4e", b"traceparent: 00-4bf9-00f0-01", b"X-Long: " + b"v" * 40,
                    # names the compiled scanner shares one str for, in any case, and near misses of them
                    b"USER-AGENT: x/1", b"Content-Type: text/plain", b"accept-language: \xe9", b"TE: trailers",
                    b"X-Forwarded-Forx: y", b"Hos: h", b"Upgrade-Insecure-Requests: 1", b"Sec-CH-UA-Platform: \"L\""]
FIELD_LINES = st.sampled_from(GOOD_FIELD_LINES * 6 + [
    b"Host : x", b" folded", b"\tfolded", b"Bad", b": v", b"X: a\x00b", b"X: \x7f", b"X-\x80: v", b"X: a\rb",
    b"X: a\nb", b""])
SEPARATORS = st.sampled_from([b"\r\n"] * 16 + [b"\n", b"\r", b"\r\r\n", b" \r\n"])
# (fields, field_size, request_line): the parser's defaults and the small ones of the property tests,
# or any small ones (lines near their limits)
KNOWN_LIMITS = st.sampled_from([(100, 8190, 4094), (4, 30, 40), (2, 12, 20)])
SCAN_LIMITS = st.one_of(KNOWN_LIMITS, KNOWN_LIMITS, st.tuples(st.integers(0, 8), st.integers(0, 60),
                                                              st.integers(0, 60)))


GOOD_REQUEST_LINES = [b"GET / HTTP/1.1", b"GET /a?b=1 HTTP/1.1", b"POST /p HTTP/1.1", b"HEAD /h HTTP/1.0",
                      b"OPTIONS * HTTP/1.1", b"PURGE /c HTTP/1.1"]
MUTATIONS = b"\r\n :\t\x00\x7f\x80\xa0a/*"


@st.composite
def assembled_heads(draw):
    """Heads of known lines: well formed or mixed with bad ones, then maybe a byte changed here or there."""
    if draw(st.booleans()):  # well formed, so that the scanners accept and their answers are compared
        head = draw(st.sampled_from(GOOD_REQUEST_LINES))
        for field in draw(st.lists(st.sampled_from(GOOD_FIELD_LINES), max_size=6)):
            head += b"\r\n" + field
    else:
        head = ("%s %s %s" % (draw(METHODS), draw(TARGETS), draw(VERSIONS))).encode("latin-1")
        for field in draw(st.lists(FIELD_LINES, max_size=6)):
            head += draw(SEPARATORS) + field
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        at = draw(st.integers(0, len(head)))
        byte = bytes([draw(st.sampled_from(MUTATIONS))])
        head = head[:at] + byte + head[at + draw(st.integers(0, 1)):]  # inserted, or in place of one
    return head


@compiled_only
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=st.one_of(assembled_heads(), assembled_heads(), HEAD_NOISE), prefix=st.binary(max_size=8),
       after=st.booleans(), limits=SCAN_LIMITS, kind=st.sampled_from([bytes, bytearray]))
def test_compiled_accepts_only_what_python_accepts_the_same(head, prefix, after, limits, kind):
    """Random and assembled heads, ranges and limits, asked as the parser asks (``end`` at the first
    CRLFCRLF from the line at ``start``; fields only from the line after the first): the compiled
    scanner's answer, where it gives one, is the Python scanner's."""
    buf = kind(prefix + head + b"\r\n\r\n" + prefix)
    start = len(prefix)
    end = buf.find(b"\r\n\r\n", start)
    need_request_line = True
    if after:  # the request line was judged already: the fields after the first CRLF
        start = buf.find(b"\r\n", start) + 2
        end = buf.find(b"\r\n\r\n", start - 2)  # the parser looks from the CRLF before the line
        need_request_line = False
    args = (start, end, need_request_line) + limits
    compiled = scan.compiled_scan_head(buf, *args)
    python = scan.python_scan_head(buf, *args)
    if compiled is not None:
        assert python == compiled
        assert _ascii_flags(compiled) == _ascii_flags(python), "every str canonical, as decode() makes it"


def _ascii_flags(found):
    """str.isascii() of each text in a scanner's answer: it reads a flag, which a str built wrongly in C
    could leave unset for ASCII text (then equal, yet hashed and compared slower, and isascii() False)."""
    start_line, headers = found
    return [text.isascii() for text in (start_line or ()) + tuple(text for pair in headers for text in pair)]


@compiled_only
@pytest.mark.parametrize("byte", [b"\x00", b"\x08", b"\t", b"\n", b"\r", b"\x1f", b"\x7f", b"\x80", b"\xff"])
def test_each_byte_of_a_long_line_is_judged_wherever_it_falls(byte):
    """The compiled scanner reads long lines eight bytes at a time: a control byte (or DEL, or obs-text)
    at any offset in any word gets the Python scanner's answer."""
    for at in range(48):
        value = bytearray(b"v" * 48)
        value[at:at + 1] = byte
        buf = b"GET / HTTP/1.1\r\nX-Long: " + bytes(value) + b"\r\nHost: h\r\n\r\n"
        args = (0, buf.index(b"\r\n\r\n"), True, 100, 8190, 4094)
        compiled, python = scan.compiled_scan_head(buf, *args), scan.python_scan_head(buf, *args)
        assert compiled == python, (byte, at)


# ----- whole requests in one read (scan.whole_head): the parser's own path is the reference

whole_only = pytest.mark.skipif(scan.whole_head is None, reason=NOT_BUILT)


# Every field of head.Request, in the order whole_head fills them (compiled, the class has no __slots__)
REQUEST_FIELDS = ("method", "target", "version", "headers", "content_length", "chunked", "keep_alive",
                  "expect_continue", "body")


def request_fields(request):
    """Every field of a request, each one set, as tests.support.parser_verdict.outcome lists them."""
    values = [getattr(request, name) for name in REQUEST_FIELDS]
    values[3] = tuple(values[3])
    return tuple(values)


def test_the_fields_listed_are_all_a_request_has():
    request = Request("GET", "/", "HTTP/1.1", [])
    assert set(REQUEST_FIELDS) == {name for name in dir(request) if not name.startswith("_")}


def by_whole_head(data, limits=DEFAULT):
    return scan.whole_head(data, Request, limits.fields, limits.field_size, limits.request_line)


@whole_only
@pytest.mark.parametrize("data", [
    HELLO + b"\r\n\r\n",
    BROWSER + b"\r\n\r\n",
    b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nHost: h\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
])
def test_a_whole_plain_request_is_read_at_once_as_line_by_line(data):
    request = by_whole_head(data)
    assert request is not None
    (expected,), end = outcome(data, (), DEFAULT, decline)
    assert request_fields(request)[:-1] == expected[:-1] and request.body is None
    assert end[:2] == ("idle", False)


@whole_only
@pytest.mark.parametrize("data", [
    HELLO + b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",  # pipelined
    HELLO + b"\r\n\r\nGET",  # the start of the next one
    HELLO,  # not whole yet
    b"\r\n" + HELLO + b"\r\n\r\n",  # an empty line before it
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",  # a body to come
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 00\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",  # absolute-form: the Python path's
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n",
])
def test_anything_else_is_left_to_the_line_by_line_path(data):
    assert by_whole_head(data) is None


FRAMING_LINES = [b"Host: h", b"HOST: h", b"Connection: close", b"connection: KEEP-ALIVE", b"Connection: Upgrade",
                 b"Content-Length: 0", b"Content-Length: 1", b"Content-Length: +0", b"Transfer-Encoding: chunked",
                 b"Expect: 100-continue", b"Upgrade: h2c"]


@st.composite
def plain_requests(draw):
    """Whole requests: mostly well formed, with framing lines (one Host, mostly), now and then a byte
    changed, an empty line or a next request after them."""
    lines = [draw(st.sampled_from(GOOD_REQUEST_LINES))]
    lines += draw(st.lists(st.sampled_from(GOOD_FIELD_LINES[1:] * 4 + FRAMING_LINES[2:]), max_size=5))
    lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(FRAMING_LINES[:2] * 6 + [b""])))
    data = b"\r\n".join(lines) + b"\r\n\r\n"
    if draw(st.sampled_from([False, False, False, True])):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + bytes([draw(st.sampled_from(MUTATIONS))]) + data[at + draw(st.integers(0, 1)):]
    return data + draw(st.sampled_from([b""] * 6 + [b"\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"]))


@whole_only
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(plain_requests(), plain_requests(), plain_requests(), HEAD_NOISE),
       limits=st.one_of(st.just((100, 8190, 4094)), SCAN_LIMITS))
def test_whole_head_answers_as_the_parser_does(data, limits):
    """Where the whole-request reader gives a request, a reader without it gives the same request
    from the same bytes, and nothing more."""
    fields, field_size, request_line = limits
    parsing = Limits(request_line=request_line, fields=fields, field_size=field_size)
    request = by_whole_head(data, parsing)
    if request is not None:
        requests, end = outcome(data, (), parsing, decline)
        assert [request_fields(request)] == requests and end[:2] == ("idle", False)
        assert _ascii_flags(((request.method, request.target, request.version), request.headers)) \
            == _ascii_flags((requests[0][:3], requests[0][3]))


class SlotsRequest:
    """A request type whose fields are slots, as head.Request is where the core runs as Python:
    whole_head stores into them directly (a compiled head.Request is called instead)."""

    __slots__ = REQUEST_FIELDS

    def __init__(self, method, target, version, headers):
        raise AssertionError("whole_head makes a request of a slots type without calling it")


@whole_only
@pytest.mark.parametrize("data", [HELLO + b"\r\n\r\n", BROWSER + b"\r\n\r\n",
                                  b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                                  b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"])
def test_whole_head_fills_a_slots_request_type_and_a_called_one_alike(data):
    made = [scan.whole_head(data, kind, DEFAULT.fields, DEFAULT.field_size, DEFAULT.request_line)
            for kind in (SlotsRequest, Request, SlotsRequest)]
    assert type(made[0]) is SlotsRequest and type(made[1]) is Request
    assert request_fields(made[0]) == request_fields(made[1]) == request_fields(made[2])


# ----- which scanner is in use

@compiled_only
def test_the_compiled_scanner_runs_when_built():
    assert scan.scan_head is scan.compiled_scan_head


def test_pure_python_when_asked():
    """FORKWSGI_PURE_PYTHON=1 (a fresh process: the choice is made at import) runs the Python scanner."""
    code = ("from forkwsgi.http import scan; "
            "print(scan.compiled_scan_head is None, scan.scan_head is scan.python_scan_head)")
    env = dict(os.environ, FORKWSGI_PURE_PYTHON="1", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "True True"
