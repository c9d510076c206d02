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
    ("unknown-expectation-before-continue", post(b"Content-Length: 1\r\nExpect: foo\r\nExpect: 100-continue\r\n",
                                                 b"a"), 417),
    ("unknown-expectation-in-list", post(b"Content-Length: 1\r\nExpect: 100-continue, foo\r\n", b"a"), 417),
    # request targets (RFC 9112 3.2) and methods
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501),
    ("connect-origin-form", b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("asterisk-with-get", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("authority-form-with-get", b"GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("relative-target", b"GET foo/bar HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("absolute-form-without-host", b"GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("absolute-form-other-scheme", b"GET ftp://x/a HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    # line endings: a line ends at the first LF; the first failing line decides
    ("cr-without-lf-in-request-line", b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
    ("bare-lf-after-bad-version", b"GET / HTTP/1.2\r\nX\nY: z\r\n\r\n", 505),
    ("bare-lf-before-long-field", b"GET / HTTP/1.1\r\nHost: x\nX-Long: " + b"v" * 300 + b"\r\n\r\n", 400),
    ("long-field-before-bad-field", b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"v" * 300 + b"\r\nBad\r\n\r\n",
     431),
    ("bad-field-before-too-many", b"GET / HTTP/1.1\r\nHost: x\r\nBad\r\n"
     + b"".join(b"X-%d: v\r\n" % i for i in range(30)) + b"\r\n", 400),
    ("too-many-empty-lines", b"\r\n" * 5 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("bare-lf-empty-line-first", b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("long-spaces-then-nul", b"GET / HTTP/1.1\r\nHost: x\r\nX: a" + b" " * 150 + b"\x00\r\n\r\n", 400),
    # chunked framing and trailers
    ("chunk-size-spaces-then-junk",
     post(b"Transfer-Encoding: chunked\r\n", b"1" + b" " * 3000 + b"x\r\na\r\n0\r\n\r\n"), 400),
    ("chunk-ext-bad-value", post(b"Transfer-Encoding: chunked\r\n", b"1;a=b c\r\na\r\n0\r\n\r\n"), 400),
    ("chunk-trailer-bare-lf", post(b"Transfer-Encoding: chunked\r\n", b"1\r\na\r\n0\r\nX-T: v\n\r\n"), 400),
    ("chunk-trailer-fold", post(b"Transfer-Encoding: chunked\r\n", b"1\r\na\r\n0\r\nX-T: v\r\n w\r\n\r\n"), 400),
    ("trailer-too-long",
     post(b"Transfer-Encoding: chunked\r\n", b"1\r\na\r\n0\r\nX-T: " + b"v" * 300 + b"\r\n\r\n"), 431),
] + [
    ("trailer-" + name.decode(),
     post(b"Transfer-Encoding: chunked\r\n", b"1\r\na\r\n0\r\n" + name + b": 1\r\n\r\n"), 400)
    for name in (b"Content-Length", b"Transfer-Encoding", b"Host", b"Content-Type", b"Trailer", b"Connection",
                 b"Authorization", b"Cookie", b"Expect", b"If-None-Match", b"Cache-Control", b"Upgrade")
]
