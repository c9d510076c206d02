"""Split invariance: the same bytes give the same verdict however they are split.

Whatever the input, fed whole or cut at any points, the parser must hand out
the same requests (method, target, headers, body...) and end in the same
state: the same error status, or the same in_progress and feed_eof verdict.

Each property runs with every head scanner (SCANNERS: the Python reference
and, where built, the compiled one), and the two must give the same verdict
on the same bytes: a scanner may only decline a head, never change what the
parser makes of it.
"""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.parser_verdict import LIMITS, SCANNERS, outcome

# Examples per scanner, and for the comparison of both: 450 a property in all, where one scanner
# at 300 was all there was (the file's run time is kept to about 1.5 times that).
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

each_scanner = pytest.mark.parametrize("scan_head", [f for _, f in SCANNERS], ids=[n for n, _ in SCANNERS])
both_scanners = pytest.mark.skipif(len(SCANNERS) < 2, reason="the compiled head scanner is not built "
                                   "(no C compiler at install, FORKWSGI_NO_EXTENSIONS or FORKWSGI_PURE_PYTHON)")


def check(data, cuts, limits, scan_head=None):
    whole = outcome(data, (), limits, scan_head)
    assert outcome(data, cuts, limits, scan_head) == whole
    assert outcome(data, range(1, len(data)), limits, scan_head) == whole  # one byte at a time
    return whole


def check_same(data, cuts, limits):
    """The Python and compiled scanners: the same verdict, whole and split."""
    (_, python), (_, compiled) = SCANNERS
    assert outcome(data, (), limits, compiled) == outcome(data, (), limits, python)
    assert outcome(data, cuts, limits, compiled) == outcome(data, cuts, limits, python)


# ----- requests assembled from pieces: mostly valid, with the usual suspects mixed in

GOOD_METHODS = ["GET", "POST", "PUT", "OPTIONS"]
GOOD_TARGETS = ["/", "/a?b=1", "http://h/p", "/%20"]
GOOD_FIELDS = [b"X-A: a", b"X-A:  \t a b \t ", b"X-B: \xa0v\xa0", b"Cookie: a=1; b=2", b"Connection: close",
               b"Connection: keep-alive, Upgrade", b"Upgrade: websocket", b"Expect: 100-continue",
               b"X: " + b" " * 9 + b"b", b"X-C:"]
