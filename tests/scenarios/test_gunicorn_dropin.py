"""Config files and a command line written for gunicorn, run unchanged by gunicorn 27 and by forkwsgi.

Each test starts both servers on 127.0.0.1 with the same file and arguments,
sends the same requests, and compares what can be observed: status codes,
the environ the app saw, the lines the hooks logged through server.log and
worker.log, and the access log lines (timestamps aside).
"""
import json
import os
import re
import sys
import textwrap

import pytest
import requests

from tests.support.ports import free_port
from tests.support.server import ROOT, Server

pytest.importorskip("gunicorn")

pytestmark = pytest.mark.slow

SERVERS = {"gunicorn": [sys.executable, "-m", "gunicorn"], "forkwsgi": [sys.executable, "-m", "forkwsgi"]}
HOOK_LINE = re.compile(r"^\[[^\]]+\] \[\d+\] \[(\w+)\] (hook .*)$")
ACCESS_TIME = re.compile(r" \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] ")


class Run:
    """What one server showed: the results of the requests, hook log lines, access log lines.

    Access lines are kept sorted: with two workers each writes its own, and gunicorn writes one after
    its response has left, so the next request's line can land first."""

    def __init__(self, results, errors, out, extra=None):
        self.results = results
        self.extra = extra
        self.hook_lines = [m.groups() for m in map(HOOK_LINE.match, errors.splitlines()) if m]
        self.access_lines = sorted(ACCESS_TIME.sub(" [time] ", line) for line in out.splitlines()
                                   if ACCESS_TIME.search(line))
        self.errors = errors


def run_both(tmp_path, config, exercise, args=(), app="tests.gunicorn_apps:app", wait_lines=(), after_stop=None):
    """{server name: Run} of ``exercise(server)`` under each server with the same config file;
    ``after_stop()`` collects what else a run left (a log file) before the next one starts."""
    if config is None:
        config_args = []
    else:
        path = tmp_path / "gunicorn.conf.py"
        path.write_text(textwrap.dedent(config))
        config_args = ["-c", str(path)]
    runs = {}
    port = free_port()  # the same for both: the Host header the app sees is the same
    for name, command in SERVERS.items():
        server = Server(config_args + list(args), app=app, command=command, port=port)
        try:
            server.wait_ready()
            results = exercise(server)
            for text in wait_lines:  # lines written after a response has left (post_request)
                server.wait_log(text, 5)
            server.stop()
            with open(server.out_path, encoding="utf-8", errors="replace") as handle:
                out = handle.read()
            runs[name] = Run(results, server.log(), out, after_stop() if after_stop else None)
        finally:
            server.close()
    return runs


def seen(server, path="/seen", headers=None, env=()):
    response = requests.get(server.url(path + ("?env=" + ",".join(env) if env else "")), headers=headers,
                            timeout=10)
    return response.status_code, response.json()


TYPICAL = """
    import multiprocessing
    bind = "127.0.0.1:8000"
    workers = 2
    threads = 1
    timeout = 30
    keepalive = 5
    accesslog = "-"
    errorlog = "-"
    loglevel = "info"
    preload_app = True
    max_requests = 1000
    max_requests_jitter = 50
    worker_tmp_dir = "/dev/shm"
    forwarded_allow_ips = "127.0.0.1"

    def on_starting(server):
        server.log.info("hook on_starting workers=%d", server.cfg.workers)

    def when_ready(server):
        server.log.info("hook when_ready")

    def post_fork(server, worker):
        server.log.info("hook post_fork age>0=%s", worker.age > 0)

    def pre_request(worker, req):
        worker.log.info("hook pre_request %s %s", req.method, req.path)

    def post_request(worker, req, environ, resp):
        worker.log.info("hook post_request %s %s -> %s", req.method, req.path, resp.status)

    def worker_exit(server, worker):
        server.log.info("hook worker_exit")
"""


def exercise_typical(server):
    results = [seen(server, "/seen", {"X-Trace": "t1"})[1]["environ"]]
    results.append(requests.get(server.url("/status/404"), timeout=10).status_code)
    results.append(requests.head(server.url("/"), timeout=10).status_code)
    results.append(requests.get(server.url("/status/204"), timeout=10).status_code)
    return results


