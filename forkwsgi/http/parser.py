"""Strict HTTP/1.x request parsing (RFC 9112), sans I/O.

``RequestReader`` is fed bytes from a connection and hands back complete
requests (head plus fully received body). It never touches a socket, so every
framing rule is unit-tested with plain bytes. Anything ambiguous is refused:
request smuggling lives in the gaps between lenient parsers.

How a head is judged, whatever way its bytes are split across reads:

- A line ends at the first LF. An LF not preceded by CR is 400 (bare LF); a CR
  not followed by LF is 400.
- Each line is judged as soon as it is complete, or as soon as it is provably
  too long: over its limit with no LF yet, not counting a last CR that may be
  the start of CRLF (request line: 414; field line: 431). The first failing
  line in byte order decides. Checks on a complete line, in order: length,
  bare LF, then (fields only) the field count (431), then syntax (400).
- The request line is judged before any field line arrives, so its verdict
  (414, 400, 505 or 501) never depends on what follows.
- Framing (Host, Content-Length, Transfer-Encoding, Expect) is judged once the
  head is complete.
- When a whole head is in the buffer, a fast path reads it in one go (one
  search, one decode, one split). It only ever accepts: at the first doubt it
  hands over to the line-by-line path, which gives the verdict. Neither path
  rescans bytes it has already searched, and no regular expression here can
  backtrack, so parsing costs time linear in the bytes received.
- The fast path remembers the request lines and field lines it accepted
  (bounded, known.py). A head made only of such lines needs neither its bytes
  checked nor its lines split again: the same text was valid before, and a
  line with a stray CR, LF or bad byte is never one of them.
- Up to MAX_EMPTY_LINES empty lines (CRLF) before a request line are ignored
  (RFC 9112 section 2.2), and do not count as a request in progress; one more
  is 400.

Request targets (RFC 9112 section 3.2): origin-form (``/path?query``) and
absolute-form (``http://host/path``, http or https) for any method; ``*`` only
for OPTIONS; authority-form (``host:port``) only for CONNECT. Anything else is
400. forkwsgi does not tunnel: CONNECT is answered 501.

forkwsgi never switches protocols. A request with an ``Upgrade`` header is
served as a plain HTTP/1.1 request, and the connection is closed after the
response (``keep_alive`` is False): a front end that opened a tunnel without
checking the answer cannot then smuggle a second request through it.

``Expect``: only ``100-continue`` (any case) is supported; any other
expectation, in any of several Expect headers or list elements, is 417.
HTTP/1.0 requests' Expect headers are ignored.
"""
import io
import tempfile

from .body import ChunkedBody, FixedLengthBody, StreamedBody
from .errors import (BadRequest, ExpectationFailed, HeaderFieldsTooLarge,
                     NotImplementedMethod, PayloadTooLarge, URITooLong,
                     VersionNotSupported)
from .fields import HEAD_BYTES, LINE_CACHE, NON_TOKEN, OWS, Doubt, fast_field, parse_field
from .known import remember

SPOOL_SIZE = 1 << 20
MAX_EMPTY_LINES = 4  # CRLFs ignored before one request line; more is 400
KNOWN_HEAD_MAX = 2048  # heads up to this long look their lines up among those accepted before
_KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"))


class Limits:
    """Size limits applied while parsing, from the settings of the same names.

    ``spool_dir`` is where request bodies too big for memory are spooled
    (``dir=`` of tempfile; None is the system default). With ``stream_over``,
    a body with a Content-Length above it is not received whole before its
    request is handed out: the request comes once that many of its bytes are
    in (at once if it expects 100-continue), with a StreamedBody as its body.
    """

    __slots__ = ("request_line", "fields", "field_size", "body", "spool_dir", "stream_over")

    def __init__(self, request_line=4094, fields=100, field_size=8190, body=0, spool_dir=None, stream_over=None):
        self.request_line = request_line
        self.fields = fields
        self.field_size = field_size
        self.body = body
        self.spool_dir = spool_dir
        self.stream_over = stream_over


class Request:
    """One parsed request. ``headers`` keeps order and repeats: (lower-case name, value)."""

    __slots__ = ("method", "target", "version", "headers", "content_length",
                 "chunked", "keep_alive", "expect_continue", "body", "host")

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.content_length = None
        self.chunked = False
        self.keep_alive = version == "HTTP/1.1"
        self.expect_continue = False
        self.body = None
        self.host = None

    def header(self, name):
        """The value of header ``name`` (lower case); repeats joined with ', '."""
        values = [v for n, v in self.headers if n == name]
        return ", ".join(values) if values else None


def _body_sink(length, spool_dir=None):
    """Small known-size bodies stay in memory; big or unknown ones may spill to disk.

    Spooling errors (disk full, no file descriptors) surface as OSError when
    the body is written.
    """
    if length is not None and length <= SPOOL_SIZE:
        return io.BytesIO()
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE, dir=spool_dir)


