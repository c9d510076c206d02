"""Apps for tests/e2e/test_observability.py."""
import os

from forkwsgi.shared.stats import process_uss

_HELD = []


def _uss():
    """What --max-worker-memory limits: this process's private pages."""
    return process_uss(os.getpid())


def leak5(environ, start_response):
    """Keeps 5 MB more per request (touched, so resident) and answers "pid uss"."""
    _HELD.append(b"x" * (5 << 20))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %d" % (os.getpid(), _uss())]