def test_typical_gunicorn_conf_runs_unchanged(tmp_path):
    runs = run_both(tmp_path, TYPICAL, exercise_typical, wait_lines=("hook post_request GET /status/204",))
    gunicorn, forkwsgi = runs["gunicorn"], runs["forkwsgi"]
    assert forkwsgi.results == gunicorn.results
    assert forkwsgi.access_lines == gunicorn.access_lines and len(forkwsgi.access_lines) == 4
    assert sorted(set(forkwsgi.hook_lines)) == sorted(set(gunicorn.hook_lines)), forkwsgi.errors
    assert ("INFO", "hook post_request HEAD / -> 200 OK") in forkwsgi.hook_lines
    assert forkwsgi.hook_lines.count(("INFO", "hook post_fork age>0=True")) == 2
    assert "worker_tmp_dir = '/dev/shm' has no effect" in forkwsgi.errors


EVERY_HOOK = """
    workers = 1
    accesslog = "-"

    def on_starting(server):
        server.log.info("hook on_starting %s %s", server.cfg.workers, server.pid > 0)

    def when_ready(server):
        server.log.warning("hook when_ready")

    def pre_fork(server, worker):
        server.log.info("hook pre_fork %s", worker.age > 0)

    def post_fork(server, worker):
        worker.log.info("hook post_fork %s %s", worker.pid > 0, worker.age > 0)

    def post_worker_init(worker):
        worker.log.info("hook post_worker_init %s %s", worker.cfg.workers, worker.age > 0)

    def pre_request(worker, req):
        headers = dict(req.headers)
        worker.log.info("hook pre_request %s %s %s %s %s %s %s", req.method, req.path, req.query, req.uri,
                        req.version, headers.get("X-TRACE"), req.remote_addr[0])

    def post_request(worker, req, environ, resp):
        app_header = [value for name, value in resp.headers if name.lower() == "x-app"]
        worker.log.info("hook post_request %s %s %s %s %s %s", req.path, environ["PATH_INFO"], resp.status,
                        resp.status_code, resp.sent, app_header)

    def worker_exit(server, worker):
        server.log.info("hook worker_exit %s", worker.pid > 0)

    def child_exit(server, worker):
        server.log.info("hook child_exit %s", worker.pid > 0)

    def on_exit(server):
        server.log.info("hook on_exit")
"""


def exercise_every_hook(server):
    statuses = [requests.get(server.url("/a/b?x=1&y=%20"), headers={"X-Trace": "t2"}, timeout=10).status_code,
                requests.get(server.url("/status/201"), timeout=10).status_code]
    return statuses


def test_every_hook_logs_through_server_and_worker_log_as_gunicorn_documents(tmp_path):
    runs = run_both(tmp_path, EVERY_HOOK, exercise_every_hook, wait_lines=("hook post_request /status/201",))
    gunicorn, forkwsgi = runs["gunicorn"], runs["forkwsgi"]
    assert forkwsgi.results == gunicorn.results == [200, 201]
    # the same lines, each as often (their order across processes is a race in both servers)
    assert sorted(forkwsgi.hook_lines) == sorted(gunicorn.hook_lines), (forkwsgi.errors, gunicorn.errors)
    assert ("INFO", "hook post_request /a/b /a/b 200 OK 200 5 ['yes']") in forkwsgi.hook_lines
    assert ("INFO", "hook pre_request GET /a/b x=1&y=%20 /a/b?x=1&y=%20 (1, 1) t2 127.0.0.1") in forkwsgi.hook_lines
    assert forkwsgi.access_lines == gunicorn.access_lines


SCHEME = """
    workers = 1
    forwarded_allow_ips = "127.0.0.1"
    secure_scheme_headers = {"X-FORWARDED-SSL": "on", "X-SCHEME": "https"}
    forwarder_headers = "SCRIPT_NAME,REMOTE_USER"
"""


def exercise_scheme(server):
    results = [seen(server, "/seen", headers)[1]["environ"] for headers in (
        {"X-Forwarded-Ssl": "on"}, {"X-Scheme": "https"}, {"X-Scheme": "http"}, {"X-Forwarded-Proto": "https"})]
    return results + [seen(server, "/mount/seen", {"SCRIPT_NAME": "/mount", "REMOTE_USER": "alice"})[1]["environ"]]


def test_secure_scheme_and_forwarder_headers_reach_the_app_as_under_gunicorn(tmp_path):
    runs = run_both(tmp_path, SCHEME, exercise_scheme)
    gunicorn, forkwsgi = runs["gunicorn"], runs["forkwsgi"]
    assert forkwsgi.results == gunicorn.results
    assert [r["wsgi.url_scheme"] for r in forkwsgi.results[:4]] == ["https", "https", "http", "http"]
    mounted = forkwsgi.results[4]
    assert (mounted["SCRIPT_NAME"], mounted["PATH_INFO"], mounted["HTTP_REMOTE_USER"]) == ("/mount", "/seen", "alice")


