"""A config file, command line and hooks written for gunicorn run unchanged (unit tests, in-process)."""
import io
import logging
import ssl

import pytest

gunicorn_config = pytest.importorskip("gunicorn.config")

from forkwsgi.config.cmdline import build_parser, parse_settings  # noqa: E402
from forkwsgi.config.loader import build_config  # noqa: E402
from forkwsgi.errors import ConfigError  # noqa: E402
from forkwsgi.config.hookapi import HookRequest  # noqa: E402
from forkwsgi.http.parser import Limits, RequestReader  # noqa: E402
from forkwsgi.observe.accesslog import AccessLog  # noqa: E402
from forkwsgi.config.settings import BY_NAME, SETTINGS, audit  # noqa: E402

from tests.support.settings import make_config  # noqa: E402


def parse(raw):
    reader = RequestReader(Limits(4094, 100, 8190, 0, None))
    reader.feed(raw)
    return reader.next_request()


class FakeResponse:
    def __init__(self, status, headers, sent):
        self.status, self.headers, self.sent, self.head_sent = status, headers, sent, True


class Recorder(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def recorded():
    handler = Recorder()
    logger = logging.getLogger("forkwsgi")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


class Arbiter:
    pid = 4242


class WorkerRecord:
    def __init__(self, age, pid):
        self.age, self.pid = age, pid


class Worker:
    """What the worker process passes to its hooks: its age comes with it from the master."""
    pid = 99
    age = 8


# ----- hooks receive gunicorn's objects

def test_server_and_worker_hooks_get_log_cfg_pid_and_age(recorded):
    def on_starting(server):
        server.log.info("starting %d workers, master %d", server.cfg.workers, server.pid)

    def pre_fork(server, worker):
        server.log.warning("forking age %d", worker.age)

    def worker_exit(server, worker):
        worker.log.error("worker %d (age %s) exits; timeout %d", worker.pid, worker.age, worker.cfg.timeout)

    cfg = make_config(workers=3, on_starting=on_starting, pre_fork=pre_fork, worker_exit=worker_exit)
    cfg.call_hook("on_starting", Arbiter())
    cfg.call_hook("pre_fork", Arbiter(), WorkerRecord(7, 0))
    cfg.call_hook("worker_exit", Arbiter(), Worker())
    assert recorded == ["starting 3 workers, master 4242", "forking age 7", "worker 99 (age 8) exits; timeout 30"]


def test_log_has_gunicorns_methods(recorded):
    def when_ready(server):
        log = server.log
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        log.critical("c")
        try:
            raise ValueError("x")
        except ValueError:
            log.exception("x")
        log.log(logging.INFO, "l")
    make_config(when_ready=when_ready).call_hook("when_ready", Arbiter())
    assert recorded == ["d", "i", "w", "e", "c", "x", "l"]


def test_pre_request_req_has_gunicorns_attributes_and_is_the_environ():
    request = parse(b"POST /a%20b/c?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Trace: t1\r\n"
                    b"Content-Length: 0\r\n\r\n")
    environ = {"REMOTE_ADDR": "10.0.0.7", "REMOTE_PORT": "5123", "PATH_INFO": "/a b/c", "wsgi.url_scheme": "http"}
    seen = {}

    def pre_request(worker, req):
        seen.update(method=req.method, path=req.path, query=req.query, uri=req.uri, version=req.version,
                    headers=req.headers, remote_addr=req.remote_addr, scheme=req.scheme,
                    path_info=req["PATH_INFO"], worker_pid=worker.pid)
        req["app.tag"] = "set by the hook"  # forkwsgi's earlier form: the environ, through the same object

    make_config(pre_request=pre_request).pre_request(Worker(), environ, request)
    assert seen == {"method": "POST", "path": "/a%20b/c", "query": "x=1&y=2", "uri": "/a%20b/c?x=1&y=2",
                    "version": (1, 1), "headers": [("HOST", "example.com"), ("X-TRACE", "t1"),
                                                   ("CONTENT-LENGTH", "0")],
                    "remote_addr": ("10.0.0.7", 5123), "scheme": "http", "path_info": "/a b/c", "worker_pid": 99}
    assert environ["app.tag"] == "set by the hook"


def test_post_request_in_each_form_gunicorn_takes_and_in_forkwsgis_earlier_form():
    request = parse(b"GET /p?q HTTP/1.0\r\n\r\n")
    environ = {"PATH_INFO": "/p"}
    response = FakeResponse("404 Not Found", [("Content-Type", "text/plain")], 9)
    calls = []

    def four(worker, req, environ, resp):
        calls.append(("four", req.path, environ["PATH_INFO"], resp.status, resp.status_code, resp.headers,
                      resp.sent))

    def three(worker, req, environ):
        calls.append(("three", req.version, environ["PATH_INFO"]))

    def two(worker, req):
        calls.append(("two", req.query))

    def earlier(worker, environ, status, length):
        calls.append(("earlier", environ["PATH_INFO"], status, length))

    for hook in (four, three, two, earlier):
        make_config(post_request=hook).post_request(Worker(), environ, request, response)
    assert calls == [("four", "/p", "/p", "404 Not Found", 404, [("Content-Type", "text/plain")], 9),
                     ("three", (1, 0), "/p"), ("two", "q"), ("earlier", "/p", "404 Not Found", 9)]


def test_no_request_hook_costs_nothing_per_request():
    cfg = make_config()
    assert cfg.pre_request is None and cfg.post_request is None


def test_ssl_context_hook_gets_a_factory_of_the_default_context():
    default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def gunicorn_form(conf, default_ssl_context_factory):
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context

    def earlier_form(config, context):
        context.check_hostname = False
        return context

    assert make_config(ssl_context=gunicorn_form).ssl_context(None, default) is default
    assert default.minimum_version == ssl.TLSVersion.TLSv1_3
    assert make_config(ssl_context=earlier_form).ssl_context(None, default) is default


def test_nworkers_changed_gets_server_and_both_counts(recorded):
    def nworkers_changed(server, new_value, old_value):
        server.log.info("workers %d -> %d", old_value, new_value)
    make_config(nworkers_changed=nworkers_changed).call_hook("nworkers_changed", Arbiter(), 3, 2)
    assert recorded == ["workers 2 -> 3"]


def test_hook_named_by_dotted_path_is_imported():
    assert BY_NAME["on_exit"].validate("posixpath.basename") is __import__("posixpath").basename


def test_request_view_reads_as_a_mapping():
    environ = {"A": 1}
    req = HookRequest(environ, parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert dict(req) == environ and len(req) == 1 and req.get("B") is None


# ----- every gunicorn setting has an answer

def gunicorn_settings():
    return list(gunicorn_config.KNOWN_SETTINGS)


def test_every_gunicorn_setting_name_is_mapped_ignored_or_refused():
    for setting in gunicorn_settings():
        assert setting.name in BY_NAME, "gunicorn's %s has no answer in forkwsgi's settings table" % setting.name
        verdict = BY_NAME[setting.name].gunicorn
        assert verdict and verdict.split(":")[0] in ("same", "ignored", "refused"), (setting.name, verdict)


def test_refused_settings_name_what_to_use_instead():
    refused = [s for s in SETTINGS if (s.gunicorn or "").startswith("refused")]
    assert refused
    for setting in refused:
        assert len(setting.gunicorn.partition(": ")[2]) > 10, setting.name
        value = "something else" if not setting.is_hook else (lambda *args: None)
        verdict, note = audit(setting.name, value)
        assert verdict == "refused" and note, setting.name


def test_gunicorn_defaults_are_taken_without_warning():
    """A config that spells out gunicorn's defaults of the settings that have no effect here is quiet."""
    for setting in SETTINGS:
        if (setting.gunicorn or "").startswith(("ignored", "refused")):
            assert audit(setting.name, setting.default)[0] == "ignored", setting.name
            assert make_config(**{setting.name: setting.default}).ignored_warnings() == [], setting.name


def test_every_gunicorn_flag_is_accepted():
    parser = build_parser()
    for setting in gunicorn_settings():
        for flag in setting.cli or ():
            if setting.name in ("check_config", "print_config"):
                continue
            action = getattr(setting, "action", None)
            args = [flag] if action in ("store_true", "store_const") else [flag, _sample(setting)]
            try:
                parse_settings(parser, args, "command line")
            except ConfigError as exc:  # known, and refused with what to use instead
                assert BY_NAME[setting.name].gunicorn.startswith("refused"), (flag, str(exc))
                assert "unrecognized" not in str(exc)


def _sample(setting):
    samples = {"worker_class": "gthread", "bind": "127.0.0.1:8000", "user": "0", "group": "0",
               "umask": "0o22", "proxy_protocol": "v2", "reload_engine": "poll", "raw_env": "A=1",
               "cert_reqs": "0", "loglevel": "info", "statsd_host": "127.0.0.1:8125", "http_protocols": "h1",
               "protocol": "http", "header_map": "drop", "logger_class": "gunicorn.glogging.Logger",
               "dirty_workers": "0", "control_socket_mode": "0o600"}
    if setting.name in samples:
        return samples[setting.name]
    default = setting.default
    if isinstance(default, bool) or default is None or isinstance(default, (list, dict)):
        return "x"
    return str(default) if not isinstance(default, int) or default else "1"


@pytest.mark.parametrize("value,expected", [("sync", "sync"), ("gthread", "gthread"),
                                            ("gunicorn.workers.gthread.ThreadWorker", "gthread")])
def test_worker_class_sync_and_gthread_are_taken(value, expected):
    assert BY_NAME["worker_class"].validate(value) == expected


@pytest.mark.parametrize("value,hint", [("uvicorn.workers.UvicornWorker", "uvicorn"), ("gevent", "threads")])
def test_other_worker_classes_are_refused_naming_an_alternative(value, hint):
    with pytest.raises(ValueError, match=hint):
        BY_NAME["worker_class"].validate(value)


def test_integer_user_and_group_are_taken():
    values, _ = parse_settings(build_parser(), ["-u", "1000", "-g", "1000", "-m", "0o27"], "command line")
    assert values["user"] == "1000" and values["group"] == "1000" and values["umask"] == 0o27
    assert BY_NAME["user"].validate(1000) == "1000" and BY_NAME["group"].validate(0) == "0"


@pytest.mark.parametrize("value,mode", [(True, "auto"), (False, None), ("off", None), ("v1", "v1"),
                                        ("V2", "v2"), ("auto", "auto"), ("true", "auto")])
def test_proxy_protocol_modes(value, mode):
    assert BY_NAME["proxy_protocol"].validate(value) == mode


def test_tmp_upload_dir_is_the_spool_dir(tmp_path):
    cfg = build_config({"tmp_upload_dir": str(tmp_path)}, {}, lambda args, origin: {})
    assert cfg.spool_dir == str(tmp_path)


def test_ignored_setting_gives_one_warning_line_saying_why():
    cfg = make_config(worker_tmp_dir="/dev/shm")
    assert cfg.ignored_warnings() == ["setting worker_tmp_dir = '/dev/shm' has no effect in forkwsgi: "
                                      "heartbeats are shared memory here, there is no file to place"]
    assert make_config().ignored_warnings() == []


# ----- access log atoms as gunicorn prints them

def access_line(fmt, method, length, seconds):
    log = AccessLog("-", fmt)
    log.stream = io.StringIO()
    environ = {"REQUEST_METHOD": method, "RAW_URI": "/", "PATH_INFO": "/", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1"}
    log.write(environ, "200 OK", [], length, seconds)
    return log.stream.getvalue().strip()


def test_access_log_milliseconds_atom():
    assert access_line("%(M)s %(D)s %(T)s", "GET", 5, 1.2345) == "1234 1234500 1"


def test_access_log_body_size_is_zero_for_an_empty_body():
    assert access_line("%(b)s %(B)s", "HEAD", 0, 0.0) == "0 0"


# ----- what a trusted proxy may tell: secure_scheme_headers, forwarder_headers

def proxied_environ(headers, trusted, target="/app/page"):
    from forkwsgi.wsgi.environ import build_environ
    from forkwsgi.http.head import Request
    base = {"SCRIPT_NAME": "", "SERVER_NAME": "localhost", "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "5555", "wsgi.url_scheme": "http"}
    return build_environ(Request("GET", target, "HTTP/1.1", headers), base, trusted)


@pytest.mark.parametrize("headers,scheme", [
    ([("x-forwarded-ssl", "on")], "https"),
    ([("x-forwarded-protocol", "ssl")], "https"),
    ([("x-forwarded-proto", "https")], "https"),
    ([("x-forwarded-proto", "http")], "http"),
    ([("x-forwarded-ssl", "off")], "http"),
    ([("x-forwarded-proto", "https"), ("x-forwarded-ssl", "on")], "https"),
    ([("x-forwarded-proto", "https"), ("x-forwarded-ssl", "off")], "http"),  # they disagree: unchanged
])
def test_default_secure_scheme_headers_are_gunicorns(headers, scheme):
    from forkwsgi.wsgi.forwarded import TrustedPeers
    assert proxied_environ([("host", "h")] + headers, TrustedPeers(["127.0.0.1"]))["wsgi.url_scheme"] == scheme
    assert proxied_environ([("host", "h")] + headers, TrustedPeers([]))["wsgi.url_scheme"] == "http"


def test_custom_secure_scheme_header():
    from forkwsgi.wsgi.forwarded import TrustedPeers
    trusted = TrustedPeers(["127.0.0.1"], BY_NAME["secure_scheme_headers"].validate({"X-Scheme": "https"}))
    assert proxied_environ([("host", "h"), ("x-scheme", "https")], trusted)["wsgi.url_scheme"] == "https"
    assert proxied_environ([("host", "h"), ("x-forwarded-ssl", "on")], trusted)["wsgi.url_scheme"] == "http"


def test_forwarder_headers_with_underscores_only_from_trusted_peers():
    from forkwsgi.wsgi.forwarded import TrustedPeers
    names = BY_NAME["forwarder_headers"].validate("SCRIPT_NAME,REMOTE_USER")
    headers = [("host", "h"), ("script_name", "/app"), ("remote_user", "alice"), ("other_name", "x")]
    trusted = proxied_environ(headers, TrustedPeers(["127.0.0.1"], None, names))
    assert (trusted["SCRIPT_NAME"], trusted["PATH_INFO"], trusted["HTTP_REMOTE_USER"]) == ("/app", "/page", "alice")
    assert "HTTP_OTHER_NAME" not in trusted
    untrusted = proxied_environ(headers, TrustedPeers([], None, names))
    assert (untrusted["SCRIPT_NAME"], untrusted["PATH_INFO"]) == ("", "/app/page")
    assert "HTTP_REMOTE_USER" not in untrusted


def test_sendfile_off_reads_files_instead(tmp_path):
    from forkwsgi.wsgi.environ import base_environ
    (tmp_path / "f").write_bytes(b"x")
    with open(tmp_path / "f", "rb") as on, open(tmp_path / "f", "rb") as off:
        assert base_environ(make_config(), True)["wsgi.file_wrapper"](on).sendfile_span() is not None
        wrapper = base_environ(make_config(sendfile=False), True)["wsgi.file_wrapper"](off)
        assert wrapper.sendfile_span() is None and list(wrapper) == [b"x"]


# ----- logging configs and syslog, as gunicorn applies them

def test_syslog_gets_the_error_and_access_logs(logging_state):
    import socket
    from forkwsgi.logs import setup_error_log
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        cfg = make_config(syslog=True, syslog_addr="udp://127.0.0.1:%d" % receiver.getsockname()[1],
                          syslog_prefix="myapp", syslog_facility="local0", errorlog="/dev/null",
                          accesslog="/dev/null", wsgi_app="x:app")
        setup_error_log(cfg)

        def when_ready(server):
            server.log.error("hook said %s", "this")
        make_config(when_ready=when_ready).call_hook("when_ready", Arbiter())
        error = receiver.recv(4096).decode()
        assert error.startswith("<131>myapp.error: [") and error.endswith("[ERROR] hook said this\x00")
        access_line("%(m)s %(U)s %(s)s", "GET", 5, 0.0)
        access = receiver.recv(4096).decode()
        assert access.startswith("<134>myapp.access: [") and access.endswith("[INFO] GET / 200\x00")


def test_syslog_can_keep_access_lines_out(logging_state):
    import socket
    from forkwsgi.logs import setup_error_log
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(0.5)
        setup_error_log(make_config(syslog=True, syslog_addr="udp://127.0.0.1:%d" % receiver.getsockname()[1],
                                    disable_redirect_access_to_syslog=True, errorlog="/dev/null"))
        access_line("%(m)s", "GET", 5, 0.0)
        with pytest.raises(socket.timeout):
            receiver.recv(4096)


@pytest.mark.parametrize("kind", ["ini", "json"])
def test_logconfig_file_routes_both_logs(logging_state, tmp_path, kind):
    import json
    from forkwsgi.logs import setup_error_log
    out = tmp_path / "out.log"
    if kind == "ini":
        path = tmp_path / "logging.ini"
        path.write_text(textwrap_ini % str(out))
        cfg = make_config(logconfig=str(path))
    else:
        path = tmp_path / "logging.json"
        path.write_text(json.dumps({
            "version": 1, "formatters": {"f": {"format": "%(name)s|%(levelname)s|%(message)s"}},
            "handlers": {"h": {"class": "logging.FileHandler", "filename": str(out), "formatter": "f"}},
            "root": {"level": "WARNING", "handlers": ["h"]},
            "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["h"], "propagate": False},
                        "gunicorn.access": {"level": "INFO", "handlers": ["h"], "propagate": False}}}))
        cfg = make_config(logconfig_json=str(path))
    setup_error_log(cfg)
    logging.getLogger("forkwsgi").debug("below the level")
    logging.getLogger("forkwsgi").info("an error log line")
    access_line("%(m)s %(s)s", "GET", 5, 0.0)
    for handler in logging.getLogger("gunicorn.error").handlers:
        handler.flush()
    assert out.read_text().splitlines() == ["gunicorn.error|INFO|an error log line", "gunicorn.access|INFO|GET 200"]


textwrap_ini = """[loggers]
keys=root,error,access
[handlers]
keys=file
[formatters]
keys=f
[logger_root]
level=WARNING
handlers=file
[logger_error]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.error
[logger_access]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.access
[handler_file]
class=FileHandler
args=(%r,)
formatter=f
[formatter_f]
format=%%(name)s|%%(levelname)s|%%(message)s
"""


def test_a_broken_logging_config_is_a_clear_error(logging_state, tmp_path):
    from forkwsgi.logs import setup_error_log
    with pytest.raises(ConfigError, match="cannot apply the logging config"):
        setup_error_log(make_config(logconfig_dict={"version": 1, "root": {"handlers": ["missing"]}}))


# ----- --check-config on configs written for gunicorn

def check_config(path, *args):
    import os
    import subprocess
    import sys
    from tests.support.server import ROOT
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FORKWSGI_")}
    environment["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable, "-m", "forkwsgi", "--check-config", "-c", str(path), *args,
                           "tests.apps:app"], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)


def listed(stdout):
    """{name: verdict} from the --check-config listing."""
    found = {}
    for line in stdout.splitlines():
        verdict, _, rest = line.partition(" ")
        if verdict in ("mapped", "ignored", "refused", "unknown"):
            found[rest.strip().partition(":")[0]] = verdict
    return found


def test_a_config_spelling_out_every_gunicorn_default_checks_clean(tmp_path):
    """Every setting of gunicorn's own table, at gunicorn's default, and every hook it calls."""
    lines = []
    for setting in gunicorn_settings():
        if setting.name in ("config", "chdir", "user", "group", "control_socket") or setting.name.startswith(
                ("on_dirty", "dirty_post", "dirty_worker")):
            continue
        default = setting.default
        if callable(default):
            arity = len(__import__("inspect").signature(default).parameters)
            lines.append("def %s(%s):\n    pass\n" % (setting.name, ", ".join("a%d" % i for i in range(arity))))
            continue
        if hasattr(default, "value"):  # ssl enums
            default = int(default.value)
        lines.append("%s = %r\n" % (setting.name, default))
    path = tmp_path / "gunicorn.conf.py"
    path.write_text("".join(lines))
    result = check_config(path)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = listed(result.stdout)
    assert len(verdicts) == len(lines) and set(verdicts.values()) == {"mapped", "ignored"}
    assert verdicts["worker_tmp_dir"] == "ignored" and verdicts["post_request"] == "mapped"
    assert "config OK" in result.stdout and "warning" not in result.stderr


def test_check_config_lists_each_setting_and_fails_only_for_the_refused(tmp_path):
    path = tmp_path / "gunicorn.conf.py"
    path.write_text("workers = 2\nworker_tmp_dir = '/dev/shm'\nworker_class = 'uvicorn.workers.UvicornWorker'\n"
                    "paste = 'development.ini'\nspew = True\n")
    result = check_config(path)
    assert result.returncode != 0
    assert listed(result.stdout) == {"workers": "mapped", "worker_tmp_dir": "ignored", "worker_class": "refused",
                                     "paste": "refused", "spew": "ignored"}
    assert "uvicorn" in result.stdout and "module:app" in result.stdout
    path.write_text("workers = 2\nworker_tmp_dir = '/dev/shm'\n")
    ok = check_config(path)
    assert ok.returncode == 0 and "has no effect" in ok.stderr and "config OK" in ok.stdout


@pytest.mark.parametrize("args,mode", [
    (["--proxy-protocol", "app:x"], "auto"), (["--proxy-protocol", "v2", "app:x"], "v2"),
    (["--proxy-protocol=v1", "app:x"], "v1"), (["--proxy-protocol", "off"], None), (["app:x", "--proxy-protocol"], "auto")])
def test_proxy_protocol_flag_takes_a_mode_or_none(args, mode):
    values, _ = parse_settings(build_parser(), args, "command line")
    assert values["proxy_protocol"] == mode and values.get("wsgi_app", "app:x") == "app:x"


def test_ciphers_limit_the_tls_context(tmp_path):
    from forkwsgi.config.tls import build_context
    from tests.support.certs import openssl
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-days", "1",
             "-subj", "/CN=localhost", cwd=tmp_path)
    tls = {"certfile": str(tmp_path / "c.pem"), "keyfile": str(tmp_path / "k.pem")}
    every = {c["name"] for c in build_context(make_config(**tls)).get_ciphers()}
    chosen = {c["name"] for c in build_context(make_config(ciphers="ECDHE-RSA-AES256-GCM-SHA384", **tls)).get_ciphers()
              if c["protocol"] != "TLSv1.3"}
    assert chosen == {"ECDHE-RSA-AES256-GCM-SHA384"} and len(every) > 3
    with pytest.raises(ConfigError, match="ciphers"):
        build_context(make_config(ciphers="NO-SUCH-CIPHER", **tls))


def test_req_path_of_an_absolute_form_target_is_its_path():
    req = HookRequest({}, parse(b"GET http://example.com/a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
    assert (req.path, req.query, req.uri) == ("/a/b", "x=1", "http://example.com/a/b?x=1")


def test_gunicorn_environment_variables_sit_beneath_forkwsgis():
    parser = build_parser()

    def parse_args(args, origin):
        return parse_settings(parser, args, origin)[0]
    cfg = build_config({}, {"GUNICORN_CMD_ARGS": "--bind=127.0.0.1:9001 -k gthread --threads 3",
                            "WEB_CONCURRENCY": "5"}, parse_args)
    assert (cfg.bind, cfg.threads, cfg.workers) == (["127.0.0.1:9001"], 3, 5)
    assert cfg.sources["workers"] == "environment"
    cfg = build_config({"threads": 2}, {"GUNICORN_CMD_ARGS": "--threads 3 -w 2", "FORKWSGI_CMD_ARGS": "-w 4",
                                        "WEB_CONCURRENCY": "5"}, parse_args)
    assert (cfg.threads, cfg.workers) == (2, 4)


def test_reload_extra_files_patterns_become_the_files_they_match(tmp_path):
    (tmp_path / "templates" / "a").mkdir(parents=True)
    for name in ("templates/x.html", "templates/a/y.html", "templates/z.txt"):
        (tmp_path / name).write_text("")
    files = BY_NAME["reload_extra_files"].validate([str(tmp_path / "templates/**/*.html"), "plain.txt"])
    assert files == [str(tmp_path / "templates/a/y.html"), str(tmp_path / "templates/x.html"), "plain.txt"]


@pytest.mark.parametrize("name,zero", [("limit_request_line", 1 << 20), ("limit_request_fields", 32768),
                                       ("limit_request_field_size", 8190)])
def test_request_limits_of_zero_mean_what_they_mean_to_gunicorn(name, zero):
    assert BY_NAME[name].validate(0) == zero and BY_NAME[name].validate("200") == 200
    with pytest.raises(ValueError):
        BY_NAME[name].validate(-1)


def test_help_lists_every_flag():
    text = build_parser().format_help()
    assert "--worker-class" in text and "--no-sendfile" in text and "--limit-request-field_size" in text


def test_a_failing_nworkers_changed_hook_is_logged_not_raised(recorded):
    def nworkers_changed(server, new_value, old_value):
        raise RuntimeError("boom")
    make_config(nworkers_changed=nworkers_changed).call_hook("nworkers_changed", Arbiter(), 2, 1)
    assert recorded == ["nworkers_changed hook failed"]
