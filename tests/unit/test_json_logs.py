"""--log-format json in-process: both logs are one JSON object a line, whatever the client sends
(tests/e2e/test_json_logs.py checks the same on a real server)."""
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys

from forkwsgi.wsgi.environ import base_environ
from forkwsgi.logs import Rfc3339Clock, setup_error_log
from forkwsgi.observe.accesslog import AccessLog
from tests.support.server import ROOT
from tests.support.settings import make_config

ACCESS_FIELDS = {"time", "level", "message", "remote_addr", "method", "path", "query", "protocol", "status",
                 "bytes", "duration", "queue_time", "user_agent", "referer", "request_id", "pid"}
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(text):
    """Every line of a log, parsed; fails on the first line that is not one JSON object."""
    return [json.loads(line) for line in text.splitlines()]


def access_json(environ, status="200 OK", length=5, seconds=0.25):
    log = AccessLog("-", "", "json")
    log.stream = io.StringIO()
    log.write(environ, status, [], length, seconds)
    text = log.stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    return json.loads(text)


def client_environ(**values):
    """An environ as build_environ makes it: what the client sent, its bytes decoded as latin-1."""
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/", "PATH_INFO": "/", "QUERY_STRING": "",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}
    environ.update(values)
    return environ


# ----- the access line, in-process

def test_access_line_has_every_field():
    line = access_json(client_environ(
        RAW_URI="/a/b?x=1", PATH_INFO="/a/b", QUERY_STRING="x=1", REMOTE_ADDR="10.0.0.7",
        HTTP_USER_AGENT="curl/8.5", HTTP_REFERER="http://example.com/", HTTP_X_REQUEST_ID="req-42",
        **{"forkwsgi.queue_time": 0.0031}), status="201 Created", length=1234, seconds=0.0125)
    assert set(line) == ACCESS_FIELDS
    assert RFC3339_MS.match(line["time"])
    assert line["level"] == "INFO"
    assert line["message"] == "GET /a/b?x=1 HTTP/1.1"
    assert (line["remote_addr"], line["method"], line["path"], line["query"], line["protocol"]) == (
        "10.0.0.7", "GET", "/a/b", "x=1", "HTTP/1.1")
    assert (line["status"], line["bytes"], line["duration"], line["queue_time"]) == (201, 1234, 0.0125, 0.0031)
    assert (line["user_agent"], line["referer"], line["request_id"]) == ("curl/8.5", "http://example.com/",
                                                                         "req-42")
    assert line["pid"] == os.getpid()


def test_absent_values_are_null():
    line = access_json(client_environ(), length=None)
    assert set(line) == ACCESS_FIELDS
    assert [line[name] for name in ("user_agent", "referer", "request_id", "queue_time", "bytes")] == [None] * 5
    assert line["query"] == ""


def test_client_bytes_are_decoded_faithfully_and_cannot_split_the_line():
    utf8_path = "/caf\u00e9".encode("utf-8").decode("latin-1")  # as PEP 3333 hands it over
    line = access_json(client_environ(
        RAW_URI="/caf%C3%A9%0A%22", PATH_INFO=utf8_path + '\n"', QUERY_STRING='q="x"\r\n',
        HTTP_USER_AGENT='bad \xff\xfe bytes\x00\x1b[31m', HTTP_REFERER='"}\n{"forged": true',
        HTTP_X_REQUEST_ID="\u2028"))
    assert line["path"] == '/caf\u00e9\n"'
    assert line["query"] == 'q="x"\r\n'
    assert line["user_agent"] == "bad \\xff\\xfe bytes\x00\x1b[31m"  # invalid UTF-8 shows as \xNN
    assert line["referer"] == '"}\n{"forged": true'
    assert line["message"] == "GET /caf%C3%A9%0A%22 HTTP/1.1"


def test_the_line_is_ascii_only():
    log = AccessLog("-", "", "json")
    log.stream = io.StringIO()
    log.write(client_environ(HTTP_USER_AGENT="\u00e9\xff\x85" * 3000), "200 OK", [], 1, 0.0)  # 9 KB
    text = log.stream.getvalue()
    assert text.isascii() and text.count("\n") == 1
    assert len(json.loads(text)["user_agent"]) > 9000


def test_an_app_that_rewrote_the_environ_in_text_still_logs():
    line = access_json(client_environ(PATH_INFO="/\u65e5\u672c", HTTP_X_REQUEST_ID=42,
                                      **{"forkwsgi.queue_time": "soon"}))
    assert (line["path"], line["request_id"], line["queue_time"]) == ("/\u65e5\u672c", "42", None)


def test_text_format_is_unchanged_by_default():
    log = AccessLog("-", '%(h)s "%(r)s" %(s)s %(b)s "%(a)s"')
    log.stream = io.StringIO()
    log.write(client_environ(RAW_URI="/x?y", HTTP_USER_AGENT="ua"), "200 OK", [], 5, 0.0)
    assert log.stream.getvalue() == '127.0.0.1 "GET /x?y HTTP/1.1" 200 5 "ua"\n'