def write_app_dir(tmp_path):
    """A project directory outside the repository, importable only through pythonpath."""
    project = tmp_path / "srv" / "app"
    (project / "mysite").mkdir(parents=True)
    (project / "mysite" / "__init__.py").write_text("")
    with open(os.path.join(ROOT, "tests", "gunicorn_apps.py")) as handle:
        (project / "mysite" / "wsgi.py").write_text(handle.read() + "\napplication = app\n")
    return project


def test_raw_env_and_pythonpath_as_under_gunicorn(tmp_path):
    project = write_app_dir(tmp_path)
    config = """
        workers = 1
        raw_env = ["APP_MODE=compat", "EMPTY="]
        pythonpath = "%s"
    """ % project
    runs = run_both(tmp_path, config, lambda server: seen(server, env=("APP_MODE", "EMPTY")),
                    app="mysite.wsgi:application")
    assert runs["forkwsgi"].results == runs["gunicorn"].results
    status, body = runs["forkwsgi"].results
    assert status == 200 and body["env"] == {"APP_MODE": "compat", "EMPTY": ""}
    assert body["module_dir"] == str(project / "mysite")


GTHREAD = """
    worker_class = "gthread"
    threads = 4
    workers = 1
"""


def exercise_gthread(server):
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = __import__("time").monotonic()
        statuses = list(pool.map(lambda _: requests.get(server.url("/sleep?0.5"), timeout=10).status_code,
                                 range(4)))
        together = __import__("time").monotonic() - started < 1.5  # 4 sleeps at once, not one after another
    return statuses, together, seen(server)[1]["environ"]["wsgi.multithread"]


def test_gthread_worker_class_with_threads(tmp_path):
    runs = run_both(tmp_path, GTHREAD, exercise_gthread)
    assert runs["forkwsgi"].results == runs["gunicorn"].results == ([200] * 4, True, True)


