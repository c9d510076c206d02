"""Real frameworks (Django, Flask) served by forkwsgi -w 2, and nginx in front of it.

Guards HEAD on streamed responses (no last chunk, no body bytes, the connection stays usable),
HEAD lengths, keep-alive after HEAD, file downloads, multipart and chunked uploads, redirects,
and nginx's upstream keep-alive over all of it. The apps live in tests/realapps/.
"""
import hashlib
import os
import random
import signal
import sys

import pytest
import requests

from tests.support.http import connect
from tests.support.server import Server
from tests.support.nginx import Nginx, require_nginx
from tests.realapps import DOWNLOAD_NAME, stream_chunks, text_body

ROUNDS = 200  # HEAD-then-GET pairs per loop
STREAM = "/stream?n=5"
STREAMED = b"".join(stream_chunks(5))
TIMEOUT = 10  # seconds, for every request and socket read

APPS = {
    "django": ("django", "tests.realapps.djangoproj.wsgi:application",
               {"DJANGO_SETTINGS_MODULE": "tests.realapps.djangoproj.settings"}),
    "flask": ("flask", "tests.realapps.flaskapp:app", {}),
}


@pytest.fixture(scope="module")
def download(tmp_path_factory):
    """A data dir holding a file of a few hundred KB of random bytes; (dir, bytes)."""
    directory = tmp_path_factory.mktemp("realapps")
    payload = random.Random(9).randbytes(300 * 1024 + 17)
    (directory / DOWNLOAD_NAME).write_bytes(payload)
    return str(directory), payload


@pytest.fixture(scope="module", params=sorted(APPS))
def app_server(request, download):
    """forkwsgi -w 2 serving the Django project or the Flask app, once per module and app."""
    module, spec, env = APPS[request.param]
    pytest.importorskip(module, reason="%s is not installed (it is in the [test] extra)" % module)
    server = Server(["-w", "2"], app=spec, env=dict(env, REALAPPS_DATA_DIR=download[0]))
    server.kind = request.param
    try:
        server.wait_ready()
        server.wait_workers(2)
        yield server
    finally:
        _close(server)


def _close(server):
    """Stop the server, kill workers it left behind, remove its logs (Server.close where it exists)."""
    if hasattr(server, "close"):
        server.close()
        return
    leftovers = server.worker_pids()
    server.stop()
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for path in (server.log_path, server.out_path):
        try:
            os.unlink(path)
        except OSError:
            pass


