"""Apps for tests/e2e/test_spool.py: responses streamed in chunks, bodies read or left unread."""
CHUNK = b"x" * 65536


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stream":  # /stream?BYTES in 64 KiB chunks, as a generator
        size = int(environ.get("QUERY_STRING") or 1 << 20)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return (CHUNK[:min(len(CHUNK), size - offset)] for offset in range(0, size, len(CHUNK)))
    if path == "/consume":  # reads the whole body, answers its length
        size = len(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % size]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
