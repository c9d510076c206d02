"""The access log in-process: gunicorn's atoms, and the JSON line whose client-sent values cannot
split or forge a line."""
import base64
import io
import json
import os

from forkwsgi.observe.accesslog import AccessLog


def environ(**values):
    base = {"REQUEST_METHOD": "GET", "RAW_URI": "/p?q=1", "PATH_INFO": "/p", "QUERY_STRING": "q=1",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.1.2.3"}
    base.update(values)
    return base


def written(log, env, status="200 OK", headers=(), length=5, seconds=0.5):
    log.stream = io.StringIO()
    log.write(env, status, list(headers), length, seconds)
    return log.stream.getvalue()


def line(fmt, env=None, **kwargs):
    return written(AccessLog("-", fmt), env or environ(), **kwargs).rstrip("\n")


def test_request_atoms():
    assert line("%(h)s %(l)s %(r)s %(m)s %(U)s %(q)s %(H)s %(s)s") == \
        "10.1.2.3 - GET /p?q=1 HTTP/1.1 GET /p q=1 HTTP/1.1 200"


def test_size_atoms_print_a_dash_only_for_an_unknown_size():
    assert line("%(b)s %(B)s", length=None) == "- None"
    assert line("%(b)s %(B)s", length=0) == "0 0"


def test_duration_atoms():
    assert line("%(T)s %(M)s %(D)s %(L)s", seconds=2.5) == "2 2500 2500000 2.500000"


def test_header_and_environ_atoms_and_their_dash_when_missing():
    env = environ(HTTP_X_REQUEST_ID="abc", HTTP_USER_AGENT="ua", HTTP_REFERER="ref", CUSTOM="e")
    fmt = "%({x-request-id}i)s %({content-type}o)s %({CUSTOM}e)s %({absent}i)s %(a)s %(f)s"
    assert line(fmt, env, headers=[("Content-Type", "text/plain")]) == "abc text/plain e - ua ref"


def test_basic_auth_user_atom():
    token = base64.b64encode(b"alice:secret").decode()
    assert line("%(u)s", environ(HTTP_AUTHORIZATION="Basic " + token)) == "alice"
    assert line("%(u)s", environ(HTTP_AUTHORIZATION="Basic !!")) == "-"
    assert line("%(u)s") == "-"


def test_queue_time_and_pid_atoms():
    assert line("%(Q)s %(p)s", environ(**{"forkwsgi.queue_time": 0.0042})) == "4200 <%d>" % os.getpid()


def test_json_line_is_one_object_with_named_fields():
    text = written(AccessLog("-", "", "json"), environ(HTTP_USER_AGENT="ua"), "404 Not Found", length=None,
                   seconds=0.25)
    assert text.endswith("\n") and text.count("\n") == 1
    record = json.loads(text)
    assert (record["message"], record["status"], record["bytes"], record["duration"]) == (
        "GET /p?q=1 HTTP/1.1", 404, None, 0.25)
    assert (record["user_agent"], record["referer"], record["pid"]) == ("ua", None, os.getpid())


def test_json_line_escapes_what_the_client_sent():
    forged = 'x"}\r\n{"status":200'
    utf8_as_latin1 = "caf\u00e9".encode("utf-8").decode("latin-1")  # environ holds the client's bytes
    text = written(AccessLog("-", "", "json"), environ(HTTP_USER_AGENT=forged, PATH_INFO="/" + utf8_as_latin1))
    assert text.count("\n") == 1
    record = json.loads(text)
    assert record["user_agent"] == forged and record["path"] == "/caf\u00e9"