class Wire:
    """Raw response bytes off one socket, read exactly as framed (no lenient parsing)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection; unread bytes %r" % self.buf[:200])
        self.buf += data

    def at_least(self, count):
        while len(self.buf) < count:
            self.fill()

    def head(self):
        """The next response head, raw (up to and including its blank line), and its parse."""
        while b"\r\n\r\n" not in self.buf:
            assert len(self.buf) < 65536, "no end of head in %r" % self.buf[:200]
            self.fill()
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), "not a status line: %r (head %r)" % (lines[0], raw[:200])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return raw + b"\r\n\r\n", int(lines[0].split(" ")[1]), headers

    def body(self, headers):
        """The body framed by ``headers``: Content-Length or chunked, nothing else allowed here."""
        if "content-length" in headers:
            size = int(headers["content-length"][0])
            self.at_least(size)
            body, self.buf = self.buf[:size], self.buf[size:]
            return body
        assert headers.get("transfer-encoding") == ["chunked"], "unframed body: %r" % headers
        body = b""
        for _ in range(100000):
            while b"\r\n" not in self.buf:
                self.fill()
            line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            self.at_least(size + 2)
            data, crlf, self.buf = self.buf[:size], self.buf[size:size + 2], self.buf[size + 2:]
            assert crlf == b"\r\n", "chunk of %d not followed by CRLF: %r" % (size, crlf)
            if size == 0:
                return body
            body += data
        raise AssertionError("endless chunked body")


def request_bytes(method, path, extra=b""):
    return b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (method.encode(), path.encode(), extra)


# --- HEAD on a streamed response -------------------------------------------------------------

def test_head_then_get_of_a_streamed_response_over_one_session(app_server):
    """200 HEAD-then-GET pairs on one requests.Session: HEAD gets no body, and every request
    rides the first connection (urllib3 silently reconnects when stray bytes wait on a socket,
    so one X-Remote-Port is the proof that nothing followed a HEAD response)."""
    url = app_server.url(STREAM)
    with requests.Session() as session:
        first = None
        for i in range(ROUNDS):
            head = session.head(url, timeout=TIMEOUT)
            assert head.status_code == 200 and head.content == b"", (i, head.headers)
            assert head.headers.get("Content-Length", str(len(STREAMED))) == str(len(STREAMED)), (i, head.headers)
            get = session.get(url, timeout=TIMEOUT)
            assert (get.status_code, get.content) == (200, STREAMED), i
            first = first or head.headers["X-Remote-Port"]
            ports = (head.headers["X-Remote-Port"], get.headers["X-Remote-Port"])
            assert ports == (first, first), "round %d left the first connection: %r" % (i, ports)


def test_head_then_get_of_a_streamed_response_raw_bytes(app_server):
    """On one socket: after each HEAD response's blank line, the very next byte is the status
    line of the GET's response (no `0\\r\\n\\r\\n`, no body byte), 200 times."""
    with connect(app_server.port, TIMEOUT) as sock:
        wire = Wire(sock)
        for i in range(ROUNDS):
            sock.sendall(request_bytes("HEAD", STREAM))
            head_raw, status, headers = wire.head()
            assert status == 200, head_raw
            assert headers.get("content-length", [str(len(STREAMED))]) == [str(len(STREAMED))], head_raw
            assert "close" not in headers.get("connection", [""])[0].lower(), head_raw
            sock.sendall(request_bytes("GET", STREAM))
            wire.at_least(len(b"HTTP/1.1 200 "))
            assert wire.buf.startswith(b"HTTP/1.1 200 "), (
                "round %d: after HEAD response %r the server sent %r" % (i, head_raw, wire.buf[:200]))
            get_raw, status, headers = wire.head()
            assert wire.body(headers) == STREAMED, (i, get_raw)


def test_pipelined_head_and_get_of_a_streamed_response(app_server):
    """HEAD and GET sent in one segment: the wire holds exactly HEAD's head, then the GET's response."""
    with connect(app_server.port, TIMEOUT) as sock:
        wire = Wire(sock)
        for i in range(20):
            sock.sendall(request_bytes("HEAD", STREAM) + request_bytes("GET", STREAM))
            head_raw, status, _ = wire.head()
            assert status == 200, head_raw
            wire.at_least(len(b"HTTP/1.1 200 "))
            assert wire.buf.startswith(b"HTTP/1.1 200 "), (
                "round %d: after HEAD response %r the server sent %r" % (i, head_raw, wire.buf[:200]))
            _, status, headers = wire.head()
            assert (status, wire.body(headers)) == (200, STREAMED), i
        assert wire.buf == b""


@pytest.mark.parametrize("path", [STREAM, "/text", "/file"])
def test_head_tells_the_true_length_or_none(app_server, download, path):
    """A HEAD response's Content-Length, if any, is the GET body's length. Flask returns an empty
    body with no length for HEAD of a generator view: that must not become Content-Length: 0."""
    expected = {STREAM: STREAMED, "/text": text_body(), "/file": download[1]}[path]
    with connect(app_server.port, TIMEOUT) as sock:
        wire = Wire(sock)
        sock.sendall(request_bytes("HEAD", path))
        head_raw, status, headers = wire.head()
        assert status == 200, head_raw
        assert headers.get("content-length", [str(len(expected))]) == [str(len(expected))], head_raw
        if path == STREAM and app_server.kind == "flask":
            assert "content-length" not in headers, head_raw  # Werkzeug sent () and no length
        if path != STREAM:
            assert headers["content-length"] == [str(len(expected))], head_raw  # the app set it
        sock.sendall(request_bytes("GET", path))
        wire.at_least(len(b"HTTP/1.1 200 "))
        assert wire.buf.startswith(b"HTTP/1.1 200 "), (head_raw, wire.buf[:200])
        _, status, headers = wire.head()
        assert (status, wire.body(headers)) == (200, expected)


