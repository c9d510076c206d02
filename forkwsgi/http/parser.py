"""Strict HTTP/1.x request parsing (RFC 9112), sans I/O.

``RequestReader`` is fed bytes from a connection and hands back complete
requests (head plus fully received body). It never touches a socket, so every
framing rule is unit-tested with plain bytes. Anything ambiguous is refused:
request smuggling lives in the gaps between lenient parsers.
"""
import io
import re
import tempfile

from .body import ChunkedBody, FixedLengthBody
from .errors import (BadRequest, ExpectationFailed, HeaderFieldsTooLarge,
                     NotImplementedMethod, PayloadTooLarge, URITooLong,
                     VersionNotSupported)

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(r"(%s) ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])" % _TOKEN)
_LOOSE_VERSION = re.compile(r"\S+ \S+ HTTP/[0-9]+\.[0-9]+")
_FIELD = re.compile(r"(%s):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*" % _TOKEN)
_DIGITS = re.compile(r"[0-9]{1,18}")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_OWS = " \t"  # str.strip() would also eat \xa0 and friends: a smuggling primitive (gunicorn #3364)
SPOOL_SIZE = 1 << 20


class Limits:
    """Size limits applied while parsing, from the settings of the same names."""

    __slots__ = ("request_line", "fields", "field_size", "body")

    def __init__(self, request_line=4094, fields=100, field_size=8190, body=0):
        self.request_line = request_line
        self.fields = fields
        self.field_size = field_size
        self.body = body

    @property
    def head_size(self):
        """The most bytes a request head may take before 431."""
        return self.request_line + 2 + self.fields * (self.field_size + 2) + 2


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


def _body_sink(length):
    """Small known-size bodies stay in memory; big or unknown ones may spill to disk."""
    if length is not None and length <= SPOOL_SIZE:
        return io.BytesIO()
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE)


def parse_head(head, limits):
    """Parse a request head (text without the final blank line) into a Request."""
    lines = head.split("\r\n")
    request_line = lines[0]
    if len(request_line) > limits.request_line:
        raise URITooLong("request line longer than %d bytes" % limits.request_line)
    match = _REQUEST_LINE.fullmatch(request_line)
    if match is None:
        if _LOOSE_VERSION.fullmatch(request_line) and not request_line.endswith(("HTTP/1.0", "HTTP/1.1")):
            raise VersionNotSupported("unsupported version in %r" % request_line[:100])
        raise BadRequest("invalid request line %r" % request_line[:100])
    method, target, version = match.groups()
    if version != "HTTP/1.1" and version != "HTTP/1.0":
        raise VersionNotSupported("unsupported version %s" % version)
    if len(lines) - 1 > limits.fields:
        raise HeaderFieldsTooLarge("more than %d header fields" % limits.fields)
    headers = []
    append = headers.append
    field_size = limits.field_size
    fullmatch = _FIELD.fullmatch
    for line in lines[1:]:
        if len(line) > field_size:
            raise HeaderFieldsTooLarge("header field longer than %d bytes" % field_size)
        field = fullmatch(line)
        if field is None:
            if line[:1] in (" ", "\t"):
                raise BadRequest("obsolete line folding in header")
            raise BadRequest("invalid header field %r" % line[:60])
        name, value = field.groups()
        append((name.lower(), value))
    request = Request(method, target, version, headers)
    _apply_framing(request, limits)
    return request


