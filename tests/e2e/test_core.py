"""The server end to end, as a user runs it."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import requests

from tests.support.http import ResponseReader, connect
from tests.support.ports import free_port
from tests.support.processes import wait_for
from tests.support.server import ROOT


def test_keep_alive_reuses_one_connection(server_factory):
    server = server_factory(["-w", "1"])
    with requests.Session() as session:
        ports = {session.get(server.url("/environ")).json()["REMOTE_PORT"] for _ in range(5)}
    assert len(ports) == 1  # one TCP connection served all five requests


def test_http10_keep_alive_only_when_asked(server_factory):
    server = server_factory()
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reader = ResponseReader(sock)
        status, headers, body = reader.read()
        assert (status, body, headers["connection"]) == (200, b"hello", ["keep-alive"])
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        status, headers, body = reader.read()
        assert headers["connection"] == ["close"] and body == b"hello"
        assert reader.closed()


def test_pipelined_requests_answered_in_order(server_factory):
    server = server_factory()
    with connect(server.port) as sock:
        sock.sendall(b"".join(b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n%02d" % i
                              for i in range(10)) + b"GET /stream?2 HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = ResponseReader(sock)
        bodies = [reader.read()[2] for _ in range(11)]
    assert bodies == [b"%02d" % i for i in range(10)] + [b"chunk0;chunk1;"]


def test_chunked_upload_and_response(server_factory):
    server = server_factory()

    def chunks():
        for i in range(50):
            yield b"piece-%d;" % i

    response = requests.post(server.url("/echo"), data=chunks())
    expected = b"".join(b"piece-%d;" % i for i in range(50))
    assert response.content == expected
    assert response.headers["X-Content-Length"] == str(len(expected))
    streamed = requests.get(server.url("/stream?4"))
    assert streamed.headers["Transfer-Encoding"] == "chunked"
    assert streamed.content == b"chunk0;chunk1;chunk2;chunk3;"


def test_large_bodies_both_ways(server_factory):
    server = server_factory()
    payload = os.urandom(3 * 1024 * 1024 + 7)  # over the in-memory spool size
    assert requests.post(server.url("/echo"), data=payload).content == payload
    response = requests.get(server.url("/big?%d" % (5 << 20)))
    assert len(response.content) == 5 << 20 and response.headers["Content-Length"] == str(5 << 20)


def test_head_has_headers_but_no_body(server_factory):
    server = server_factory()
    with connect(server.port) as sock:
        sock.sendall(b"HEAD /big?1000 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = ResponseReader(sock)
        status, headers, _ = reader.read(head_only=True)
        assert status == 200 and headers["content-length"] == ["1000"]
        assert reader.read()[2] == b"hello"  # no stray body bytes between the two


def test_expect_100_continue(server_factory):
    server = server_factory()
    with connect(server.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        reader = ResponseReader(sock)
        assert reader.read()[0] == 100
        sock.sendall(b"hello")
        assert reader.read()[:3:2] == (200, b"hello")


def test_write_callable_file_wrapper_and_no_content(server_factory):
    server = server_factory()
    assert requests.get(server.url("/write")).content == b"written;returned"
    with open(os.path.join(ROOT, "tests", "apps.py"), "rb") as handle:
        source = handle.read()
    response = requests.get(server.url("/file"))
    assert response.content == source and response.headers["Content-Length"] == str(len(source))
    assert requests.get(server.url("/no-content")).status_code == 204


def test_app_exception_gives_500_and_worker_lives(server_factory):
    server = server_factory()
    pid = requests.get(server.url("/pid")).text
    response = requests.get(server.url("/raise"))
    assert response.status_code == 500 and response.headers["Connection"] == "close"
    assert requests.get(server.url("/pid")).text == pid
    assert "boom before start_response" in server.log()


def test_exc_info_replaces_the_status_before_headers_are_sent(server_factory):
    server = server_factory()
    response = requests.get(server.url("/exc-info"))
    assert (response.status_code, response.content) == (503, b"replaced")


def test_iterable_close_is_called_even_on_error(server_factory, tmp_path):
    server = server_factory(env={"TEST_MARKER_DIR": str(tmp_path)})
    assert requests.get(server.url("/tracked?ok")).content == b"tracked"
    with connect(server.port) as sock:
        sock.sendall(b"GET /raise-tracked?failed HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = ResponseReader(sock)
        status, headers, _ = reader.read(head_only=True)
        assert status == 200 and reader.closed()  # truncated chunked body: connection dropped
    assert wait_for(lambda: (tmp_path / "ok").exists() and (tmp_path / "failed").exists(), 5)


def test_environ_follows_pep3333(server_factory):
    server = server_factory()
    with connect(server.port) as sock:
        sock.sendall(b"GET /environ/caf%C3%A9?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n"
                     b"X-Multi: a\r\nX-Multi: b\r\nCookie: a=1\r\nCookie: b=2\r\n"
                     b"X_Smuggled: no\r\n\r\n")
        status, _, body = ResponseReader(sock).read()
    environ = json.loads(body)
    assert status == 200
    assert environ["PATH_INFO"] == "/environ/caf\u00c3\u00a9"  # latin-1 decoded bytes, per PEP 3333
    assert environ["QUERY_STRING"] == "q=1"
    assert environ["RAW_URI"] == "/environ/caf%C3%A9?q=1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.com", "8080")
    assert environ["HTTP_X_MULTI"] == "a,b" and environ["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_SMUGGLED" not in environ
    assert environ["REMOTE_ADDR"] == "127.0.0.1" and environ["REMOTE_PORT"].isdigit()
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1" and environ["REQUEST_METHOD"] == "GET"
    assert environ["wsgi.url_scheme"] == "http" and environ["SCRIPT_NAME"] == ""
    assert environ["wsgi.multiprocess"] is False and environ["wsgi.run_once"] is False


def test_several_workers_really_serve(server_factory):
    server = server_factory(["-w", "3"])
    workers = server.wait_workers(3)
    bodies = []

    def slow_request():
        bodies.append(requests.get(server.url("/sleep?1"), timeout=10).text)

    threads = [threading.Thread(target=slow_request) for _ in range(3)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert time.monotonic() - started < 2.5  # in parallel, not one after another
    pids = {int(body.split()[1]) for body in bodies}
    assert pids == set(workers)


def test_killed_worker_is_replaced(server_factory):
    server = server_factory(["-w", "2"])
    before = server.wait_workers(2)
    os.kill(before[0], signal.SIGKILL)
    assert wait_for(lambda: len(server.worker_pids()) == 2 and before[0] not in server.worker_pids(), 10)
    assert requests.get(server.url("/")).text == "hello"
    assert "killed by SIGKILL" in server.log()


def test_process_titles(server_factory):
    server = server_factory(["-w", "1", "-n", "titled"])
    worker = server.wait_workers(1)[0]

    def title(pid):
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").strip().decode()

    assert wait_for(lambda: title(server.pid) == "forkwsgi: master [titled]", 5)
    assert wait_for(lambda: title(worker) == "forkwsgi: worker [titled]", 5)


def run_cli(*args, timeout=30, **env_extra):
    env = dict(os.environ, PYTHONPATH=ROOT, **env_extra)
    return subprocess.run([sys.executable, "-m", "forkwsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_errors_are_one_clear_line():
    missing = run_cli("-b", "127.0.0.1:%d" % free_port(), "no_such_module:app")
    assert missing.returncode != 0
    assert "no module named 'no_such_module'" in missing.stderr and "Traceback" not in missing.stderr
    bad_bind = run_cli("-b", "127.0.0.1:notaport", "tests.apps:app")
    assert bad_bind.returncode == 2 and bad_bind.stderr.count("\n") == 1 and "bad port" in bad_bind.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run_cli("-b", "127.0.0.1:%d" % taken.getsockname()[1], "tests.apps:app")
    assert busy.returncode != 0 and "address already in use" in busy.stderr
    assert "Traceback" not in busy.stderr
    no_attr = run_cli("--check-config", "tests.apps:nope")
    assert no_attr.returncode == 1 and "has no attribute 'nope'" in no_attr.stderr


def test_version_and_help():
    version = run_cli("--version", COLUMNS="40").stdout  # (a narrow terminal must not wrap it)
    assert version.startswith("forkwsgi ") and version.count("\n") == 1, "one line, for scripts to read"
    help_text = run_cli("--help").stdout
    for flag in ("--workers", "--bind", "--timeout", "--keepalive", "--graceful-timeout"):
        assert flag in help_text


def test_factory_app_spec(server_factory):
    server = server_factory(app="tests.factory:create_app('factory says hi')")
    assert requests.get(server.url("/")).text == "factory says hi"


def test_missing_app_module_fails_before_binding():
    port = free_port()
    result = run_cli("-b", "127.0.0.1:%d" % port, "nope_not_here:app")
    assert result.returncode == 1
    assert result.stderr == "forkwsgi: error: cannot import 'nope_not_here:app': no module named 'nope_not_here'\n"


def test_reuse_port_and_backlog(server_factory):
    server = server_factory(["--reuse-port", "--backlog", "16"])
    assert requests.get(server.url("/")).text == "hello"


def test_casefold_http_method_upper_cases_the_method_the_app_sees(server_factory):
    for args, expected in ((["--casefold-http-method"], "GET"), ([], "get")):
        server = server_factory(["-w", "1"] + args)
        with connect(server.port) as sock:
            sock.sendall(b"get /environ HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = ResponseReader(sock).read()
        assert status == 200 and json.loads(body)["REQUEST_METHOD"] == expected
