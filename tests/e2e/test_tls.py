"""TLS served by the workers themselves, with certificates the tests make."""
import collections
import shutil
import signal
import socket
import ssl
import time

import pytest
import requests

from tests import apps
from tests.support.http import ResponseReader
from tests.support.processes import wait_for

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes test certificates")


def _tls_args(certs):
    return ["--certfile", str(certs / "server.pem"), "--keyfile", str(certs / "server.key")]


def _serial(port, ca):
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            return int(sock.getpeercert()["serialNumber"], 16)


def test_https_keep_alive_scheme_and_large_bodies(server_factory, certs):
    server = server_factory(["-w", "2"] + _tls_args(certs))
    url = "https://127.0.0.1:%d" % server.port
    ca = str(certs / "ca.pem")  # per request: requests lets REQUESTS_CA_BUNDLE override a session's verify
    with requests.Session() as session:
        environ = session.get(url + "/environ", verify=ca).json()
        assert environ["wsgi.url_scheme"] == "https"
        port = environ["REMOTE_PORT"]
        assert session.get(url + "/environ", verify=ca).json()["REMOTE_PORT"] == port  # the connection was reused
        assert session.get(url + "/big?3000000", verify=ca).content == b"x" * 3000000
        source = open(apps.__file__, "rb").read()
        assert session.get(url + "/file", verify=ca).content == source  # file_wrapper: no sendfile past TLS
        assert session.post(url + "/echo", data=b"y" * 2000000, verify=ca).content == b"y" * 2000000


def test_a_half_open_tls_client_pins_nothing_and_times_out(server_factory, certs):
    server = server_factory(["-w", "1", "--header-timeout", "1", "--log-level", "debug"] + _tls_args(certs))
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]  # never say hello
    started = time.monotonic()
    assert requests.get("https://127.0.0.1:%d/" % server.port, verify=str(certs / "ca.pem")).status_code == 200
    assert time.monotonic() - started < 0.5
    for sock in idle:
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by the header timeout
        sock.close()
    assert "TLS handshake with" in server.log()


def test_plain_http_to_a_tls_port_gets_a_plain_400_and_a_clean_close(server_factory, certs):
    server = server_factory(["-w", "1"] + _tls_args(certs))
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000)
            reader = ResponseReader(sock)
            status, headers, body = reader.read()  # a reset would raise here
            assert status == 400 and b"https://" in body and headers["connection"] == ["close"]
            assert sock.recv(100) == b""  # then a clean close
    assert requests.get("https://127.0.0.1:%d/" % server.port, verify=str(certs / "ca.pem")).status_code == 200
    assert "refused TLS handshake from 127.0.0.1" in server.log() and "plain HTTP" in server.log()


