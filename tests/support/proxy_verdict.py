"""The verdict of the PROXY protocol parser on a byte stream, fed whole or split: shared by the
property tests and the fuzz target (fuzz/fuzz_proxy.py)."""
from forkwsgi.http.errors import HTTPError
from forkwsgi.http.proxy import parse_proxy


def proxy_outcome(data, cuts, mode):
    """(result, bytes left) once the header is parsed, ('refused', status), or ('waiting', bytes held).

    The bytes arrive in pieces cut at ``cuts``; the parser is asked after each piece, as the
    worker asks it after each read.
    """
    buf = bytearray()
    points = sorted({cut for cut in cuts if 0 < cut < len(data)}) + [len(data)]
    start = 0
    for point in points:
        buf += data[start:point]
        start = point
        try:
            found = parse_proxy(buf, mode)
        except HTTPError as exc:
            return ("refused", exc.status)
        if found is not None:
            return (found, bytes(buf) + data[start:])
    return ("waiting", len(buf))
