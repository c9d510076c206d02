"""Which parts run compiled (forkwsgi/compiled.py): what --version and the first log line say, and
the one switch, FORKWSGI_PURE_PYTHON=1, that puts every part on its Python twin."""
import os
import subprocess
import sys

import pytest

from forkwsgi import compiled
from forkwsgi.http import response, scan
from forkwsgi.worker import accepting, connection, poller
from forkwsgi.wsgi import environ
from forkwsgi.wsgi import response as writer

from tests.support.server import ROOT

_WHICH = ("from forkwsgi import compiled; from forkwsgi.http import response, scan; "
          "from forkwsgi.worker import accepting, connection, poller; from forkwsgi.wsgi import environ, response as writer; "
          "print(compiled.describe(), scan.compiled_scan_head is None, response.read_start is response.python_read_start, "
          "accepting.compiled_accept is None, environ.fast_environ is None, "
          "writer.Response is writer.PythonResponse, poller.compiled_wait is None, "
          "connection.recv_nowait is None, sep='|')")


def _in_fresh_process(**env):
    """The choice is made at import: ask a new interpreter."""
    result = subprocess.run([sys.executable, "-c", _WHICH], env=dict(os.environ, PYTHONPATH=ROOT, **env),
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip().split("|")


def test_pure_python_when_asked_for_every_part():
    assert _in_fresh_process(FORKWSGI_PURE_PYTHON="1") == ["pure Python", "True", "True", "True", "True", "True", "True", "True"]


@pytest.mark.skipif(None in (scan.compiled_scan_head, response._fast_read_start, accepting.compiled_accept,
                             environ.fast_environ, writer._bind, poller.compiled_wait,
                             connection.recv_nowait),
                    reason="the compiled parts are not built (no C compiler at install, FORKWSGI_NO_EXTENSIONS "
                           "or FORKWSGI_PURE_PYTHON)")
def test_the_built_parts_are_named():
    named = "compiled: head scanner, response head, accept, environ, response writer, epoll wait, socket calls"
    assert compiled.describe() == named
    assert _in_fresh_process(FORKWSGI_PURE_PYTHON="0") == [named, "False", "False", "False", "False", "False", "False", "False"]


def test_a_part_that_is_not_built_is_none():
    assert compiled.compiled("forkwsgi.no_such_module", "anything") is None