def test_keep_alive_is_reused_after_head_of_every_kind_of_response(app_server):
    """HEAD of a streamed, a plain, a file (sendfile) and a redirect response, then GET: one
    connection (one REMOTE_PORT) throughout."""
    with requests.Session() as session:
        port = session.get(app_server.url("/port"), timeout=TIMEOUT).text
        seen = []
        for path in (STREAM, "/text", "/file", "/redirect", STREAM):
            head = session.head(app_server.url(path), timeout=TIMEOUT, allow_redirects=False)
            assert head.status_code in (200, 302) and head.content == b"", (path, head.status_code)
            seen.append(head.headers["X-Remote-Port"])
            seen.append(session.get(app_server.url("/port"), timeout=TIMEOUT).text)
    assert seen == [port] * len(seen)


# --- files, uploads, redirects ----------------------------------------------------------------

def test_file_download_is_intact(app_server, download):
    """Django FileResponse / Flask send_file of ~300 KB (wsgi.file_wrapper), twice on one connection."""
    payload = download[1]
    with requests.Session() as session:
        ports = set()
        for _ in range(2):
            response = session.get(app_server.url("/file"), timeout=TIMEOUT)
            assert response.status_code == 200
            assert response.headers["Content-Length"] == str(len(payload))
            assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(payload).hexdigest()
            ports.add(response.headers["X-Remote-Port"])
        assert len(ports) == 1


def test_range_request_gets_the_slice_or_the_whole_file(app_server, download):
    """Flask answers a Range with 206 and the exact slice; Django's FileResponse ignores Range (200,
    whole file). Either way the bytes are right and the connection stays usable."""
    payload = download[1]
    with requests.Session() as session:
        response = session.get(app_server.url("/file"), headers={"Range": "bytes=1000-70999"}, timeout=TIMEOUT)
        if app_server.kind == "flask":
            assert response.status_code == 206
        if response.status_code == 206:
            assert response.headers["Content-Range"] == "bytes 1000-70999/%d" % len(payload)
            assert response.content == payload[1000:71000]
        else:
            assert (response.status_code, response.content) == (200, payload)
        after = session.get(app_server.url("/port"), timeout=TIMEOUT)
        assert after.text == response.headers["X-Remote-Port"]


@pytest.mark.parametrize("size", [300_000, 1_150_000])
def test_multipart_upload_is_intact(app_server, size):
    """A file field and a text field, digested by the app: a body kept in memory (read from the
    pieces it came in) and one past the 1 MiB spool threshold (read from its spool file)."""
    payload = random.Random(1).randbytes(size)
    note = "h\u00e9llo w\u00f6rld"
    response = requests.post(app_server.url("/upload"), timeout=TIMEOUT, data={"note": note},
                             files={"upload": ("blob.bin", payload, "application/octet-stream")})
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload), "note": note}


@pytest.mark.parametrize("size", [0, 10_000, 1_200_000])
def test_chunked_upload_is_intact(app_server, size):
    """A generator body makes requests send Transfer-Encoding: chunked, in uneven chunks."""
    payload = random.Random(size).randbytes(size)
    sizes = random.Random(2)

    def pieces():
        offset = 0
        while offset < len(payload):
            step = sizes.randint(1, 70_000)
            yield payload[offset:offset + step]
            offset += step

    response = requests.post(app_server.url("/digest"), data=pieces(), timeout=TIMEOUT)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {"sha256": hashlib.sha256(payload).hexdigest(), "size": size}


