"""Apps for tests/test_observability.py."""
import mmap
import os

_HELD = []


def _rss():
    with open("/proc/self/statm", "rb") as handle:
        return int(handle.read().split()[1]) * mmap.PAGESIZE


def leak5(environ, start_response):
    """Keeps 5 MB more per request (touched, so resident) and answers "pid rss"."""
    _HELD.append(b"x" * (5 << 20))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %d" % (os.getpid(), _rss())]
