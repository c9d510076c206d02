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


def _in_fresh_process(code=_WHICH, **env):
    """The choice is made at import: ask a new interpreter what ``code`` prints ('|'-separated)."""
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT, **env),
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
    if compiled.core_is_compiled():
        named += ", core"
    assert compiled.describe() == named
    assert _in_fresh_process(FORKWSGI_PURE_PYTHON="0") == [named, "False", "False", "False", "False", "False", "False", "False"]


def test_a_part_that_is_not_built_is_none():
    assert compiled.compiled("forkwsgi.no_such_module", "anything") is None


_CORE_FILES = ("from forkwsgi import compiled; import importlib; "
               "print(compiled.describe().endswith('core'), *sorted({importlib.import_module(name).__file__.rpartition('.')[2] "
               "for name in compiled.CORE_MODULES}), sep='|')")



def test_the_core_runs_as_source_when_pure_python_is_asked_for():
    assert _in_fresh_process(_CORE_FILES, FORKWSGI_PURE_PYTHON="1") == ["False", "py"]


@pytest.mark.skipif(not compiled.core_is_compiled(),
                    reason="the core is not compiled (no mypyc or C compiler at install, FORKWSGI_NO_MYPYC, "
                           "FORKWSGI_PURE_PYTHON, or its source changed since the build)")
def test_the_core_runs_compiled_where_it_was_built():
    assert _in_fresh_process(_CORE_FILES, FORKWSGI_PURE_PYTHON="0") == ["True", "so"]


def _core_tree(tmp_path, source_age):
    """A tree of the core's modules, each a .py and a 'compiled' twin; the source of the parser is
    ``source_age`` seconds newer than its build (negative: older), the others a minute older."""
    for name in compiled.CORE_MODULES:
        base = tmp_path.joinpath(*name.split("."))
        base.parent.mkdir(parents=True, exist_ok=True)
        source, built = base.with_suffix(".py"), base.parent / (base.name + compiled.EXTENSION_SUFFIXES[0])
        source.write_text("")
        built.write_bytes(b"")
        os.utime(built, (1_000_060, 1_000_060))
        age = source_age if name == "forkwsgi.http.parser" else -60
        os.utime(source, (1_000_060 + age, 1_000_060 + age))
    return str(tmp_path)


def test_a_fresh_build_is_not_stale(tmp_path):
    assert not compiled.core_is_stale(_core_tree(tmp_path, source_age=-60))


def test_one_source_edited_after_the_build_makes_the_whole_core_stale(tmp_path):
    assert compiled.core_is_stale(_core_tree(tmp_path, source_age=60))


def test_a_source_unpacked_just_after_its_build_is_the_same_build(tmp_path):
    assert not compiled.core_is_stale(_core_tree(tmp_path, source_age=1))  # a wheel's files, in either order


def test_the_finder_takes_the_source_of_a_core_module(tmp_path):
    root = _core_tree(tmp_path, source_age=-60)
    package = os.path.join(root, "forkwsgi", "http")
    spec = compiled.SourceFirst(["forkwsgi.http.parser"]).find_spec("forkwsgi.http.parser", [package])
    assert spec.origin == os.path.join(package, "parser.py")


def test_modules_outside_the_core_are_not_its_business(tmp_path):
    package = os.path.join(_core_tree(tmp_path, source_age=-60), "forkwsgi", "http")
    assert compiled.SourceFirst(["forkwsgi.http.parser"]).find_spec("forkwsgi.http.scan", [package]) is None

