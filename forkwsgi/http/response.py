"""Response framing, sans I/O: status lines, header blocks, chunks, error pages."""
import re
import time
from email.utils import formatdate
from typing import Optional

from forkwsgi.compiled import compiled

from .fields import BAD_VALUE, is_token
from .known import Memory, remember

_STATUS = re.compile(r"[1-9][0-9]{2} [^\x00-\x08\x0a-\x1f\x7f]*")
HOP_BY_HOP = frozenset(("connection", "keep-alive", "transfer-encoding", "te",
                        "trailer", "upgrade", "proxy-connection"))
NO_BODY_STATUSES = frozenset((204, 304)) | frozenset(range(100, 200))
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class InvalidResponse(Exception):
    """The application produced something that cannot go on the wire."""


# Statuses, and (name, value) header pairs with what the head needs of them, already found
# valid: an app answers with the same few again and again, and a dict hit replaces the regular
# expressions and the classification (known.py).
_VALID_STATUSES: dict = {}
_VALID_FIELDS = Memory()


def check_status(status):
    """Validate a WSGI status string; return its integer code."""
    if type(status) is str:
        code = _VALID_STATUSES.get(status)
        if code is not None:
            return code
    if type(status) is not str or _STATUS.fullmatch(status) is None:
        raise InvalidResponse("invalid status %r" % (status,))
    code = int(status[:3])
    remember(_VALID_STATUSES, status, code, len(status))
    return code


def response_fields(headers):
    """Check WSGI response headers (a list of (str, str), no CR/LF smuggling) and read them once.

    Returns (their lines for the head, the app's Content-Length or None, whether the app asked
    to close). Hop-by-hop fields are left out: the server frames the message itself.
    """
    if type(headers) is not list:
        raise InvalidResponse("headers must be a list, not %s" % type(headers).__name__)
    valid = _VALID_FIELDS.get
    lines = []
    length = None
    close = False
    for item in headers:
        # Exactly a tuple of two exact strs: a subclass could hash like a valid pair it is not.
        if type(item) is tuple and len(item) == 2 and type(item[0]) is str and type(item[1]) is str:
            line, item_length, item_close = valid(item) or _read_field(item)
        else:
            _refuse_field(item)
        if line:
            lines.append(line)
        if item_length is not None:
            length = item_length
        if item_close:
            close = True
    return "".join(lines), length, close


def python_read_start(status, headers):
    """The app's start_response arguments, checked and read: (status code, the header lines for
    the head, the app's Content-Length or None, whether it asked to close). InvalidResponse if
    they cannot go on the wire."""
    code = check_status(status)
    fields, length, close = response_fields(headers)
    return code, fields, length, close


_fast_read_start = compiled("forkwsgi.http._speedups", "read_start")  # its C twin, where it was built

# What a response reads its start with: the C twin where it was built, which answers None where it is
# in doubt (anything to refuse, text that is not Latin-1); the caller then asks python_read_start.
read_start = _fast_read_start or python_read_start


def _read_field(item):
    """(line for the head, or "" when hop-by-hop; Content-Length's value or None; asks to close) of a
    (str, str) header, remembered once found valid."""
    name, value = item
    if not is_token(name):
        raise InvalidResponse("invalid header name %r" % (name,))
    if BAD_VALUE.search(value) is not None:
        raise InvalidResponse("invalid value for header %s: %r" % (name, value))
    lname = name.lower()
    if lname in HOP_BY_HOP:
        entry = ("", None, lname == "connection" and "close" in value.lower())
    elif lname == "content-length":
        if not value.isdigit():
            raise InvalidResponse("invalid Content-Length %r from the application" % value)
        entry = ("%s: %s\r\n" % item, int(value), False)
    else:
        entry = ("%s: %s\r\n" % item, None, False)
    remember(_VALID_FIELDS, item, entry, len(name) + len(value))
    return entry


def _refuse_field(item):
    """Raise InvalidResponse for a header that is not a (str, str) tuple, saying what is wrong."""
    if type(item) is not tuple or len(item) != 2:
        raise InvalidResponse("header %r is not a (name, value) tuple" % (item,))
    name, value = item
    if type(name) is not str:
        raise InvalidResponse("invalid header name %r" % (name,))
    raise InvalidResponse("invalid value for header %s: %r" % (name, value))


class DateCache:
    """The Date header, formatted at most once a second, with the fixed headers every response carries."""

    __slots__ = ("until", "value", "headers")
    until: float  # the start of the second after the one formatted
    value: str
    headers: str

    def __init__(self):
        self.until = 0.0
        self.value = ""
        self.headers = ""

    def get(self, now: Optional[float] = None) -> str:
        """'Date: ...\\r\\nServer: forkwsgi\\r\\n' for the current second (or that of ``now``, a Unix time)."""
        if now is None:
            now = time.time()
        if now >= self.until or now < self.until - 1.0:  # (a wall clock stepped back, too)
            second = int(now)
            self.until = second + 1.0
            self.value = formatdate(second, usegmt=True)
            self.headers = "Date: %s\r\nServer: forkwsgi\r\n" % self.value
        return self.headers


def chunk(data):
    """One chunk of a chunked response body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def error_response(status, reason, date, server="forkwsgi", text=None, headers=""):
    """A complete, self-contained error response that closes the connection; ``text`` is its body,
    ``headers`` more header lines, each ending in CRLF."""
    body = (text or "%d %s\n" % (status, reason)).encode("latin-1")
    return ("HTTP/1.1 %d %s\r\nDate: %s\r\nServer: %s\r\nConnection: close\r\n%s"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n"
            % (status, reason, date, server, headers, len(body))).encode("latin-1") + body