# ----- the error log, in-process

def test_error_log_records_and_tracebacks_are_one_line_each(logging_state, tmp_path):
    path = tmp_path / "error.log"
    log = setup_error_log(make_config(log_format="json", errorlog=str(path)))
    log.info("two\nlines and a \"quote\"")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("handling %s", "GET /")
    lines = json_lines(path.read_text())
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", 'two\nlines and a "quote"'), ("ERROR", "handling GET /")]
    assert all(RFC3339_MS.match(line["time"]) and line["pid"] == os.getpid() for line in lines)
    assert "traceback" not in lines[0]
    assert lines[1]["traceback"].startswith("Traceback (most recent call last):")
    assert lines[1]["traceback"].endswith("RuntimeError: boom")


def test_wsgi_errors_lines_become_json_lines(logging_state, tmp_path):
    path = tmp_path / "error.log"
    setup_error_log(make_config(log_format="json", errorlog=str(path)))
    errors = base_environ(make_config(), True)["wsgi.errors"]
    print("first line", file=errors)
    errors.writelines(["second ", "line\nthird\n", "unended"])
    errors.flush()
    assert [line["message"] for line in json_lines(path.read_text())] == [
        "first line", "second line", "third", "unended"]


def test_syslog_gets_json_after_its_prefix(logging_state):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        setup_error_log(make_config(
            log_format="json", syslog=True, syslog_addr="udp://127.0.0.1:%d" % receiver.getsockname()[1],
            syslog_prefix="myapp", errorlog="/dev/null", accesslog="/dev/null"))
        logging.getLogger("forkwsgi").warning("a\nb")
        error = receiver.recv(65536).decode()
        assert error.startswith("<12>myapp.error: {") and error.endswith("}\x00")
        assert json.loads(error[len("<12>myapp.error: "):-1])["message"] == "a\nb"
        log = AccessLog("/dev/null", "", "json")
        log.write(client_environ(PATH_INFO="/x\n"), "200 OK", [], 1, 0.0)
        access = receiver.recv(65536).decode()
        assert access.startswith("<14>myapp.access: {") and access.endswith("}\x00")
        assert json.loads(access[len("<14>myapp.access: "):-1])["path"] == "/x\n"


def test_a_users_logconfig_formatters_win(logging_state, tmp_path):
    out = tmp_path / "out.log"
    setup_error_log(make_config(log_format="json", logconfig_dict={
        "version": 1, "formatters": {"f": {"format": "%(name)s|%(message)s"}},
        "handlers": {"h": {"class": "logging.FileHandler", "filename": str(out), "formatter": "f"}},
        "root": {"level": "WARNING", "handlers": ["h"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["h"], "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": ["h"], "propagate": False}}}))
    logging.getLogger("forkwsgi").info("plain")
    AccessLog("-", "", "json").write(client_environ(), "200 OK", [], 1, 0.0)
    for handler in logging.getLogger("gunicorn.error").handlers:
        handler.flush()
    error, access = out.read_text().splitlines()
    assert error == "gunicorn.error|plain"
    assert access.startswith("gunicorn.access|{") and json.loads(access.partition("|")[2])["status"] == 200


def test_a_logconfig_can_use_forkwsgis_json_formatter(logging_state, tmp_path):
    out = tmp_path / "out.log"
    setup_error_log(make_config(logconfig_dict={
        "version": 1, "formatters": {"json": {"()": "forkwsgi.logs.JsonFormatter"}},
        "handlers": {"h": {"class": "logging.FileHandler", "filename": str(out), "formatter": "json"}},
        "root": {"level": "WARNING", "handlers": ["h"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["h"], "propagate": False}}}))
    logging.getLogger("forkwsgi").info("in\nJSON")
    for handler in logging.getLogger("gunicorn.error").handlers:
        handler.flush()
    assert [line["message"] for line in json_lines(out.read_text())] == ["in\nJSON"]


def test_timestamps_are_utc_with_milliseconds():
    clock = Rfc3339Clock()
    assert [clock(t) for t in (0.0, 0.9995, 86400.25, 86400.5)] == [
        "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00.999Z", "1970-01-02T00:00:00.250Z",
        "1970-01-02T00:00:00.500Z"]


def test_an_unknown_log_format_is_refused():
    result = subprocess.run([sys.executable, "-m", "forkwsgi", "--log-format", "xml", "tests.apps:app"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "expected text or json" in result.stderr


def test_access_log_reopen_waits_for_a_line_being_written(tmp_path):
    """USR1 under --threads: the file is not closed under a writer (its lock is held while it writes)."""
    import threading
    from forkwsgi.observe.accesslog import AccessLog
    path = tmp_path / "access.log"
    access = AccessLog(str(path), '%(s)s')
    errors = []

    def writer():
        for _ in range(2000):
            try:
                access.write({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
                              "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}, "200 OK", [], 0, 0.0)
            except Exception as exc:  # pragma: no cover - what the lock prevents
                errors.append(exc)
    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(200):
        access.reopen()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert path.read_text().count("200\n") == 4000