def _apply_framing(request, limits):
    """Decide body framing and connection semantics from the headers, refusing conflicts."""
    lengths = []
    codings = None
    hosts = 0
    connection = ()
    expect = None
    for name, value in request.headers:
        if name == "content-length":
            lengths.append(value)
        elif name == "transfer-encoding":
            codings = (codings + "," + value) if codings is not None else value
        elif name == "host":
            hosts += 1
            request.host = value
        elif name == "connection":
            connection = connection + tuple(t.strip(_OWS).lower() for t in value.split(","))
        elif name == "expect":
            expect = value
    http11 = request.version == "HTTP/1.1"
    if http11 and hosts != 1:
        raise BadRequest("HTTP/1.1 request needs exactly one Host header, got %d" % hosts)
    if hosts > 1:
        raise BadRequest("more than one Host header")
    if codings is not None:
        if lengths:
            raise BadRequest("both Content-Length and Transfer-Encoding")
        if not http11:
            raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        items = [c.strip(_OWS).lower() for c in codings.split(",")]
        if items[-1] != "chunked" or "chunked" in items[:-1] or "" in items:
            raise BadRequest("Transfer-Encoding must end in a single chunked, got %r" % codings)
        if len(items) > 1:
            raise NotImplementedMethod("unsupported transfer coding %r" % codings)
        request.chunked = True
    elif lengths:
        if len(lengths) > 1:
            raise BadRequest("more than one Content-Length")
        if _DIGITS.fullmatch(lengths[0]) is None:
            raise BadRequest("invalid Content-Length %r" % lengths[0][:30])
        request.content_length = int(lengths[0])
        if limits.body and request.content_length > limits.body:
            raise PayloadTooLarge("Content-Length %d over the %d byte limit"
                                  % (request.content_length, limits.body))
    if "close" in connection:
        request.keep_alive = False
    elif not http11 and "keep-alive" in connection:
        request.keep_alive = True
    if expect is not None and http11:
        if expect.lower() != "100-continue":
            raise ExpectationFailed("unsupported expectation %r" % expect[:40])
        request.expect_continue = True


class RequestReader:
    """Turns a connection's byte stream into complete requests, one at a time."""

    __slots__ = ("limits", "buf", "request", "body", "continue_sent")

    def __init__(self, limits):
        self.limits = limits
        self.buf = bytearray()
        self.request = None
        self.body = None
        self.continue_sent = False

    @property
    def in_progress(self):
        """True when part of a request has arrived."""
        return bool(self.buf) or self.request is not None

    def feed(self, data):
        self.buf += data

    def needs_continue(self):
        """True once: the head asked for 100-continue and the body has not come."""
        if self.request is None or not self.request.expect_continue or self.continue_sent:
            return False
        self.continue_sent = True
        return not self.buf

    def next_request(self):
        """Return the next complete Request, or None until more bytes arrive."""
        if self.request is None:
            if not self._read_head():
                return None
        if self.body is not None and not self.body.feed(self.buf):
            return None
        request = self.request
        if self.body is not None:
            sink = self.body.sink
            sink.seek(0)
            request.body = sink
            if request.chunked:
                request.content_length = self.body.total
        self.request = None
        self.body = None
        self.continue_sent = False
        return request

    def _read_head(self):
        buf = self.buf
        start = 0
        while buf.startswith(b"\r\n", start):  # RFC 9112 2.2: ignore empty lines before a request
            start += 2
        if start:
            del buf[:start]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self._check_partial_head()
            return False
        head = buf[:end].decode("latin-1")  # latin-1 maps bytes 1:1, so checks on text are checks on bytes
        del buf[:end + 4]
        request = parse_head(head, self.limits)
        self.request = request
        if request.chunked:
            self.body = ChunkedBody(_body_sink(None), self.limits.body,
                                    self.limits.fields, self.limits.field_size)
        elif request.content_length:
            self.body = FixedLengthBody(request.content_length, _body_sink(request.content_length))
        return True

    def _check_partial_head(self):
        """Refuse early what can never become a valid head, instead of waiting for it."""
        buf = self.buf
        first_line = buf.find(b"\r\n")
        if first_line < 0:
            if len(buf) > self.limits.request_line:
                raise URITooLong("request line longer than %d bytes" % self.limits.request_line)
        if len(buf) > self.limits.head_size:
            raise HeaderFieldsTooLarge("request head larger than %d bytes" % self.limits.head_size)
        if _BARE_LF.search(buf):
            raise BadRequest("bare LF in request head")