GOOD_CHUNKS = [b"3\r\nabc\r\n", b"1;e=1\r\nz\r\n", b"2 ; e=\"q\"\r\nzz\r\n", b"10\r\n" + b"q" * 16 + b"\r\n"]
METHODS = st.sampled_from(GOOD_METHODS * 3 + ["CONNECT", "HEAD", "G(T", "", "get"])
TARGETS = st.sampled_from(GOOD_TARGETS * 3 + ["*", "h:443", "foo/bar", "/\x7f", "/" + "a" * 30, "http:///"])
VERSIONS = st.sampled_from(["HTTP/1.1"] * 6 + ["HTTP/1.0", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1"])
EOLS = st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n", b""])
FIELDS = st.sampled_from(GOOD_FIELDS * 2 + [
    b"Host: x", b"Content-Length: 3", b"Transfer-Encoding: chunked", b"Expect: foo", b"Expect: 100-continue, foo",
    b"Content-Length: 40", b"Content-Length: x",
    b"Transfer-Encoding: gzip, chunked", b"X-Long: " + b"v" * 20, b"X: " + b" " * 25 + b"b", b"X: a\x00b",
    b"Bad", b": v", b" folded", b"X\tY: z", b"X: a\rb", b"X-\x80: v",
])
CHUNKS = st.sampled_from(GOOD_CHUNKS * 2 + [b"1\nz\r\n", b"g\r\nzz\r\n", b"1" + b" " * 20 + b"\r\nz\r\n",
                                            b"2\r\nabc\r\n"])
TRAILERS = st.sampled_from([b"", b"X-T: v\r\n", b"Host: x\r\n", b"Bad\r\n", b"X-T: v\n",
                            b"X-T: " + b"v" * 20 + b"\r\n"])
BODIES = st.one_of(
    st.binary(max_size=50),
    st.builds(lambda chunks, trailer: b"".join(chunks) + b"0\r\n" + trailer + b"\r\n",
              st.lists(CHUNKS, max_size=4), TRAILERS),
)


@st.composite
def request_bytes(draw):
    empties = b"\r\n" * draw(st.integers(0, 6)) if draw(st.booleans()) else b""
    if draw(st.booleans()):  # well formed, so that bodies, pipelining and trailers get exercised
        line = "%s %s HTTP/1.1" % (draw(st.sampled_from(GOOD_METHODS)), draw(st.sampled_from(GOOD_TARGETS)))
        fields = [b"Host: x"] + draw(st.lists(st.sampled_from(GOOD_FIELDS), max_size=4))
        framing = draw(st.sampled_from(["none", "length", "chunked"]))
        if framing == "length":
            body = draw(st.binary(max_size=20))
            fields.append(b"Content-Length: %d" % len(body))
        elif framing == "chunked":
            fields.append(b"Transfer-Encoding: chunked")
            body = b"".join(draw(st.lists(st.sampled_from(GOOD_CHUNKS), max_size=3))) + b"0\r\n\r\n"
        else:
            body = b""
        head = empties + line.encode("latin-1") + b"\r\n" + b"".join(f + b"\r\n" for f in fields)
        return head + b"\r\n" + body
    line = "%s %s %s" % (draw(METHODS), draw(TARGETS), draw(VERSIONS))
    fields = draw(st.lists(FIELDS, max_size=6))
    if draw(st.booleans()):
        fields.insert(draw(st.integers(0, len(fields))), b"Host: x")
    head = empties + line.encode("latin-1") + draw(EOLS)
    for field in fields:
        head += field + draw(EOLS)
    return head + draw(EOLS) + draw(BODIES)


@st.composite
def stream(draw):
    """One to three requests back to back, maybe mutated, maybe cut short."""
    data = b"".join(draw(st.lists(request_bytes(), min_size=1, max_size=3)))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = bytes([draw(st.sampled_from(b"\r\n :\t\x00\x80a0;\""))])
        if op == "replace":
            data = data[:at] + byte + data[at + 1:]
        elif op == "insert":
            data = data[:at] + byte + data[at:]
        else:
            data = data[:at] + data[at + 1:]
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return data


@each_scanner
@SETTINGS
@given(data=stream(), cuts=st.lists(st.integers(0, 400), max_size=6), limits=st.sampled_from(LIMITS))
def test_assembled_requests_same_verdict_whatever_the_split(scan_head, data, cuts, limits):
    check(data, cuts, limits, scan_head)


@both_scanners
@SETTINGS
@given(data=stream(), cuts=st.lists(st.integers(0, 400), max_size=6), limits=st.sampled_from(LIMITS))
def test_assembled_requests_same_verdict_whatever_the_scanner(data, cuts, limits):
    check_same(data, cuts, limits)


# ----- bytes from an alphabet where every byte matters

NOISE = st.binary(max_size=120) | st.lists(
    st.sampled_from([b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b"GET / HTTP/1.1\r\n", b"Host: x\r\n",
                     b"a", b"0", b"\x00", b"\xa0", b"Content-Length: 2\r\n", b"Transfer-Encoding: chunked\r\n",
                     b"1\r\nz\r\n", b"0\r\n\r\n"]), max_size=30).map(b"".join)


@each_scanner
@SETTINGS
@given(data=NOISE, cuts=st.lists(st.integers(0, 200), max_size=6), limits=st.sampled_from(LIMITS))
def test_noise_same_verdict_whatever_the_split(scan_head, data, cuts, limits):
    check(data, cuts, limits, scan_head)


@both_scanners
@SETTINGS
@given(data=NOISE, cuts=st.lists(st.integers(0, 200), max_size=6), limits=st.sampled_from(LIMITS))
def test_noise_same_verdict_whatever_the_scanner(data, cuts, limits):
    check_same(data, cuts, limits)


@each_scanner
def test_known_requests_parse_as_expected(scan_head):
    """The property would hold for a parser that refuses everything: check it does not."""
    data = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: v\r\n\r\n")
    requests, end = check(data, [5, 40, 90], LIMITS[0], scan_head)
    assert [r[1] for r in requests] == ["/a", "/b"] and requests[1][-1] == b"abc" and end == ("idle", False)
