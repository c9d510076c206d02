"""Health checks answered by the worker, and --shutdown-delay for load balancers."""
import signal
import time

import requests

from tests.support.http import ResponseReader, connect
from tests.support.processes import wait_for


def test_health_path_is_answered_without_the_app(server_factory, tmp_path):
    access = tmp_path / "access.log"
    server = server_factory(["-w", "1", "--health-path", "/healthz", "--access-logfile", str(access)])
    response = requests.get(server.url("/healthz"))
    assert (response.status_code, response.text) == (200, "ok\n")
    assert requests.get(server.url("/healthz?probe=1")).status_code == 200
    assert requests.head(server.url("/healthz")).status_code == 200
    assert requests.get(server.url("/healthz/x")).status_code == 404  # the app's own answer
    assert wait_for(lambda: access.exists() and "/healthz/x" in access.read_text(), 5)
    assert "/healthz " not in access.read_text() and "/healthz?" not in access.read_text()


def test_health_requests_are_logged_with_log_health(server_factory, tmp_path):
    access = tmp_path / "access.log"
    server = server_factory(["-w", "1", "--health-path", "/healthz", "--log-health",
                             "--access-logfile", str(access)])
    assert requests.get(server.url("/healthz")).status_code == 200
    assert wait_for(lambda: access.exists() and "GET /healthz" in access.read_text(), 5)


def test_health_answers_while_every_thread_is_busy(server_factory, tmp_path):
    server = server_factory(["-w", "1", "--threads", "2", "--health-path", "/healthz"],
                            env={"TEST_MARKER_DIR": str(tmp_path)})
    busy = [connect(server.port, timeout=20) for _ in range(2)]
    for sock in busy:
        sock.sendall(b"GET /sleep?2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wait_for(lambda: (tmp_path / "sleeping").exists()
                    and len((tmp_path / "sleeping").read_text().split()) == 2, 5)
    started = time.monotonic()
    assert requests.get(server.url("/healthz"), timeout=5).status_code == 200
    assert time.monotonic() - started < 0.5
    for sock in busy:
        assert ResponseReader(sock).read()[0] == 200
        sock.close()


def test_shutdown_delay_keeps_serving_then_stops(server_factory):
    server = server_factory(["-w", "2", "--health-path", "/healthz", "--shutdown-delay", "1.5"])
    with connect(server.port) as pooled:
        reader = ResponseReader(pooled)
        pooled.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read()[0] == 200
        sent_term = time.monotonic()
        server.send(signal.SIGTERM)
        assert server.wait_log("--shutdown-delay", 5)
        # New connections are still accepted and served; health fails; responses close connections.
        assert requests.get(server.url("/healthz")).status_code == 503
        response = requests.get(server.url("/"))
        assert response.status_code == 200 and response.headers["Connection"] == "close"
        pooled.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = reader.read()
        assert status == 200 and headers["connection"] == ["close"]
    assert server.proc.wait(10) == 0
    assert time.monotonic() - sent_term >= 1.4


def test_a_second_term_cuts_the_delay_short(server_factory):
    server = server_factory(["-w", "1", "--shutdown-delay", "30"])
    server.wait_workers(1)  # the master is in its loop, past start-up
    server.send(signal.SIGTERM)
    assert server.wait_log("--shutdown-delay", 10)
    server.send(signal.SIGTERM)
    assert server.proc.wait(10) == 0
