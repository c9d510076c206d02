"""The request head's meaning, judged once its lines are found (parser.py finds them).

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
from typing import Any, Optional

from .errors import BadRequest, ExpectationFailed, NotImplementedMethod, PayloadTooLarge, VersionNotSupported
from .fields import HEAD_BYTES, OWS, is_token
from .known import Memory, remember

_KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"))


class Request:
    """One parsed request. ``headers`` keeps order and repeats: (lower-case name, value)."""

    __slots__ = ("method", "target", "version", "headers", "content_length",
                 "chunked", "keep_alive", "expect_continue", "body")
    # (typed for mypyc: compiled, the core reads each field as a struct member)
    method: str
    target: str
    version: str
    headers: Any  # a list of (name, value)
    content_length: Optional[int]
    chunked: bool
    keep_alive: bool
    expect_continue: bool
    body: Any

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


def _digits(text):
    return text.isdigit() and text.isascii()  # isdigit alone accepts '²' and other digits


# Request lines already found valid, mapped to (method, target, version): clients ask for the
# same few paths again and again (known.py).
VALID_REQUEST_LINES = Memory()


def parse_request_line(line):
    """``(method, target, version)`` of a request line (latin-1 text, no CRLF, length checked)."""
    start = VALID_REQUEST_LINES.get(line)
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
    if method not in _KNOWN_METHODS and not is_token(method):
        raise BadRequest("invalid method in request line %r" % line[:100])
    if not target or not target.isprintable() or not target.isascii():
        raise BadRequest("invalid request target in %r" % line[:100])
    _check_target_form(method, target)
    start = (method, target, version)
    remember(VALID_REQUEST_LINES, line, start, len(line))
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


# Framing-related headers: everything else passes apply_framing by one set miss.
_FRAMING = frozenset(("content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"))


def apply_framing(request, limits):
    """Decide body framing and connection semantics from the headers, refusing conflicts."""
    lengths = codings = connection = expects = None  # lists once such a field comes (most heads have none)
    hosts = 0
    upgrade = False
    for name, value in request.headers:
        if name not in _FRAMING:
            continue
        if name == "host":
            hosts += 1
        elif name == "connection":
            if connection is None:
                connection = []
            connection.append(value)
        elif name == "content-length":
            if lengths is None:
                lengths = []
            lengths.append(value)
        elif name == "transfer-encoding":
            if codings is None:
                codings = []
            codings.append(value)
        elif name == "expect":
            if expects is None:
                expects = []
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


def only_crlf_between(raw, line_count):
    """Whether only the CRLFs between ``line_count`` lines are left once the valid bytes are taken
    out: any other CR, LF or bad byte leaves more."""
    return len(raw.translate(None, HEAD_BYTES)) == 2 * line_count - 2
