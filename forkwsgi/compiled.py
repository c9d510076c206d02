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
present; the tests hold the two to the same answers.

The worker's core (CORE_MODULES) is compiled by mypyc from its own
source: no twin, the .py files are the source of truth. A compiled module
is found before its .py, so ``SourceFirst`` takes the .py instead where pure
Python is asked for, or where a core .py changed after the build (an edit to
an editable install must not be shadowed by a stale build: the whole core then
runs as source, since its compiled modules import each other directly).

FORKWSGI_PURE_PYTHON=1 makes every part run as Python (CI runs the quick loop
that way).
"""
import importlib
import importlib.util
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES

# The worker's core: the modules every request passes through, compiled by mypyc where it was at
# hand (setup.py reads these two names by running this file, so it imports nothing of forkwsgi).
CORE_MODULES = (
    "forkwsgi.worker.loop",
    "forkwsgi.worker.channels",
    "forkwsgi.worker.scheduler",
    "forkwsgi.worker.handler",
    "forkwsgi.worker.executor",
    "forkwsgi.worker.connection",
    "forkwsgi.worker.intake",
    "forkwsgi.worker.accepting",
    "forkwsgi.worker.outbuf",
    "forkwsgi.worker.poller",
    "forkwsgi.worker.states",
    "forkwsgi.worker.stopping",
    "forkwsgi.shared.backlog",
    "forkwsgi.http.head",
    "forkwsgi.http.parser",
    "forkwsgi.http.response",
    "forkwsgi.wsgi.environ",
    "forkwsgi.wsgi.queuetime",
)
CORE_GROUP = "forkwsgi._core"  # the shared library they are built into: forkwsgi/_core__mypyc.*.so
STALE_AFTER = 2.0  # seconds: a core module's source this much newer than its build was edited since

# (what it is, its module, the name in it)
PARTS = (("head scanner", "forkwsgi.http._speedups", "scan_head"),
         ("response head", "forkwsgi.http._speedups", "read_start"),
         ("accept", "forkwsgi.worker._accept", "accept"),
         ("environ", "forkwsgi.wsgi._environ", "fast_environ"),
         ("response writer", "forkwsgi.wsgi._response", "bind"),
         ("epoll wait", "forkwsgi.worker._loopio", "wait"),
         ("socket calls", "forkwsgi.worker._loopio", "recv"))


def pure_python():
    """Whether FORKWSGI_PURE_PYTHON asks for every part as Python."""
    return os.environ.get("FORKWSGI_PURE_PYTHON", "") not in ("", "0")


def compiled(module, name):
    """``name`` from the compiled ``module``, or None where it was not built or pure Python is asked for."""
    if pure_python():
        return None
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


def core_is_compiled():
    """Whether the worker's core runs compiled (mypyc): each module built, fresh, and pure Python not
    asked for (a core of which one module was edited since the build is not called compiled)."""
    specs = [importlib.util.find_spec(name) for name in CORE_MODULES]
    return all(spec is not None and spec.origin is not None and spec.origin.endswith(tuple(EXTENSION_SUFFIXES))
               for spec in specs)


def describe():
    """What runs, for --version and the first log line: 'compiled: head scanner, response head,
    accept, environ, response writer, epoll wait, socket calls, core' (the parts built), or 'pure Python'."""
    built = [what for what, module, name in PARTS if compiled(module, name) is not None]
    if core_is_compiled():
        built.append("core")
    return "compiled: " + ", ".join(built) if built else "pure Python"


class SourceFirst:
    """A finder, first on sys.meta_path, that answers for the core's modules with their .py file (where
    pure Python is asked for, or the core's build is stale), before the usual finders, which prefer
    the compiled module."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names or not path:
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in path:
            source = os.path.join(entry, leaf + ".py")
            if os.path.exists(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def core_is_stale(root=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
    """Whether one of the core's modules under ``root`` was edited after the core was built. The whole
    core is stale then, not that module alone: the modules of one mypyc build import each other
    inside their shared library, past any finder. Files a wheel unpacks together may land in either
    order: a source newer by less than STALE_AFTER is the same build."""
    for name in CORE_MODULES:
        base = os.path.join(root, *name.split("."))
        try:
            source_time = os.stat(base + ".py").st_mtime
        except OSError:
            continue
        for suffix in EXTENSION_SUFFIXES:
            try:
                if os.stat(base + suffix).st_mtime + STALE_AFTER < source_time:
                    return True
                break
            except OSError:
                continue
    return False


def install_source_first():
    """Put SourceFirst in front of the import system where pure Python is asked for or the core's
    build is stale (forkwsgi/__init__.py, before the core is imported)."""
    if (pure_python() or core_is_stale()) and not any(type(finder) is SourceFirst for finder in sys.meta_path):
        sys.meta_path.insert(0, SourceFirst(CORE_MODULES))