def _digits(text):
    return text.isdigit() and text.isascii()  # isdigit alone accepts '²' and other digits


# Request lines already found valid, mapped to (method, target, version): clients ask for the
# same few paths again and again (known.py).
_VALID_REQUEST_LINES = {}


def parse_request_line(line):
    """``(method, target, version)`` of a request line (latin-1 text, no CRLF, length checked)."""
    start = _VALID_REQUEST_LINES.get(line)
    if start is not None:
        return start
    parts = line.split(" ")
    if len(parts) != 3:
        raise BadRequest("invalid request line %r" % line[:100])
    method, target, version = parts
    if version != "HTTP/1.1" and version != "HTTP/1.0":
        major, dot, minor = version[5:].partition(".")
        if version.startswith("HTTP/") and dot and _digits(major) and _digits(minor):
            raise VersionNotSupported("unsupported version %r" % version[:20])
        raise BadRequest("invalid request line %r" % line[:100])
    if method not in _KNOWN_METHODS and (not method or NON_TOKEN.search(method)):
        raise BadRequest("invalid method in request line %r" % line[:100])
    if not target or not target.isprintable() or not target.isascii():
        raise BadRequest("invalid request target in %r" % line[:100])
    _check_target_form(method, target)
    start = (method, target, version)
    remember(_VALID_REQUEST_LINES, line, start, len(line))
    return start


def _check_target_form(method, target):
    """RFC 9112 section 3.2: which form of request target goes with which method."""
    if target[0] == "/":
        if method == "CONNECT":
            raise BadRequest("CONNECT needs an authority-form target (host:port)")
        return  # origin-form
    if method == "CONNECT":
        host, colon, port = target.rpartition(":")
        if not colon or not host or not _digits(port) or len(port) > 5 or "/" in host or "@" in host:
            raise BadRequest("CONNECT needs an authority-form target (host:port), got %r" % target[:100])
        raise NotImplementedMethod("CONNECT is not supported: forkwsgi does not tunnel")
    if target == "*":
        if method != "OPTIONS":
            raise BadRequest("the asterisk-form target is only for OPTIONS")
        return
    scheme, sep, rest = target.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        if rest[:1] in ("", "/", "?", "#"):
            raise BadRequest("absolute-form target without a host %r" % target[:100])
        return  # absolute-form
    raise BadRequest("invalid request target %r" % target[:100])


# Framing-related headers: everything else passes _apply_framing by one set miss.
_FRAMING = frozenset(("content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"))


def _apply_framing(request, limits):
    """Decide body framing and connection semantics from the headers, refusing conflicts."""
    lengths = []
    codings = []
    hosts = 0
    connection = []
    expects = []
    upgrade = False
    for name, value in request.headers:
        if name not in _FRAMING:
            continue
        if name == "host":
            hosts += 1
            request.host = value
        elif name == "connection":
            connection.append(value)
        elif name == "content-length":
            lengths.append(value)
        elif name == "transfer-encoding":
            codings.append(value)
        elif name == "expect":
            expects.append(value)
        else:
            upgrade = True
    http11 = request.version == "HTTP/1.1"
    if http11 and hosts != 1:
        raise BadRequest("HTTP/1.1 request needs exactly one Host header, got %d" % hosts)
    if hosts > 1:
        raise BadRequest("more than one Host header")
    if codings:
        codings = ",".join(codings)
        if lengths:
            raise BadRequest("both Content-Length and Transfer-Encoding")
        if not http11:
            raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        items = [c.strip(OWS).lower() for c in codings.split(",")]
        if items[-1] != "chunked" or "chunked" in items[:-1] or "" in items:
            raise BadRequest("Transfer-Encoding must end in a single chunked, got %r" % codings[:60])
        if len(items) > 1:
            raise NotImplementedMethod("unsupported transfer coding %r" % codings[:60])
        request.chunked = True
    elif lengths:
        if len(lengths) > 1:
            raise BadRequest("more than one Content-Length")
        length = lengths[0]
        if not _digits(length) or len(length) > 18:
            raise BadRequest("invalid Content-Length %r" % length[:30])
        request.content_length = int(length)
        if limits.body and request.content_length > limits.body:
            raise PayloadTooLarge("Content-Length %d over the %d byte limit"
                                  % (request.content_length, limits.body))
    if connection:
        connection = ",".join(connection).lower()
        if "," in connection:
            options = [option.strip(OWS) for option in connection.split(",")]
        else:
            options = (connection.strip(OWS),)
        if "close" in options:
            request.keep_alive = False
        elif not http11 and "keep-alive" in options:
            request.keep_alive = True
    if upgrade:
        request.keep_alive = False  # never switch protocols; never read past an Upgrade either
    if expects and http11:
        for item in ",".join(expects).split(","):
            item = item.strip(OWS)
            if item.lower() == "100-continue":
                request.expect_continue = True
            elif item:  # RFC 9110 5.6.1: empty list elements are ignored
                raise ExpectationFailed("unsupported expectation %r" % item[:40])


