"""The fast path over a complete head: all its lines in one go, or None at the first doubt.

The parser (parser.py) calls ``scan_head`` once a head's end is in its
buffer. A scanner only ever accepts: it returns what the lines say, or None,
and then the line-by-line path reads the same bytes and gives the verdict. So
a scanner can be fast without being complete: it never refuses, it only
declines.

There are two with the same answers:

- ``python_scan_head``, the reference, always present. Lines it accepted
  before (known.py) need neither their bytes checked nor their text split
  again, so a repeating head costs a few dict lookups.
- ``_speedups.scan_head``, the same in C (``_speedups.c``), built by
  ``pip install`` where a C compiler is found. One pass over the bytes, no
  memory of lines: a head whose X-Request-Id or traceparent is new with every
  request costs what a repeating one does.

``scan_head`` is the compiled one when it was built, unless the environment
sets FORKWSGI_PURE_PYTHON=1 (compiled.py, which also names the parts in use).
tests/unit/test_scan.py and the parser's property tests run against both.
"""
from forkwsgi.compiled import compiled

from .errors import HTTPError
from .fields import LINE_CACHE, Doubt, fast_field
from .head import VALID_REQUEST_LINES, only_crlf_between, parse_request_line

KNOWN_HEAD_MAX = 2048  # heads up to this long look their lines up among those accepted before


def python_scan_head(buf, start, end, need_request_line, max_fields, field_size, request_line_size):
    """``(request line or None, [(name, value), ...])`` for the lines in ``buf[start:end]``, else None.

    ``end`` is where the head's CRLFCRLF starts. ``need_request_line``: the first line is the
    request line (else it was judged already, and every line is a field line). None when any line
    is in doubt: too long, one field too many, a stray CR or LF, a byte no head may hold, a request
    line or field line this path does not take.
    """
    raw = buf[start:end]
    text = raw.decode("latin-1")
    lines = text.split("\r\n") if text else []
    count = len(lines)
    checked = False
    start_line = None
    if need_request_line:
        if not lines or len(lines[0]) > request_line_size:
            return None
        start_line = VALID_REQUEST_LINES.get(lines[0])
        if start_line is None:
            if not only_crlf_between(raw, count):
                return None
            checked = True
            try:
                start_line = parse_request_line(lines[0])
            except HTTPError:
                return None  # the line-by-line path gives the verdict
        del lines[0]
    if len(lines) > max_fields:
        return None
    if len(text) > field_size and max(map(len, lines), default=0) > field_size:
        return None
    # Long heads skip the lookups: hashing a long line costs more than parsing it.
    headers = list(map(LINE_CACHE.get, lines)) if len(text) <= KNOWN_HEAD_MAX else [None] * len(lines)
    if not all(headers):
        if not checked and not only_crlf_between(raw, count):
            return None
        try:
            headers = [pair or fast_field(line) for line, pair in zip(lines, headers)]
        except (ValueError, Doubt):  # no colon; not a token
            return None
    return start_line, headers


compiled_scan_head = compiled("forkwsgi.http._speedups", "scan_head")
scan_head = compiled_scan_head or python_scan_head

# whole_head(buf, Request, fields, field_size, request_line): the Request when ``buf`` is exactly one
# head the compiled scanner reads at once, with plain framing (Host; Connection: close or keep-alive;
# Content-Length: 0), else None. It has no Python twin: the parser's own path is its reference.
whole_head = compiled("forkwsgi.http._speedups", "whole_head")
