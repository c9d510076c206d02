"""--reload: real servers on 127.0.0.1 serving apps written into tmp_path."""
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
import requests

from forkwsgi.wsgi.devpage import is_loopback

from tests.support.processes import wait_for
from tests.support.server import ROOT

try:
    import watchfiles  # noqa: F401
    HAVE_WATCHFILES = True
except ImportError:
    HAVE_WATCHFILES = False

POLL = {"FORKWSGI_RELOAD_ENGINE": "poll"}
INOTIFY = {"FORKWSGI_RELOAD_ENGINE": "inotify"}
needs_watchfiles = pytest.mark.skipif(not HAVE_WATCHFILES, reason="watchfiles (the reload extra) not installed")
# Stat polling waits for its scan every time: a timing scenario for the full run; inotify stays quick.
ENGINES = [pytest.param(POLL, id="poll", marks=pytest.mark.slow),
           pytest.param(INOTIFY, id="inotify", marks=needs_watchfiles)]
RELOAD_LINE = "Reload triggered by"

APP = '''\
import helper

def app(environ, start_response):
    body = helper.text() + b":%s"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def write_app(directory, version, helper="helper"):
    write(os.path.join(directory, "app.py"), APP % version)
    if not os.path.exists(os.path.join(directory, "helper.py")):
        write(os.path.join(directory, "helper.py"), "def text():\n    return b%r\n" % helper)


def get(server, path="/", session=None, **kwargs):
    try:
        return (session or requests).get(server.url(path), timeout=5, **kwargs)
    except requests.RequestException:
        return None


def body_of(server, path="/"):
    response = get(server, path)
    return response.text if response is not None else None


def wait_body(server, expected, timeout, path="/"):
    """Seconds until ``path`` answers ``expected`` (polled every 20 ms); fails after ``timeout``."""
    started = time.monotonic()
    assert wait_for(lambda: body_of(server, path) == expected, timeout, 0.02), (
        "never got %r within %ss; last %r\n%s" % (expected, timeout, body_of(server, path), server.log()))
    return time.monotonic() - started


def wait_status(server, status, timeout):
    """The first response with ``status`` (a requests Response is falsy for a 500, hence the list)."""
    found = []

    def check():
        response = get(server)
        if response is not None and response.status_code == status:
            found.append(response)
        return bool(found)

    assert wait_for(check, timeout, 0.02), "no %d within %ss\n%s" % (status, timeout, server.log())
    return found[0]


def start(server_factory, tmp_path, env, args=(), app="app:app"):
    server = server_factory(["--reload", "--chdir", str(tmp_path)] + list(args), app=app, env=env)
    return server


@pytest.mark.parametrize("env, limit", [pytest.param(POLL, 3.0, id="poll", marks=pytest.mark.slow),
                                        pytest.param(INOTIFY, 1.0, id="inotify", marks=needs_watchfiles)])
def test_edit_shows_in_next_response(server_factory, tmp_path, env, limit):
    write_app(str(tmp_path), "v1")
    server = start(server_factory, tmp_path, env)
    wait_body(server, "helper:v1", 10)
    engine = "stat polling" if env is POLL else "inotify"
    assert "Reloading on file changes: %s" % engine in server.log()
    time.sleep(0.3)  # the master has the worker's file list by now (it would catch the edit anyway)
    write_app(str(tmp_path), "v2")
    assert wait_body(server, "helper:v2", limit + 2) < limit, server.log()
    time.sleep(0.3)  # the old worker is retired within about 0.1 s of the new one's boot
    assert [body_of(server) for _ in range(10)] == ["helper:v2"] * 10
    # A module the app imports (not the app module itself) is watched too.
    write(os.path.join(tmp_path, "helper.py"), "def text():\n    return b'HELPER'\n")
    assert wait_body(server, "HELPER:v2", limit + 2) < limit, server.log()
    assert server.log().count(RELOAD_LINE) == 2


@pytest.mark.parametrize("env", ENGINES)
def test_syntax_error_page_then_fix(server_factory, tmp_path, env):
    write_app(str(tmp_path), "ok")
    server = start(server_factory, tmp_path, env)
    wait_body(server, "helper:ok", 10)
    write(os.path.join(tmp_path, "app.py"), "def app(environ, start_response:\n    pass\n")
    response = wait_status(server, 500, 10)
    assert "SyntaxError" in response.text and str(tmp_path / "app.py") in response.text
    server.wait_workers(1)  # the previous generation is gone: every answer is the new (broken) one
    assert response.headers["Content-Type"].startswith("text/html")
    # A client that is not on loopback (here: named by a trusted proxy) gets no details.
    remote = get(server, headers={"X-Forwarded-For": "203.0.113.9"})
    assert remote.status_code == 500 and "SyntaxError" not in remote.text and "app.py" not in remote.text
    log = server.log()
    assert "cannot import 'app:app': SyntaxError" in log and "def app(environ, start_response:" in log
    assert server.proc.poll() is None
    write_app(str(tmp_path), "fixed")
    wait_body(server, "helper:fixed", 10)


def test_import_error_at_start_serves_traceback(server_factory, tmp_path):
    write(os.path.join(tmp_path, "helper.py"), "def text():\n    return b'h'\n\nraise RuntimeError('helper is broken')\n")
    write_app(str(tmp_path), "late")
    server = start(server_factory, tmp_path, POLL)
    response = wait_status(server, 500, 10)
    assert "RuntimeError: helper is broken" in response.text and "helper.py" in response.text
    log = server.log()
    summary = "cannot import 'app:app': RuntimeError: helper is broken"
    assert summary in log
    # The one-line summary first, then the full traceback (the import chain into helper.py).
    tail = log[log.index(summary):]
    assert 'File "%s", line 1' % (tmp_path / "app.py") in tail
    assert "raise RuntimeError('helper is broken')" in tail
    assert "exited with code" not in log and server.proc.poll() is None
    # Fixing the broken module (not the app module) reloads: its path was reported too.
    write(os.path.join(tmp_path, "helper.py"), "def text():\n    return b'mended'\n")
    wait_body(server, "mended:late", 10)


def test_creating_a_missing_module_reloads(server_factory, tmp_path):
    write(os.path.join(tmp_path, "app.py"), APP.replace("import helper", "import helper, newmod") % "made")
    write(os.path.join(tmp_path, "helper.py"), "def text():\n    return b'helper'\n")
    server = start(server_factory, tmp_path, POLL)
    response = wait_status(server, 500, 10)
    assert "ModuleNotFoundError" in response.text and "newmod" in response.text
    write(os.path.join(tmp_path, "newmod.py"), "")
    wait_body(server, "helper:made", 10)


def test_production_mode_never_serves_the_page(server_factory, tmp_path):
    write(os.path.join(tmp_path, "app.py"), "raise RuntimeError('no dev page here')\n")
    server = server_factory(["--chdir", str(tmp_path)], app="app:app", ready=False)
    assert server.proc.wait(20) == 3
    assert "no dev page here" in server.log()


@pytest.mark.slow  # a timing scenario: its bounds hold on a quiet machine, the serial full run
@pytest.mark.parametrize("env", ENGINES)
def test_burst_of_saves_gives_one_reload(server_factory, tmp_path, env):
    write_app(str(tmp_path), "start")
    server = start(server_factory, tmp_path, env)
    wait_body(server, "helper:start", 10)
    time.sleep(0.3)
    started = time.monotonic()
    for i in range(20):
        write_app(str(tmp_path), "save%d" % i)
        time.sleep(0.04)
    assert time.monotonic() - started < 1.0
    wait_body(server, "helper:save19", 10)
    time.sleep(1.5)  # room for a second reload, if there were to be one
    log = server.log()
    assert log.count(RELOAD_LINE) == 1, log
    assert log.count("Handling signal: hup") == 1, log


def test_keepalive_requests_across_reload_all_succeed(server_factory, tmp_path):
    write_app(str(tmp_path), "old")
    server = start(server_factory, tmp_path, POLL, ["-w", "2"])
    wait_body(server, "helper:old", 10)
    results, stop = [], threading.Event()

    def client():
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    response = session.get(server.url("/"), timeout=5)
                    results.append((response.status_code, response.text))
                except requests.RequestException as exc:
                    results.append((None, repr(exc)))
                time.sleep(0.005)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        assert wait_for(lambda: len(results) > 20, 10)
        write_app(str(tmp_path), "new")
        assert wait_for(lambda: any(text == "helper:new" for _, text in results), 10), server.log()
        count = len(results)
        assert wait_for(lambda: len(results) > count + 50, 10)
    finally:
        stop.set()
        thread.join(10)
    failures = [result for result in results if result[0] != 200]
    assert not failures, failures[:5]
    texts = [text for _, text in results]
    assert texts[0] == "helper:old" and texts[-1] == "helper:new"
    assert server.log().count(RELOAD_LINE) == 1


def _copy_django_project(tmp_path):
    """tests/realapps/djangoproj as the package devsite.djangoproj (its parent's helpers come along)."""
    realapps = os.path.join(ROOT, "tests", "realapps")
    site = tmp_path / "devsite"
    shutil.copytree(os.path.join(realapps, "djangoproj"), site / "djangoproj",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(realapps, "__init__.py"), site / "__init__.py")
    for name in ("settings.py", "wsgi.py"):
        path = site / "djangoproj" / name
        path.write_text(path.read_text().replace("tests.realapps.djangoproj", "devsite.djangoproj"))
    return site


@pytest.mark.slow  # a real Django project reloading: several seconds; the full run keeps it
def test_django_project_edit_view(server_factory, tmp_path):
    pytest.importorskip("django")
    site = _copy_django_project(tmp_path)
    env = dict(POLL, DJANGO_SETTINGS_MODULE="devsite.djangoproj.settings")
    server = start(server_factory, tmp_path, env, ["-w", "1"], app="devsite.djangoproj.wsgi:application")
    assert wait_for(lambda: body_of(server, "/text") == "plain text body of a known length\n" * 3, 20), server.log()
    views = site / "djangoproj" / "views.py"
    views.write_text(views.read_text().replace("HttpResponse(text_body(),", "HttpResponse(b'edited view',"))
    wait_body(server, "edited view", 10, path="/text")
    assert server.log().count(RELOAD_LINE) == 1


@pytest.mark.slow  # a real Django project booted through manage.py: several seconds
def test_django_manage_py_command(tmp_path):
    """manage.py forkwsgi --reload: the app comes from WSGI_APPLICATION; the flags are forkwsgi's."""
    pytest.importorskip("django")
    site = _copy_django_project(tmp_path)
    settings = site / "djangoproj" / "settings.py"
    settings.write_text(settings.read_text().replace("INSTALLED_APPS = []",
                                                     "INSTALLED_APPS = ['forkwsgi.contrib.django']"))
    manage = tmp_path / "manage.py"
    manage.write_text("import os, sys\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'devsite.djangoproj.settings')\n"
                      "from django.core.management import execute_from_command_line\n"
                      "execute_from_command_line(sys.argv)\n")
    from tests.support.server import Server
    with Server(["--reload", "-w", "1"], app=None, cwd=str(tmp_path), env=POLL,
                command=[sys.executable, str(manage), "forkwsgi"]) as server:
        server.wait_ready()
        assert wait_for(lambda: body_of(server, "/redirect") == "redirect target", 20), server.log()
        assert "Reloading on file changes" in server.log()


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_bad_watched_files_are_logged_and_serving_goes_on(server_factory, tmp_path):
    write_app(str(tmp_path), "steady")
    data = tmp_path / "data.txt"
    data.write_text("one")
    missing = tmp_path / "later.txt"
    server = start(server_factory, tmp_path, POLL,
                   ["--reload-extra-file", str(data), "--reload-extra-file", str(missing)])
    wait_body(server, "helper:steady", 10)
    assert server.wait_log("%s does not exist (yet)" % missing)

    data.chmod(0)  # as root the file stays readable; the missing permission is logged all the same
    assert server.wait_log("watched file %s is not readable" % data, 5), server.log()
    assert body_of(server) == "helper:steady"

    data.unlink()
    assert server.wait_log("watched file %s was removed" % data, 5), server.log()
    wait_body(server, "helper:steady", 5)

    data.mkdir()
    assert server.wait_log("watched file %s is now a directory" % data, 5), server.log()
    wait_body(server, "helper:steady", 5)

    missing.write_text("here now")  # a watched file that appears triggers a reload too
    assert server.wait_log("%s (created)" % missing, 5), server.log()
    # An app module removed: logged, reloaded, and the error page (not a dead server) follows.
    os.unlink(tmp_path / "helper.py")
    assert server.wait_log("watched file %s was removed" % (tmp_path / "helper.py"), 5), server.log()
    wait_status(server, 500, 10)
    assert server.proc.poll() is None
    write(os.path.join(tmp_path, "helper.py"), "def text():\n    return b'back'\n")
    wait_body(server, "back:steady", 10)


def test_config_file_change_reloads(server_factory, tmp_path):
    write_app(str(tmp_path), "conf")
    config = tmp_path / "forkwsgi.conf.py"
    config.write_text("workers = 1\n")
    server = start(server_factory, tmp_path, POLL, ["-c", str(config)])
    wait_body(server, "helper:conf", 10)
    server.wait_workers(1)
    config.write_text("workers = 2\n")
    assert server.wait_log(RELOAD_LINE, 5), server.log()
    server.wait_workers(2)


def test_reload_with_preload_is_refused(tmp_path):
    write_app(str(tmp_path), "x")
    result = subprocess.run([sys.executable, "-m", "forkwsgi", "--reload", "--preload", "--chdir", str(tmp_path),
                             "app:app"], capture_output=True, text=True, timeout=30,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--reload" in lines[0] and "--preload" in lines[0], result.stderr


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("203.0.113.9", False), ("::2", False), ("", False), (None, False), ("unix", False)])
def test_is_loopback(address, expected):
    assert is_loopback(address) is expected