def _only_crlf_between(raw, line_count):
    """Whether only the CRLFs between ``line_count`` lines are left once the valid bytes are taken
    out: any other CR, LF or bad byte leaves more."""
    return len(raw.translate(None, HEAD_BYTES)) == 2 * line_count - 2


class RequestReader:
    """Turns a connection's byte stream into complete requests, one at a time.

    ``buf`` holds the raw bytes not consumed yet. It may be changed from
    outside (PROXY protocol, clearing): any change of its length the reader did
    not make itself makes it parse the head again from the start of ``buf``.
    """

    __slots__ = ("limits", "buf", "request", "body", "continue_sent",
                 "_known", "_line_start", "_scan", "_fast_scan", "_start", "_headers", "_empty")

    def __init__(self, limits):
        self.limits = limits
        self.buf = bytearray()
        self.request = None
        self.body = None
        self.continue_sent = False
        self._known = 0  # len(buf) when the reader last looked at it
        self._empty = 0  # empty lines skipped before the coming request line
        self._restart()

    def _restart(self):
        """Forget the partial head: parse from the start of buf again."""
        self._line_start = 0  # start of the first line not judged yet
        self._scan = 0  # buf[_line_start:_scan] holds no LF
        self._fast_scan = 0  # no CRLFCRLF starts before _fast_scan - 3
        self._start = None  # (method, target, version) once the request line is judged
        self._headers = []

    def _check_buf(self):
        if len(self.buf) != self._known:  # changed from outside
            self._restart()
            if self.body is not None:
                self.body.rescan()

    @property
    def in_progress(self):
        """True when part of a request has arrived (empty lines before one do not count)."""
        if self.request is not None or self._line_start:
            return True
        buf = self.buf
        if not buf:
            return False
        if buf[0] != 13:
            return True
        i = 0
        end = 2 * (MAX_EMPTY_LINES + 1)
        while i < end and buf.startswith(b"\r\n", i):
            i += 2
        rest = len(buf) - i
        return not (rest == 0 or (rest == 1 and buf[i] == 13))

    def feed(self, data):
        self._check_buf()
        self.buf += data
        self._known = len(self.buf)

    def feed_eof(self):
        """The client closed its side: BadRequest if that cuts a request short.

        Nothing pending, or only empty lines, is a clean close; so are
        complete requests still in ``buf`` (next_request() hands them out).
        A request whose head or body (fixed or chunked) is incomplete is 400.
        Meant for after next_request() returned None.
        """
        if self.request is not None:  # next_request() found its body incomplete
            raise BadRequest("connection closed before the request body was complete")
        if not self.in_progress:
            return
        # Judge what is buffered as a fresh reader would: same bytes, same verdict.
        scratch = RequestReader(self.limits)
        scratch.feed(bytes(self.buf))
        while True:
            request = scratch.next_request()
            if request is None:
                break
            if request.body is not None:
                request.body.close()
        if scratch.request is not None:
            scratch.discard()
            raise BadRequest("connection closed before the request body was complete")
        if scratch.in_progress:
            raise BadRequest("connection closed before the request head was complete")

    def discard(self):
        """Nothing more of this input will be served (a refusal, a close): drop it, and close the
        file of a body being received now rather than whenever the reader is collected."""
        if self.body is not None:
            self.body.close()
            self.body = None
        self.request = None
        self.buf.clear()

    def needs_continue(self):
        """True once: the head asked for 100-continue and the body has not come."""
        if self.request is None or not self.request.expect_continue or self.continue_sent:
            return False
        self.continue_sent = True
        return not self.buf

    def next_request(self):
        """Return the next complete Request, or None until more bytes arrive."""
        buf = self.buf
        if len(buf) != self._known:
            self._check_buf()
        try:
            request = self.request
            if request is None:
                request = self._read_head()
                if request is None:
                    return None
            body = self.body
            if type(body) is StreamedBody:
                if len(buf) < body.remaining and len(buf) < self.limits.stream_over \
                        and not request.expect_continue:
                    return None  # a body that trickles in costs nothing while it is small
                request.body = body
                self.body = None
            elif body is not None:
                if not body.feed(buf):
                    return None
                sink = body.sink
                sink.seek(0)
                request.body = sink
                if request.chunked:
                    request.content_length = body.total
                self.body = None
        finally:
            self._known = len(buf)
        self.request = None
        self.continue_sent = False
        return request

    def _read_head(self):
        """The Request once its head is complete (its body may still be coming), else None."""
        buf = self.buf
        if not self._line_start and buf.startswith(b"\r\n"):
            self._skip_empty_lines()
        start = self._fast_scan - 3
        if self._line_start and start < self._line_start - 2:
            start = self._line_start - 2
        end = buf.find(b"\r\n\r\n", start if start > 0 else 0)
        request = None
        if end >= 0:
            request = self._fast_head(end)
            if request is not None:
                del buf[:end + 4]
        else:
            self._fast_scan = len(buf)
        if request is None:
            # Line by line, from where it stopped: it finds the first failing line.
            request = self._read_lines()
            if request is None:
                return None
        if self._line_start or self._scan or self._fast_scan:
            self._restart()
        self._empty = 0
        self.request = request
        if request.chunked:
            limits = self.limits
            self.body = ChunkedBody(_body_sink(None, limits.spool_dir), limits.body,
                                    limits.fields, limits.field_size)
        elif request.content_length:
            stream_over = self.limits.stream_over
            if stream_over is not None and request.content_length > stream_over:
                self.body = StreamedBody(request.content_length, self.buf)
            else:
                self.body = FixedLengthBody(request.content_length,
                                            _body_sink(request.content_length, self.limits.spool_dir))
        return request

    def _skip_empty_lines(self):
        buf = self.buf
        i = 0
        while buf.startswith(b"\r\n", i):
            i += 2
            self._empty += 1
            if self._empty > MAX_EMPTY_LINES:
                raise BadRequest("more than %d empty lines before a request" % MAX_EMPTY_LINES)
        del buf[:i]
        self._restart()

    def _fast_head(self, end):
        """The Request for a head whose remaining lines are buf[_line_start:end]; None if in doubt.

        A line accepted before (in the caches of valid request lines and field lines) is valid by
        its text alone; a head with any new line has its bytes checked whole first.
        """
        limits = self.limits
        raw = self.buf[self._line_start:end]
        text = raw.decode("latin-1")
        lines = text.split("\r\n") if text else []
        count = len(lines)
        checked = False
        start_line = self._start
        if start_line is None:
            if not lines or len(lines[0]) > limits.request_line:
                return None
            start_line = _VALID_REQUEST_LINES.get(lines[0])
            if start_line is None:
                if not _only_crlf_between(raw, count):
                    return None
                checked = True
                start_line = parse_request_line(lines[0])  # the first line: its verdict is the verdict
            del lines[0]
        if len(self._headers) + len(lines) > limits.fields:
            return None
        if len(text) > limits.field_size and max(map(len, lines), default=0) > limits.field_size:
            return None
        # Long heads skip the lookups: hashing a long line costs more than parsing it.
        headers = list(map(LINE_CACHE.get, lines)) if len(text) <= KNOWN_HEAD_MAX else [None] * len(lines)
        if not all(headers):
            if not checked and not _only_crlf_between(raw, count):
                return None
            try:
                headers = [pair or fast_field(line) for line, pair in zip(lines, headers)]
            except (ValueError, Doubt):  # no colon; not a token
                return None
        if self._headers:
            headers = self._headers + headers
        request = Request(start_line[0], start_line[1], start_line[2], headers)
        _apply_framing(request, limits)
        return request

    def _read_lines(self):
        """Judge each complete line from _line_start on; the Request once the head ends, else None."""
        buf = self.buf
        limits = self.limits
        find = buf.find
        start = self._line_start
        scan = self._scan
        while True:
            lf = find(b"\n", scan if scan > start else start)
            limit = limits.request_line if self._start is None else limits.field_size
            if lf < 0:
                size = len(buf) - start
                if size and buf[-1] == 13:
                    size -= 1  # maybe the start of CRLF
                self._line_start = start
                self._scan = len(buf)
                if size > limit:
                    self._too_long(limit)
                return None
            cr = lf > start and buf[lf - 1] == 13
            end = lf - 1 if cr else lf
            if end - start > limit:
                self._too_long(limit)
            if not cr:
                raise BadRequest("bare LF in request head")
            line = buf[start:end].decode("latin-1")
            start = scan = lf + 1
            if self._start is None:
                self._start = parse_request_line(line)
            elif not line:
                method, target, version = self._start
                request = Request(method, target, version, self._headers)
                _apply_framing(request, limits)
                del buf[:start]
                return request
            elif len(self._headers) >= limits.fields:
                raise HeaderFieldsTooLarge("more than %d header fields" % limits.fields)
            else:
                self._headers.append(parse_field(line))
            self._line_start = start

    def _too_long(self, limit):
        if self._start is None:
            raise URITooLong("request line longer than %d bytes" % limit)
        raise HeaderFieldsTooLarge("header field longer than %d bytes" % limit)