def test_typical_gunicorn_command_line_runs_unchanged(tmp_path):
    project = write_app_dir(tmp_path)
    args = ["-k", "gthread", "--threads", "4", "-w", "2", "--timeout", "30", "--keep-alive", "5",
            "--access-logfile", "-", "--error-logfile", "-", "--log-level", "info",
            "-e", "DJANGO_SETTINGS_MODULE=mysite.settings", "--pythonpath", str(project),
            "--limit-request-field_size", "8190", "--worker-tmp-dir", "/dev/shm"]

    def exercise(server):
        return [seen(server, env=("DJANGO_SETTINGS_MODULE",)), requests.get(server.url("/"), timeout=10).text]

    runs = run_both(tmp_path, None, exercise, args=args, app="mysite.wsgi:application")
    gunicorn, forkwsgi = runs["gunicorn"], runs["forkwsgi"]
    assert forkwsgi.results == gunicorn.results
    (status, body), hello = forkwsgi.results
    assert status == 200 and hello == "hello"
    assert body["env"] == {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    assert body["module_dir"] == str(project / "mysite") and body["environ"]["wsgi.multithread"] is True
    assert forkwsgi.access_lines == gunicorn.access_lines and len(forkwsgi.access_lines) == 2


LOGCONFIG = """
    import json
    import logging

    workers = 1
    accesslog = "-"

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            return json.dumps({"level": record.levelname, "logger": record.name, "message": record.getMessage()})

    logconfig_dict = {
        "version": 1,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": %r, "formatter": "json"}},
        "root": {"level": "WARNING", "handlers": ["file"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["file"], "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": ["file"], "propagate": False}},
    }

    def when_ready(server):
        server.log.info("hook when_ready")

    def post_request(worker, req, environ, resp):
        worker.log.warning("hook post_request %%s %%s", req.path, resp.status_code)
"""


def test_logconfig_dict_with_a_json_formatter_and_a_file_handler(tmp_path):
    log_file = tmp_path / "json.log"

    def collect():
        records = [json.loads(line) for line in log_file.read_text().splitlines()]
        log_file.unlink()
        return [dict(r, message=ACCESS_TIME.sub(" [time] ", r["message"])) for r in records
                if r["message"].startswith("hook ") or r["logger"] == "gunicorn.access"]

    runs = run_both(tmp_path, LOGCONFIG % str(log_file), lambda server: [
        requests.get(server.url(path), timeout=10).status_code for path in ("/", "/status/404")],
        after_stop=collect)
    gunicorn, forkwsgi = runs["gunicorn"], runs["forkwsgi"]
    assert forkwsgi.results == gunicorn.results == [200, 404]
    assert sorted(map(json.dumps, forkwsgi.extra)) == sorted(map(json.dumps, gunicorn.extra))
    assert {"level": "WARNING", "logger": "gunicorn.error", "message": "hook post_request /status/404 404"} \
        in forkwsgi.extra
    assert sum(r["logger"] == "gunicorn.access" for r in forkwsgi.extra) == 2
    assert "hook" not in forkwsgi.errors and not forkwsgi.access_lines  # the file took them, not the streams


def test_capture_output_sends_what_the_app_prints_to_the_error_log(tmp_path):
    error_log = tmp_path / "error.log"

    def collect():
        text = error_log.read_text()
        error_log.unlink()
        return ["the app printed this" in text, "and wrote this to stderr" in text]

    runs = run_both(tmp_path, None, lambda server: requests.get(server.url("/print"), timeout=10).text,
                    args=["--capture-output", "--error-logfile", str(error_log)], after_stop=collect)
    assert runs["forkwsgi"].results == runs["gunicorn"].results == "printed"
    assert runs["forkwsgi"].extra == runs["gunicorn"].extra == [True, True]


NWORKERS = """
    workers = 1

    def nworkers_changed(server, new_value, old_value):
        server.log.info("hook nworkers_changed %s -> %s", old_value, new_value)
"""


def test_nworkers_changed_on_ttin_and_ttou(tmp_path):
    import signal

    def exercise(server):
        server.send(signal.SIGTTIN)
        assert server.wait_log("hook nworkers_changed 1 -> 2")
        server.send(signal.SIGTTOU)
        assert server.wait_log("hook nworkers_changed 2 -> 1")
        return requests.get(server.url("/"), timeout=10).status_code

    runs = run_both(tmp_path, NWORKERS, exercise)
    assert runs["forkwsgi"].results == runs["gunicorn"].results == 200
    assert runs["forkwsgi"].hook_lines == runs["gunicorn"].hook_lines == [
        ("INFO", "hook nworkers_changed None -> 1"), ("INFO", "hook nworkers_changed 1 -> 2"),
        ("INFO", "hook nworkers_changed 2 -> 1")]


@pytest.mark.parametrize("inherit", [True, False])
def test_enable_stdio_inheritance_keeps_a_daemons_output(tmp_path, inherit):
    """-D sends stdout to /dev/null; with -R (gunicorn's --enable-stdio-inheritance) the access log
    written to '-' still reaches the stdout the daemon was started with."""
    import os
    import signal
    import subprocess
    from tests.support.processes import process_gone, wait_for
    from tests.support.server import ROOT
    port, pidfile, out = free_port(), tmp_path / "app.pid", tmp_path / "out"
    argv = [sys.executable, "-m", "forkwsgi", "-D", "--pid", str(pidfile), "-b", "127.0.0.1:%d" % port,
            "--access-logfile", "-", "--error-logfile", str(tmp_path / "error.log")] + (["-R"] if inherit else [])
    with open(out, "wb") as handle:
        subprocess.run(argv + ["tests.gunicorn_apps:app"], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                       env=dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1"), timeout=30, check=True)
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10), (tmp_path / "error.log").read_text()
    pid = int(pidfile.read_text())
    try:
        assert wait_for(lambda: _answers(port), 10)
        assert wait_for(lambda: '"GET /?daemon HTTP/1.1" 200' in out.read_text(), 3 if inherit else 1) == inherit
    finally:
        os.kill(pid, signal.SIGTERM)
        assert wait_for(lambda: process_gone(pid), 15)


def _answers(port):
    try:
        return requests.get("http://127.0.0.1:%d/?daemon" % port, timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("mode", ["v2", "auto"])
def test_proxy_protocol_v2_gives_the_client_address_as_under_gunicorn(tmp_path, mode):
    import ipaddress
    import struct
    from forkwsgi.http.proxy import V2_SIGNATURE
    from tests.support.http import ResponseReader, connect
    addresses = (ipaddress.ip_address("203.0.113.9").packed + ipaddress.ip_address("127.0.0.1").packed
                 + struct.pack("!HH", 51000, 80))
    header = V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(addresses)) + addresses

    def exercise(server):
        with connect(server.port) as sock:
            sock.sendall(header + b"GET /seen HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, body = ResponseReader(sock).read()
        return status, json.loads(body)["environ"]["REMOTE_ADDR"]

    runs = run_both(tmp_path, None, exercise, args=["--proxy-protocol", mode, "--proxy-allow-from", "127.0.0.1"])
    assert runs["forkwsgi"].results == runs["gunicorn"].results == (200, "203.0.113.9")
