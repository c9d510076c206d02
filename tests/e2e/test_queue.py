"""Queue time stamped by the server, and requests shed past --max-queue-time."""
import json
import os
import socket
import threading
import time

import pytest

from forkwsgi.wsgi.queuetime import earliest, parse_request_start, stamp
from tests.support.processes import wait_for


def _send(port, path, headers=""):
    """Open a connection and send one request; (socket, Unix time the client began: its connect).
    A request whose head follows its connection at once is counted from the accept (the server
    may accept before the head arrives), so the client's clock starts at the connect too."""
    sent = time.time()
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, headers)).encode())
    return sock, sent


def _read(sock):
    """The whole response (the server closes, or Content-Length says when it ends): (head, body, Unix time)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    while length and len(body) < length[0]:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    at = time.time()
    sock.close()
    return head.decode("latin-1"), body, at


def _exchange_all(port, count, path, headers=""):
    """``count`` requests at once, each on its own connection: [(head, body, sent, answered)] in sending order."""
    results = [None] * count
    sockets = []
    for number in range(count):
        sockets.append(_send(port, path, headers))

    def reader(number):
        sock, sent = sockets[number]
        head, body, at = _read(sock)
        results[number] = (head, body, sent, at)
    threads = [threading.Thread(target=reader, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.parametrize("value, expected", [
    ("t=1700000000.25", 1700000000.25), ("t=1700000000250", 1700000000.25),
    ("t=1700000000250000", 1700000000.25), ("1700000000250", 1700000000.25), (" t=1700000000 ", 1700000000.0),
    ("t=", None), ("t=abc", None), ("t=-5", None), ("t=nan", None), ("t=1e30", None),
])
def test_x_request_start_is_read_in_new_relic_forms(value, expected):
    assert parse_request_start(value) == expected


def test_stamp_sets_the_header_only_when_absent_and_keeps_a_trusted_earlier_one():
    environ = {}
    assert stamp(environ, 100.0, 100.5, False) == 0.5
    assert environ == {"HTTP_X_REQUEST_START": "t=100000000", "forkwsgi.queue_time": 0.5}
    environ = {"HTTP_X_REQUEST_START": "t=99.0"}
    assert stamp(environ, 100.0, 100.5, True) == 1.5  # a trusted front end's earlier stamp
    assert environ["HTTP_X_REQUEST_START"] == "t=99.0"
    environ = {"HTTP_X_REQUEST_START": "t=99.0"}
    assert stamp(environ, 100.0, 100.5, False) == 0.5  # anyone else's is left alone, and not believed
    assert earliest(100.0, 101.0) == 100.0  # a front end's clock ahead of ours is ignored


@pytest.mark.slow
def test_queue_time_counts_the_wait_in_the_backlog(server_factory, tmp_path):
    """-w 1, an app sleeping 1 s, three requests at once: the third has waited about 2 s."""
    server = server_factory(["-w", "1"], env={"TEST_MARKER_DIR": str(tmp_path)})
    results = _exchange_all(server.port, 3, "/queued?1")
    answers = [json.loads(body) for _, body, _, _ in results]
    waits = sorted(answer["queue_time"] for answer in answers)
    assert 1.9 <= waits[2] <= 2.2, waits
    assert 0.9 <= waits[1] <= 1.2, waits
    for (_, _, sent, _), answer in zip(results, answers):
        stamped = int(answer["request_start"][2:]) / 1e6
        assert abs(stamped - sent) < 0.02, (stamped, sent)


def test_a_trusted_front_ends_earlier_stamp_wins(server_factory, tmp_path):
    server = server_factory(["-w", "1", "--forwarded-allow-ips", "127.0.0.1"])
    front = time.time() - 3.0
    sock, _ = _send(server.port, "/queued", "X-Request-Start: t=%d\r\n" % (front * 1e6))
    answer = json.loads(_read(sock)[1])
    assert answer["request_start"] == "t=%d" % (front * 1e6)
    assert 3.0 <= answer["queue_time"] < 3.5


def test_an_untrusted_clients_stamp_is_not_believed(server_factory):
    server = server_factory(["-w", "1", "--forwarded-allow-ips", "10.0.0.1"])
    sock, _ = _send(server.port, "/queued", "X-Request-Start: t=%d\r\n" % ((time.time() - 3.0) * 1e6))
    answer = json.loads(_read(sock)[1])
    assert answer["queue_time"] < 0.5


def test_queue_time_in_metrics_and_the_access_log(server_factory, tmp_path):
    from tests.support.ports import free_port
    import urllib.request
    metrics_port = free_port()
    access = tmp_path / "access.log"
    server = server_factory(["-w", "1", "--metrics-bind", "127.0.0.1:%d" % metrics_port,
                             "--access-logfile", str(access), "--access-logformat", "%(r)s queued=%(Q)s"])
    sock, _ = _send(server.port, "/queued", "X-Request-Start: t=%d\r\n" % ((time.time() - 1.0) * 1e6))
    _read(sock)

    def scrape():
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5) as response:
            return response.read().decode()
    text = wait_for(lambda: (lambda t: t if "forkwsgi_request_queue_seconds_count 1" in t else None)(scrape()), 5)
    assert text, scrape()
    assert 'forkwsgi_request_queue_seconds_bucket{le="1.0"} 0' in text
    assert 'forkwsgi_request_queue_seconds_bucket{le="2.5"} 1' in text
    assert "forkwsgi_requests_shed_total 0" in text
    line = wait_for(lambda: access.exists() and access.read_text(), 5)
    queued = int(line.split("queued=")[1].split()[0])
    assert 1_000_000 <= queued < 1_500_000, line


def _calls(marker_dir):
    path = os.path.join(str(marker_dir), "called")
    return len(open(path).read().split()) if os.path.exists(path) else 0


def _check_shedding(results, marker_dir, served, within=(0.5, 0.7)):
    statuses = [head.split(" ", 2)[1] for head, _, _, _ in results]
    assert statuses.count("200") == served, statuses
    assert statuses.count("503") == len(results) - served, statuses
    for head, body, sent, answered in results:
        if " 503 " in head.split("\r\n")[0]:
            assert "Retry-After: 1" in head and "Connection: close" in head, head
            assert within[0] <= answered - sent <= within[1], answered - sent
    assert _calls(marker_dir) == served


@pytest.mark.slow
@pytest.mark.parametrize("args", [["-w", "2"], ["-w", "1", "--threads", "2"], ["-w", "1"]],
                         ids=["inline", "threads", "inline-one"])
def test_requests_past_max_queue_time_are_shed_at_their_deadline(server_factory, tmp_path, args):
    """Two app slots (one with -w 1), an app sleeping 2 s, ten requests at once: those the slots
    take are served, the others answered 503 at 0.5 s, and the app called only for the served."""
    server = server_factory(args + ["--max-queue-time", "0.5"], env={"TEST_MARKER_DIR": str(tmp_path)})
    results = _exchange_all(server.port, 10, "/queued?2")
    _check_shedding(results, tmp_path, 1 if args == ["-w", "1"] else 2)


@pytest.mark.slow
def test_health_probes_are_never_shed_and_a_front_end_stamp_sets_the_deadline(server_factory, tmp_path):
    from tests.support.ports import free_port
    import urllib.request
    metrics_port = free_port()
    server = server_factory(["-w", "1", "--threads", "2", "--max-queue-time", "0.5", "--health-path", "/healthz",
                             "--metrics-bind", "127.0.0.1:%d" % metrics_port],
                            env={"TEST_MARKER_DIR": str(tmp_path)})
    busy = [_send(server.port, "/queued?1.5") for _ in range(2)]
    assert wait_for(lambda: _calls(tmp_path) == 2, 5)
    probe = _send(server.port, "/healthz")
    time.sleep(0.7)  # past the deadline, the threads still busy
    assert " 200 " in _read(probe[0])[0]
    # A trusted front end's stamp 1 s old: shed at once, though the app would be free soon.
    sock, sent = _send(server.port, "/queued", "X-Request-Start: t=%d\r\n" % ((time.time() - 1.0) * 1e6))
    head, _, answered = _read(sock)
    assert " 503 " in head and answered - sent < 0.2, (head, answered - sent)
    for sock, _ in busy:
        assert " 200 " in _read(sock)[0]
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5) as response:
        assert "forkwsgi_requests_shed_total 1" in response.read().decode()
    assert server.wait_log("overloaded: answered 503 to 1 request(s)")


def test_max_queue_time_refuses_zero_and_negative(server_factory):
    import subprocess
    import sys
    for value in ("0", "-1", "soon"):
        done = subprocess.run([sys.executable, "-m", "forkwsgi", "--max-queue-time", value, "tests.apps:app"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode != 0 and "max_queue_time" in done.stderr, done.stderr


def test_a_front_end_stamp_is_found_in_a_raw_head():
    from forkwsgi.wsgi.queuetime import front_end_start_raw
    assert front_end_start_raw(bytearray(b"GET / HTTP/1.1\r\nHost: x\r\nx-REQUEST-start: t=1700000000.5\r\n\r\n")) \
        == 1700000000.5
    assert front_end_start_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nX-Request-Start: t=5\r\n") is None
    assert front_end_start_raw(b"GET / HTTP/1.1\r\nX-Request-Start: t=1700000000") == 1700000000.0


@pytest.mark.slow
def test_inline_probes_are_answered_during_a_call_and_a_stuck_call_still_times_out(server_factory, tmp_path):
    """Inline with shedding, the hand-off watcher answers health probes while the app call runs;
    they never count as the worker's heartbeat, so a call past --timeout is still cut at its time."""
    server = server_factory(["-w", "1", "--max-queue-time", "0.5", "--health-path", "/healthz", "--timeout", "2"],
                            env={"TEST_MARKER_DIR": str(tmp_path)})
    stuck, sent = _send(server.port, "/queued?6")
    assert wait_for(lambda: _calls(tmp_path) == 1, 5)
    answered_at = []
    probes = []

    def probe_until_answered():
        while not answered_at and time.time() - sent < 5.0:
            probe, probe_sent = _send(server.port, "/healthz")
            head, _, answered = _read(probe)
            if not answered_at:
                probes.append((head.split("\r\n")[0], answered - probe_sent))
            time.sleep(0.2)
    prober = threading.Thread(target=probe_until_answered)
    prober.start()
    head, _, answered = _read(stuck)
    answered_at.append(answered)
    prober.join(10)
    assert " 504 " in head and answered - sent < 3.0, (head, answered - sent)
    assert len(probes) >= 5 and all(" 200 " in line and took < 0.3 for line, took in probes), probes