def _refusal_alerts(port, certs, client_cert, tries):
    """How each of ``tries`` clients learned it was refused: the TLS alert's reason, or the error."""
    outcomes = collections.Counter()
    for _ in range(tries):
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        if client_cert:
            context.load_cert_chain(str(certs / ("%s.pem" % client_cert)), str(certs / ("%s.key" % client_cert)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # TLS 1.3: sent before the verdict
                    outcomes["answered: %r" % sock.recv(12)] += 1
        except ssl.SSLError as exc:
            outcomes[exc.reason or repr(exc)] += 1
        except OSError as exc:
            outcomes[repr(exc)] += 1
    return outcomes


def test_every_refused_mutual_tls_client_gets_the_alert_not_a_reset(server_factory, certs):
    server = server_factory(["-w", "1", "--cert-reqs", "required", "--ca-certs", str(certs / "ca.pem")]
                            + _tls_args(certs))
    started = time.monotonic()
    assert _refusal_alerts(server.port, certs, None, 100) == {"TLSV13_ALERT_CERTIFICATE_REQUIRED": 100}
    assert _refusal_alerts(server.port, certs, "rogue", 40) == {"TLSV1_ALERT_UNKNOWN_CA": 40}
    seconds = time.monotonic() - started
    assert _refusal_alerts(server.port, certs, "client", 1) == {"answered: b'HTTP/1.1 200'": 1}
    log_text = server.log()
    warnings = log_text.count("refused TLS handshake from 127.0.0.1")
    assert 1 <= warnings <= seconds + 2, log_text  # at most one a second
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in log_text


def test_mutual_tls_requires_a_client_certificate(server_factory, certs):
    server = server_factory(["-w", "1", "--cert-reqs", "required", "--ca-certs", str(certs / "ca.pem")]
                            + _tls_args(certs))
    url = "https://127.0.0.1:%d/" % server.port
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, verify=str(certs / "ca.pem"), timeout=5)
    response = requests.get(url, verify=str(certs / "ca.pem"), timeout=5,
                            cert=(str(certs / "client.pem"), str(certs / "client.key")))
    assert response.status_code == 200


def test_usr1_reloads_the_certificate(server_factory, certs, tmp_path):
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(certs / "server.pem", cert)
    shutil.copy(certs / "server.key", key)
    server = server_factory(["-w", "1", "--certfile", str(cert), "--keyfile", str(key)])
    assert _serial(server.port, certs / "ca.pem") == 1001
    shutil.copy(certs / "server2.pem", cert)
    shutil.copy(certs / "server2.key", key)
    server.send(signal.SIGUSR1)
    assert wait_for(lambda: _serial(server.port, certs / "ca.pem") == 2002, 10)


def test_ssl_context_hook_shapes_the_context(server_factory, certs, tmp_path):
    config = tmp_path / "tls.conf.py"
    config.write_text("def ssl_context(config, context):\n"
                      "    context.set_alpn_protocols(['forkwsgi-test', 'http/1.1'])\n"
                      "    return context\n")
    server = server_factory(["-w", "1", "-c", str(config)] + _tls_args(certs))
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.set_alpn_protocols(["forkwsgi-test"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            assert sock.selected_alpn_protocol() == "forkwsgi-test"
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert ResponseReader(sock).read()[0] == 200


def test_a_bad_certificate_path_fails_the_start_with_one_line(server_factory, tmp_path):
    server = server_factory(["-w", "1", "--certfile", str(tmp_path / "missing.pem")], ready=False)
    assert server.proc.wait(15) != 0
    assert "cannot load TLS certificate" in server.log()


def test_a_client_that_resets_before_its_handshake_harms_nothing(server_factory, certs):
    """A TCP health check (connect, then reset) against a TLS listener."""
    server = server_factory(["-w", "1"] + _tls_args(certs))
    pid = requests.get("https://127.0.0.1:%d/pid" % server.port, verify=str(certs / "ca.pem")).text
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    assert requests.get("https://127.0.0.1:%d/pid" % server.port, verify=str(certs / "ca.pem")).text == pid


def test_a_large_response_reaches_a_slow_tls_reader_whole(server_factory, certs):
    """Writes the kernel cannot take at once are retried with the same bytes, as TLS requires."""
    server = server_factory(["-w", "1", "--output-buffer-memory", "65536"] + _tls_args(certs))
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    size = 16 * 1024 * 1024  # more than the kernel's buffers hold: the server meets a full socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET /big?%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
            time.sleep(0.3)  # let the server meet a full socket while it writes
            received = bytearray()
            while b"\r\n\r\n" not in received or len(received) - received.index(b"\r\n\r\n") - 4 < size:
                data = sock.recv(1 << 20)
                assert data, "the response was cut after %d bytes" % len(received)
                received += data
            head, _, body = bytes(received).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and body == b"x" * size
            reader = ResponseReader(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection is still in step
            assert reader.read()[0] == 200


def test_refused_handshakes_are_warned_at_most_once_a_second(caplog):
    from forkwsgi.worker.tls import RefusalLog
    now = [100.0]
    refusals = RefusalLog(clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="forkwsgi"):
        for step in range(30):  # three seconds of ten refusals a second
            now[0] = 100.0 + step * 0.1
            refusals.refused(("203.0.113.7", 4000 + step), "PEER_DID_NOT_RETURN_A_CERTIFICATE")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0] == "refused TLS handshake from 203.0.113.7:4000: PEER_DID_NOT_RETURN_A_CERTIFICATE"
    assert lines[1].endswith("; 9 more refused since the last line like this")