def test_redirect_is_followed_on_the_same_connection(app_server):
    with requests.Session() as session:
        response = session.get(app_server.url("/redirect"), timeout=TIMEOUT)
    assert (response.status_code, response.content) == (200, b"redirect target")
    assert response.url == app_server.url("/target")
    assert [hop.status_code for hop in response.history] == [302]
    assert response.history[0].headers["Location"] in ("/target", app_server.url("/target"))
    assert response.history[0].headers["X-Remote-Port"] == response.headers["X-Remote-Port"]



# --- manage.py forkwsgi -------------------------------------------------------------------------

def test_manage_py_forkwsgi_takes_djangos_settings_and_pythonpath(tmp_path):
    """--settings and --pythonpath, which every manage.py command takes, reach the served project."""
    pytest.importorskip("django", reason="django is not installed (it is in the [test] extra)")
    site, extra = tmp_path / "site", tmp_path / "extra"
    site.mkdir()
    extra.mkdir()
    (site / "manage.py").write_text("import sys\nfrom django.core.management import execute_from_command_line\n"
                                    "execute_from_command_line(sys.argv)\n")
    (extra / "cmdsettings.py").write_text("from tests.realapps.djangoproj.settings import *  # noqa\n"
                                          "INSTALLED_APPS = ['forkwsgi.contrib.django']\n")
    command = [sys.executable, str(site / "manage.py"), "forkwsgi", "--settings", "cmdsettings"]
    with Server(["-w", "1", "--pythonpath=%s" % extra], app=None, cwd=str(site), command=command) as server:
        server.wait_ready()
        response = requests.get(server.url("/text"), timeout=TIMEOUT)
        assert (response.status_code, response.content) == (200, text_body()), server.log()

# --- nginx in front, with upstream keep-alive -------------------------------------------------

NGINX_UPSTREAM_ERRORS = ("upstream sent no valid HTTP/1.0 header", "upstream prematurely closed")


def test_head_then_get_through_nginx_with_upstream_keepalive(app_server):
    """nginx reuses its upstream connections (keepalive 16): a stray byte after a HEAD response
    would be read as the start of the next response. 200 HEAD-then-GET pairs all give 200, nginx
    logs no upstream error, and the upstream connections are kept (nginx 1.22 silently drops an
    upstream connection whose HEAD response said Transfer-Encoding: chunked instead of failing
    on the stray last chunk, so the count of upstream ports is what catches that old bug)."""
    require_nginx()
    statuses, upstream_ports = [], set()
    with Nginx(app_server.port) as proxy:
        with requests.Session() as session:
            for i in range(ROUNDS):
                head = session.head(proxy.url(STREAM), timeout=TIMEOUT)
                get = session.get(proxy.url(STREAM), timeout=TIMEOUT)
                statuses += [head.status_code, get.status_code]
                assert head.content == b"", i
                # A length, if nginx passes one on, is the GET's: never the Content-Length: 0 of an empty HEAD body.
                assert head.headers.get("Content-Length", str(len(STREAMED))) == str(len(STREAMED)), (i, head.headers)
                assert get.content == STREAMED or get.status_code != 200, i  # statuses are checked below
                upstream_ports.update(r.headers.get("X-Remote-Port") for r in (head, get))
        error_log = proxy.error_log()
    bad = [line for line in error_log.splitlines()
           if any(text in line for text in NGINX_UPSTREAM_ERRORS)
           or any(level in line for level in ("[error]", "[crit]", "[alert]", "[emerg]"))]
    assert statuses == [200] * (2 * ROUNDS), (
        "non-200 through nginx: %r\n%s" % (sorted(set(statuses)), "\n".join(bad[:10])))
    assert bad == [], "\n".join(bad[:20])
    # Every request went over a reused upstream connection: a handful of ports at most
    # (keepalive_requests is 1000 since nginx 1.19.10, 100 before), not one per request.
    assert None not in upstream_ports and len(upstream_ports) <= 5, sorted(upstream_ports)
