"""Hostile and malformed requests with the exact status forkwsgi must answer.

Used twice: against the sans-I/O parser and against a live server. The live
server runs with --limit-request-body 1000 --limit-request-line 200
--limit-request-fields 20 --limit-request-field-size 200 (LIVE_LIMITS).
"""
LIVE_LIMITS = ["--limit-request-body", "1000", "--limit-request-line", "200",
               "--limit-request-fields", "20", "--limit-request-field-size", "200"]


def post(headers, body=b""):
    return b"POST /echo HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


CASES = [
    # Content-Length / Transfer-Encoding conflicts (CL.TE, TE.CL, TE.TE smuggling)
    ("cl-and-te", post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-and-cl", post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n"), 400),
    ("cl-twice-same", post(b"Content-Length: 1\r\nContent-Length: 1\r\n", b"a"), 400),
    ("cl-twice-differing", post(b"Content-Length: 1\r\nContent-Length: 2\r\n", b"ab"), 400),
    ("cl-list", post(b"Content-Length: 1, 1\r\n", b"a"), 400),
    ("cl-not-digits", post(b"Content-Length: abc\r\n"), 400),
    ("cl-negative", post(b"Content-Length: -1\r\n"), 400),
    ("cl-plus-sign", post(b"Content-Length: +1\r\n", b"a"), 400),
    ("cl-hex", post(b"Content-Length: 0x1\r\n", b"a"), 400),
    ("cl-inner-space", post(b"Content-Length: 1 2\r\n"), 400),
    ("cl-huge", post(b"Content-Length: 99999999999999999999\r\n"), 400),
    ("cl-underscore-digits", post(b"Content-Length: 1_0\r\n"), 400),
    ("te-gzip-only", post(b"Transfer-Encoding: gzip\r\n"), 400),
    ("te-chunked-then-gzip", post(b"Transfer-Encoding: chunked, gzip\r\n"), 400),
    ("te-chunked-twice", post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-two-headers", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-identity", post(b"Transfer-Encoding: identity\r\n"), 400),
    ("te-xchunked", post(b"Transfer-Encoding: xchunked\r\n"), 400),
    ("te-vertical-tab", post(b"Transfer-Encoding: \x0bchunked\r\n", b"0\r\n\r\n"), 400),
    ("te-nbsp", post(b"Transfer-Encoding: \xa0chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-empty-element", post(b"Transfer-Encoding: ,chunked\r\n", b"0\r\n\r\n"), 400),
    ("te-gzip-chunked", post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 501),
    ("te-in-http10", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    # chunk framing
    ("chunk-size-not-hex", post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk-size-0x", post(b"Transfer-Encoding: chunked\r\n", b"0x2\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk-size-leading-space", post(b"Transfer-Encoding: chunked\r\n", b" 2\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk-size-negative", post(b"Transfer-Encoding: chunked\r\n", b"-2\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk-size-17-digits", post(b"Transfer-Encoding: chunked\r\n", b"1" * 17 + b"\r\n"), 400),
    ("chunk-data-overrun", post(b"Transfer-Encoding: chunked\r\n", b"2\r\nabcd\r\n0\r\n\r\n"), 400),
    ("chunk-bare-lf", post(b"Transfer-Encoding: chunked\r\n", b"2\nab\r\n0\r\n\r\n"), 400),
    ("chunk-ext-nul", post(b"Transfer-Encoding: chunked\r\n", b"2;a\x00=b\r\nab\r\n0\r\n\r\n"), 400),
    ("chunk-ext-unterminated-quote", post(b"Transfer-Encoding: chunked\r\n", b'2;a="b\r\nab\r\n0\r\n\r\n'), 400),
    ("chunk-bad-trailer", post(b"Transfer-Encoding: chunked\r\n", b"2\r\nab\r\n0\r\nBad Trailer\r\n\r\n"), 400),
    # header syntax
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("obs-fold-first-line", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("bare-cr-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    ("nul-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("bare-lf-lines", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("no-colon", b"GET / HTTP/1.1\r\nHost: x\r\nJunk\r\n\r\n", 400),
    ("empty-name", b"GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400),
    ("bad-name-char", b"GET / HTTP/1.1\r\nHost: x\r\nX@Y: v\r\n\r\n", 400),
    ("missing-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    # request line
    ("bad-method", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("lowercase-version", b"GET / http/1.1\r\nHost: x\r\n\r\n", 400),
    ("no-version", b"GET /\r\nHost: x\r\n\r\n", 400),
    ("double-space", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("space-in-target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("non-ascii-target", b"GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("del-in-target", b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("http2-version", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("http12-version", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    ("http09-style-version", b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505),
    # limits
    ("request-line-too-long", b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("request-line-never-ends", b"GET /" + b"a" * 300, 414),
    ("too-many-fields", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(30))
     + b"\r\n", 431),
    ("field-too-long", b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"v" * 300 + b"\r\n\r\n", 431),
    ("body-over-limit", post(b"Content-Length: 5000\r\n"), 413),
    ("chunked-body-over-limit", post(b"Transfer-Encoding: chunked\r\n", b"7d0\r\n" + b"a" * 2000 + b"\r\n0\r\n\r\n"),
     413),
    ("unknown-expectation", post(b"Content-Length: 1\r\nExpect: 200-ok\r\n", b"a"), 417),
]
