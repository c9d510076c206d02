"""The parser's verdict on some bytes fed in pieces: shared by the split-invariance test and the fuzzer."""
from forkwsgi.http import scan
from forkwsgi.http.errors import HTTPError
from forkwsgi.http.parser import Limits, RequestReader

LIMITS = [Limits(), Limits(request_line=40, fields=4, field_size=30, body=64),
          Limits(request_line=20, fields=2, field_size=12, body=16)]

# Every head scanner there is here (scan.py): the reference always, the compiled one where it was
# built (and FORKWSGI_PURE_PYTHON does not turn it off). The parser's verdict must not depend on it.
SCANNERS = [("python", scan.python_scan_head)]
if scan.compiled_scan_head is not None:
    SCANNERS.append(("compiled", scan.compiled_scan_head))


def outcome(data, cuts, limits, scan_head=None):
    """What the parser makes of ``data`` fed in pieces cut at ``cuts``: requests, then the end state.

    ``scan_head``: the head scanner the reader uses (None: the default, scan.scan_head). The compiled
    one comes with the compiled reader of whole requests (scan.whole_head), as in a worker; any
    other scanner without it, so that its own answers are what is tested.
    """
    if scan_head is None:
        reader = RequestReader(limits)
    else:
        whole_head = scan.whole_head if scan_head is scan.compiled_scan_head else None
        reader = RequestReader(limits, scan_head=scan_head, whole_head=whole_head)
    requests = []
    bounds = [0] + sorted(set(c for c in cuts if 0 < c < len(data))) + [len(data)]
    try:
        for a, b in zip(bounds, bounds[1:]):
            reader.feed(data[a:b])
            while True:
                request = reader.next_request()
                if request is None:
                    break
                body = request.body.read() if request.body is not None else None
                requests.append((request.method, request.target, request.version, tuple(request.headers),
                                 request.content_length, request.chunked, request.keep_alive,
                                 request.expect_continue, body))
    except HTTPError as exc:
        assert exc.status in (400, 413, 414, 417, 431, 501, 505), exc.status
        return requests, ("error", exc.status)
    end = ("in progress" if reader.in_progress else "idle", reader.request is not None)
    try:
        reader.feed_eof()
    except HTTPError as exc:
        return requests, end + (exc.status,)
    return requests, end
