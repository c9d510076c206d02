"""The optional compiled parts, and the one switch that turns them all off.

Where a C compiler is found, ``pip install`` builds five small modules
(setup.py): http/_speedups.c (the head scanner, twin of
scan.python_scan_head, with its reader of a whole plain request, whose twin
is the parser's own path; and the response head reader, twin of
response.python_read_start), worker/_accept.c (the non-blocking accept, twin
of accepting.acceptor's reference), worker/_loopio.c (the loop's epoll wait,
reads and writes, twins of select.epoll.poll and the socket's recv and send),
wsgi/_environ.c (the environ builder, twin of
environ._head_environ) and wsgi/_response.c (the response writer, twin of
wsgi.response.PythonResponse). Each Python twin is complete and always
present; the tests hold the two to the same answers. FORKWSGI_PURE_PYTHON=1
makes every part use its Python twin (CI runs the quick loop that way).
"""
import importlib
import os

# (what it is, its module, the name in it)
PARTS = (("head scanner", "forkwsgi.http._speedups", "scan_head"),
         ("response head", "forkwsgi.http._speedups", "read_start"),
         ("accept", "forkwsgi.worker._accept", "accept"),
         ("environ", "forkwsgi.wsgi._environ", "fast_environ"),
         ("response writer", "forkwsgi.wsgi._response", "bind"),
         ("epoll wait", "forkwsgi.worker._loopio", "wait"),
         ("socket calls", "forkwsgi.worker._loopio", "recv"))


def compiled(module, name):
    """``name`` from the compiled ``module``, or None where it was not built or pure Python is asked for."""
    if os.environ.get("FORKWSGI_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


def describe():
    """What runs, for --version and the first log line: 'compiled: head scanner, response head,
    accept, environ, response writer, epoll wait, socket calls' (the parts built), or 'pure Python'."""
    built = [what for what, module, name in PARTS if compiled(module, name) is not None]
    return "compiled: " + ", ".join(built) if built else "pure Python"
