"""Fixtures of every test: servers started and always stopped, a Config of defaults, logging put back.

The helpers themselves live in tests/support/ (one of each).
"""
import compileall
import logging
import os
import shutil
import sys
import tempfile

import pytest

from tests.support.certs import make_certificates
from tests.support.server import ROOT, Server, close_forgotten

if sys.dont_write_bytecode:
    # PYTHONDONTWRITEBYTECODE: without any bytecode cache, pytest rewrites every test module again in
    # each (xdist) process. Keep this process's bytecode (and its workers') in one folder under the
    # temp dir instead; the source tree and the installed packages get none from it.
    sys.pycache_prefix = os.path.join(tempfile.gettempdir(), "forkwsgi-tests-pycache")
    sys.dont_write_bytecode = False


QUICK_LOOP_WORKERS = 4  # the quick loop's test processes: the servers it starts mostly wait on sockets


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """``pytest -m "not slow"`` is the quick loop: it runs on QUICK_LOOP_WORKERS xdist processes
    unless -n says otherwise (-n 0: in this process). The full run stays serial, as CI runs it."""
    if config.option.markexpr.replace("'", '"') == "not slow" and getattr(config.option, "numprocesses", 0) is None \
            and not hasattr(config, "workerinput"):
        config.option.numprocesses = QUICK_LOOP_WORKERS
        config.option.dist = "load"


def pytest_configure(config):
    """Compile forkwsgi and the test apps once, here in the main process, so that the servers the
    tests start (hundreds) read bytecode instead of each compiling them from source again."""
    if not hasattr(config, "workerinput"):
        prefix, sys.pycache_prefix = sys.pycache_prefix, None  # beside the sources, where the servers look
        try:
            for directory in ("forkwsgi", "tests"):
                compileall.compile_dir(os.path.join(ROOT, directory), quiet=1)
        finally:
            sys.pycache_prefix = prefix


@pytest.fixture(scope="session", autouse=True)
def _close_forgotten_servers():
    """Servers made outside server_factory (a module fixture, a test) still lose their log files."""
    yield
    close_forgotten()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """The test certificates (tests/support/certs.py), made once a session."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes test certificates")
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def server_factory():
    servers = []

    def start(args=(), ready=True, **kwargs):
        server = Server(args, **kwargs)
        servers.append(server)
        return server.wait_ready() if ready else server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def logging_state():
    """setup_error_log changes process-wide loggers: put them back afterwards."""
    from forkwsgi import logs
    names = ("forkwsgi", "gunicorn.error", "gunicorn.access", None)
    saved = [(logging.getLogger(n), list(logging.getLogger(n).handlers), logging.getLogger(n).level,
              logging.getLogger(n).propagate) for n in names]
    routed = dict(logs._routed)
    yield
    for logger, handlers, level, propagate in saved:
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    logs._routed.update(routed)
