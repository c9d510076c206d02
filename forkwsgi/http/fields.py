"""Field lines (header and trailer fields), checked in time linear in their length.

One function judges a field line for the request head and for chunked
trailers alike. No regular expression here can backtrack: each is a single
character class searched for one character, or one greedy run with nothing
after it, and each only ever sees one bounded line.
"""
import re

from .errors import BadRequest
from .known import Memory, remember

OWS = " \t"  # str.strip() would also eat \xa0 and friends: a smuggling primitive (gunicorn #3364)
TOKEN_CLASS = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
# One character outside a class: a search scans once and never backtracks.
NON_TOKEN = re.compile(r"[^%s]" % TOKEN_CLASS)
BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB; obs-text (0x80-0xff) is allowed
# Every byte allowed in a head but CR and LF: bytes.translate(None, HEAD_BYTES)
# leaves only CRs, LFs and bad bytes, in one pass of C.
HEAD_BYTES = bytes([9] + list(range(0x20, 0x7f)) + list(range(0x80, 0x100)))

# Valid field names seen before, mapped to their lower-case form, and whole field lines
# accepted before, mapped to their (lower-case name, value): a client sends the same Host,
# User-Agent, Accept and Accept-* lines with every request (known.py).
NAME_CACHE: dict = {}
LINE_CACHE = Memory()

# RFC 9110 section 6.5.1: fields that framing, routing, authentication,
# request modifiers or response control depend on must never be trailers.
FORBIDDEN_TRAILERS = frozenset((
    "content-length", "transfer-encoding", "host", "content-encoding", "content-type",
    "content-range", "trailer", "te", "connection", "keep-alive", "proxy-connection", "upgrade",
    "expect", "max-forwards", "pragma", "range", "authorization", "proxy-authorization",
    "authentication-info", "proxy-authentication-info", "cookie", "set-cookie",
    "www-authenticate", "proxy-authenticate", "cache-control", "age", "expires", "date",
    "location", "retry-after", "vary", "warning",
))


def is_token(text):
    """Whether ``text`` is an RFC 9110 token (a method, a field name): the one check of it."""
    return bool(text) and NON_TOKEN.search(text) is None


class Doubt(Exception):
    """Raised inside a fast path to hand over to the exact one."""


def checked_name(name):
    """field_name for a fast path: Doubt instead of None."""
    lname = field_name(name)
    if lname is None:
        raise Doubt(name)
    return lname


def fast_field(line):
    """(lower-case name, value) of a field line for a fast path, remembered in LINE_CACHE.

    ValueError (no colon) or Doubt (not a token) hand over to the exact path.
    The caller must have checked the line's bytes.
    """
    name, value = line.split(":", 1)
    pair = (NAME_CACHE.get(name) or checked_name(name), value.strip(OWS))
    remember(LINE_CACHE, line, pair, len(line))
    return pair


def field_name(name):
    """The lower-case form of a valid field name, or None if ``name`` is not a token."""
    lname = NAME_CACHE.get(name)
    if lname is None:
        if not is_token(name):
            return None
        lname = name.lower()
        remember(NAME_CACHE, name, lname, len(name))
    return lname


def parse_field(line):
    """``(lower-case name, value)`` of one field line (latin-1 text, no CRLF), or BadRequest.

    The line's length and the number of fields are the caller's to check first.
    """
    name, colon, value = line.partition(":")
    lname = field_name(name) if colon else None
    if lname is None:
        if line[:1] in (" ", "\t"):
            raise BadRequest("obsolete line folding in header")
        if not colon:
            raise BadRequest("header field without a colon %r" % line[:60])
        raise BadRequest("invalid header field name %r" % name[:60])
    if BAD_VALUE.search(value):
        raise BadRequest("invalid character in the value of header %r" % lname[:60])
    return lname, value.strip(OWS)


def parse_trailer(line):
    """Like parse_field, and refuse the fields that must never be trailers."""
    name, value = parse_field(line)
    if name in FORBIDDEN_TRAILERS or name.startswith("if-"):
        raise BadRequest("%r is not allowed as a trailer field" % name)
    return name, value
