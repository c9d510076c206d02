"""The optional compiled parts, and the one switch that turns them all off.

Where a C compiler is found, ``pip install`` builds two small modules (setup.py):
the head scanner (http/_speedups.c, twin of scan.python_scan_head) and the
non-blocking accept (worker/_accept.c, twin of accepting.python_accept). Each
Python twin is complete and always present; the tests hold the two to the same
answers. FORKWSGI_PURE_PYTHON=1 makes every part use its Python twin (CI runs
the quick loop that way).
"""
import importlib
import os

# (what it is, its module, the name in it)
PARTS = (("head scanner", "forkwsgi.http._speedups", "scan_head"),
         ("accept", "forkwsgi.worker._accept", "accept"),
         ("environ builder", "forkwsgi.wsgi._environ", "fast_environ"))


def compiled(module, name):
    """``name`` from the compiled ``module``, or None where it was not built or pure Python is asked for.
    (http/scan.py reads the same switch itself: the sans-I/O package imports nothing of forkwsgi.)"""
    if os.environ.get("FORKWSGI_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


def describe():
    """What runs, for --version and the first log line: 'compiled head scanner, accept and environ
    builder', or 'pure Python'."""
    built = [what for what, module, name in PARTS if compiled(module, name) is not None]
    if not built:
        return "pure Python"
    return "compiled " + (" and ".join(built) if len(built) < 3 else ", ".join(built[:-1]) + " and " + built[-1])
