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
- When a whole head is in the buffer, a fast path (scan.py: compiled, or
  Python) reads it in one go. It only ever accepts: at the first doubt it
  hands over to the line-by-line path, which gives the verdict. Neither path
  rescans bytes it has already searched, and no regular expression here can
  backtrack, so parsing costs time linear in the bytes received.
- Most reads bring exactly one request and nothing more: where the compiled
  part is built, ``next_request`` hands such a buffer to ``scan.whole_head``,
  which reads the head and plain framing in one call, or declines and the
  path above goes on as if it had not been asked.
- Up to MAX_EMPTY_LINES empty lines (CRLF) before a request line are ignored
  (RFC 9112 section 2.2), and do not count as a request in progress; one more
  is 400.

What a head must say (request line, target form, framing headers) is judged in
head.py; this module finds the lines, in whatever pieces they arrive.
"""
import tempfile
from typing import Any, Final

from .body import ChunkedBody, FixedLengthBody, StreamedBody
from .errors import BadRequest, HeaderFieldsTooLarge, URITooLong
from .fields import parse_field
from .head import Request, apply_framing, parse_request_line
from .scan import scan_head, whole_head

SPOOL_SIZE = 1 << 20
READ_SIZE: Final = 65536  # what a connection asks its socket for at a time...
BODY_READ_SIZE: Final = 1 << 18  # ...or, while a body is coming, up to what is left of it, at most this
MAX_EMPTY_LINES: Final = 4  # CRLFs ignored before one request line; more is 400


class Limits:
    """Size limits applied while parsing, from the settings of the same names.

    ``spool_dir`` is where request bodies too big for memory are spooled
    (``dir=`` of tempfile; None is the system default). With ``stream_over``,
    a body with a Content-Length above it is not received whole before its
    request is handed out: the request comes once that many of its bytes are
    in (at once if it expects 100-continue), with a StreamedBody as its body.
    """

    __slots__ = ("request_line", "fields", "field_size", "body", "spool_dir", "stream_over")
    request_line: int
    fields: int
    field_size: int

    def __init__(self, request_line=4094, fields=100, field_size=8190, body=0, spool_dir=None, stream_over=None):
        self.request_line = request_line
        self.fields = fields
        self.field_size = field_size
        self.body = body
        self.spool_dir = spool_dir
        self.stream_over = stream_over


def _spool(spool_dir=None):
    """Where a big or chunked body goes: memory up to SPOOL_SIZE, a file past it.

    Spooling errors (disk full, no file descriptors) surface as OSError when
    the body is written.
    """
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE, dir=spool_dir)


class RequestReader:
    """Turns a connection's byte stream into complete requests, one at a time.

    ``buf`` holds the raw bytes not consumed yet. It may be changed from
    outside (PROXY protocol, clearing): any change of its length the reader did
    not make itself makes it parse the head again from the start of ``buf``.
    """

    __slots__ = ("limits", "buf", "request", "body", "continue_sent", "_scan_head", "_whole_head",
                 "_known", "_line_start", "_scan", "_fast_scan", "_start", "_headers", "_empty")
    limits: Limits  # (typed for mypyc: each request reads them)
    buf: bytearray
    _known: int
    _line_start: int
    _scan: int
    _fast_scan: int
    _empty: int

    def __init__(self, limits, scan_head=scan_head, whole_head=whole_head):
        self.limits = limits
        self._scan_head = scan_head  # scan.py: the compiled scanner or the Python one
        self._whole_head = whole_head  # scan.py: a buffer that is one plain request, at once (or None)
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
    def in_progress(self) -> bool:
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

    def feed(self, data) -> bool:
        """Take bytes read from the connection. True if they are the first of whatever comes next:
        nothing was buffered and no request was under way (its clocks may start now)."""
        buf = self.buf
        if len(buf) != self._known:
            self._check_buf()
        if buf:
            buf += data
            self._known = len(buf)
            return False
        body = self.body
        if type(body) is FixedLengthBody and body.sink is None and body.remaining:
            data = body.take(data)  # the next bytes of a body kept in memory: to it at once, not through buf
            if not data:
                return False
        buf += data
        self._known = len(buf)
        return self.request is None

    def read_size(self):
        """How many bytes the connection should ask its socket for now: more while a body is coming."""
        body = self.body
        if type(body) is FixedLengthBody and body.remaining > READ_SIZE:
            return min(body.remaining, BODY_READ_SIZE)
        return READ_SIZE

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
        scratch = RequestReader(self.limits, self._scan_head, self._whole_head)
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
        return not self.buf and not (type(self.body) is FixedLengthBody and self.body.received)

    def next_request(self) -> Any:
        """Return the next complete Request, or None until more bytes arrive."""
        buf = self.buf
        if len(buf) != self._known:
            self._check_buf()
        try:
            request = self.request
            if request is None and self._whole_head is not None and self.body is None \
                    and not (self._line_start or self._scan or self._fast_scan):
                # The common read: one whole request and nothing more, taken in one call.
                limits = self.limits
                request = self._whole_head(buf, Request, limits.fields, limits.field_size, limits.request_line)
                if request is not None:
                    buf.clear()
                    self._empty = 0
                    self.continue_sent = False
                    return request
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
                request.body = body.result()
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
            self.body = ChunkedBody(_spool(limits.spool_dir), limits.body,
                                    limits.fields, limits.field_size)
        elif request.content_length:
            stream_over = self.limits.stream_over
            if stream_over is not None and request.content_length > stream_over:
                self.body = StreamedBody(request.content_length, self.buf)
            else:
                length = request.content_length
                self.body = FixedLengthBody(length, None if length <= SPOOL_SIZE else _spool(self.limits.spool_dir))
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
        """The Request for a head whose remaining lines are buf[_line_start:end]; None if in doubt."""
        limits = self.limits
        found = self._scan_head(self.buf, self._line_start, end, self._start is None,
                                limits.fields - len(self._headers), limits.field_size, limits.request_line)
        if found is None:
            return None
        start_line, headers = found
        if start_line is None:
            start_line = self._start
        if self._headers:
            headers = self._headers + headers
        request = Request(start_line[0], start_line[1], start_line[2], headers)
        apply_framing(request, limits)
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
                apply_framing(request, limits)
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
