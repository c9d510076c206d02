"""/metrics, the control socket and `forkwsgi ctl`, --max-worker-memory, statsd.

Real processes and sockets on 127.0.0.1; every wait is a bounded readiness check.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import wait_accepting
from tests.support.ports import free_port
from tests.support.processes import wait_for
from tests.support.server import ROOT, Server


def scrape(port):
    text = requests.get("http://127.0.0.1:%d/metrics" % port, timeout=5).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families, family, sample_name=None, **labels):
    """Sum of a family's samples matching ``labels`` (and the sample name, if given)."""
    total = 0
    for sample in families[family].samples:
        if sample_name and sample.name != sample_name:
            continue
        if all(sample.labels.get(key) == val for key, val in labels.items()):
            total += sample.value
    return total


def requests_by(families, **labels):
    return value(families, "forkwsgi_requests", "forkwsgi_requests_total", **labels)


def ctl(path, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "forkwsgi", "ctl", "--socket", path] + list(args),
                            cwd=ROOT, capture_output=True, text=True, timeout=20,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    if check:
        assert result.returncode == 0, result.stderr
    return result


def ctl_json(path, *args):
    return json.loads(ctl(path, "--json", *args).stdout)


def control_line(path, raw):
    """Send raw bytes to the control socket; the master's one-line answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(raw)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


class Load:
    """Client threads on keep-alive sessions, counting exactly what got an answer."""

    def __init__(self, port, threads=4):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"GET": 0, "POST": 0, "404": 0, "bytes_in": 0, "errors": 0}
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, number):
        session = requests.Session()
        base = "http://127.0.0.1:%d" % self.port
        i = 0
        while not self.stop.is_set():
            i += 1
            kind = ("GET", "POST", "404")[(i + number) % 3]
            try:
                if kind == "GET":
                    response = session.get(base + "/", timeout=10)
                    ok = response.status_code == 200
                elif kind == "POST":
                    body = b"p" * (i % 50 + 1)
                    response = session.post(base + "/echo", data=body, timeout=10)
                    ok = response.status_code == 200 and response.content == body
                else:
                    response = session.get(base + "/missing", timeout=10)
                    ok = response.status_code == 404
            except requests.RequestException:
                ok = False
            with self.lock:
                if ok:
                    self.counts[kind] += 1
                    if kind == "POST":
                        self.counts["bytes_in"] += len(body)
                else:
                    self.counts["errors"] += 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def assert_exact(families, expected):
    assert requests_by(families, method="GET", status="2xx") == expected["GET"]
    assert requests_by(families, method="POST", status="2xx") == expected["POST"]
    assert requests_by(families, method="GET", status="4xx") == expected["404"]
    assert requests_by(families) == expected["GET"] + expected["POST"] + expected["404"]
    assert value(families, "forkwsgi_request_body_bytes") == expected["bytes_in"]
    total = expected["GET"] + expected["POST"] + expected["404"]
    assert value(families, "forkwsgi_request_duration_seconds", "forkwsgi_request_duration_seconds_count") == total
    assert value(families, "forkwsgi_request_duration_seconds", "forkwsgi_request_duration_seconds_bucket",
                 le="+Inf") == total


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_metrics_exact_under_load_across_kill9_and_hup(server_factory):
    metrics_port = free_port()
    server = server_factory(["-w", "2", "--metrics-bind", "127.0.0.1:%d" % metrics_port])
    assert wait_accepting(metrics_port), "the metrics port never accepted"
    server.wait_workers(2)
    expected = {"GET": 0, "POST": 0, "404": 0, "bytes_in": 0}
    last_total = 0
    for phase in ("load", "kill -9", "HUP"):
        with Load(server.port) as load:
            for _ in range(10):  # scrape while under load: parses, and counters never go back
                families = scrape(metrics_port)
                total = requests_by(families)
                assert total >= last_total
                last_total = total
                time.sleep(0.05)
            wait_for(lambda: sum(load.counts[k] for k in ("GET", "POST", "404")) > 150, timeout=10)
        assert load.counts["errors"] == 0, load.counts
        for key in expected:
            expected[key] += load.counts[key]
        assert_exact(scrape(metrics_port), expected)
        if phase == "load":
            victim = server.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            assert wait_for(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 2)
            assert wait_for(lambda: value(scrape(metrics_port), "forkwsgi_worker_restarts",
                                          "forkwsgi_worker_restarts_total", reason="crash") == 1)
            families = scrape(metrics_port)
            assert_exact(families, expected)  # the dead worker's counts survive it
        elif phase == "kill -9":
            old = set(server.worker_pids())
            server.send(signal.SIGHUP)
            assert wait_for(lambda: value(scrape(metrics_port), "forkwsgi_worker_restarts",
                                          "forkwsgi_worker_restarts_total", reason="reload") == 2, timeout=15)
            assert wait_for(lambda: len(server.worker_pids()) == 2 and not old & set(server.worker_pids()))
            assert_exact(scrape(metrics_port), expected)
    families = scrape(metrics_port)
    assert value(families, "forkwsgi_workers", state="idle") == 2
    assert value(families, "forkwsgi_worker_resident_memory_bytes") > 0
    slots = [s.labels["worker"] for s in families["forkwsgi_worker_resident_memory_bytes"].samples]
    assert len(set(slots)) == 2  # one series per live worker (a slot number, not a pid); the dead ones are gone
    assert value(families, "forkwsgi_listen_backlog_max") > 0
    assert families["forkwsgi_build_info"].samples[0].labels["version"]
    assert value(families, "forkwsgi_response_body_bytes") > 0
    # not on the app's listener
    assert requests.get(server.url("/metrics"), timeout=5).status_code == 404


def test_metrics_exact_with_threads(server_factory):
    metrics_port = free_port()
    server = server_factory(["-w", "2", "--threads", "4", "--metrics-bind", "127.0.0.1:%d" % metrics_port])
    assert wait_accepting(metrics_port), "the metrics port never accepted"
    with Load(server.port, threads=6) as load:
        wait_for(lambda: sum(load.counts[k] for k in ("GET", "POST", "404")) > 300, timeout=10)
    assert load.counts["errors"] == 0
    # A pool thread counts its request just after the response has gone: the last few answered
    # may be counted a moment after the client has them.
    total = sum(load.counts[k] for k in ("GET", "POST", "404"))
    wait_for(lambda: requests_by(scrape(metrics_port)) >= total, timeout=5)
    assert_exact(scrape(metrics_port), load.counts)


def test_max_requests_counted_as_restart_reason(server_factory):
    metrics_port = free_port()
    server = server_factory(["-w", "1", "--max-requests", "5", "--metrics-bind", "127.0.0.1:%d" % metrics_port])
    assert wait_accepting(metrics_port), "the metrics port never accepted"
    for _ in range(12):
        assert requests.get(server.url("/"), timeout=10).status_code == 200
    assert wait_for(lambda: value(scrape(metrics_port), "forkwsgi_worker_restarts",
                                  "forkwsgi_worker_restarts_total", reason="max-requests") == 2)
    assert requests_by(scrape(metrics_port)) == 12


@pytest.mark.slow  # a timing scenario of several seconds: the full run has it
def test_slow_scraper_never_blocks_the_master(server_factory):
    metrics_port = free_port()
    server = server_factory(["-w", "1", "--metrics-bind", "127.0.0.1:%d" % metrics_port])
    assert wait_accepting(metrics_port), "the metrics port never accepted"
    idle = [socket.create_connection(("127.0.0.1", metrics_port)) for _ in range(5)]
    partial = socket.create_connection(("127.0.0.1", metrics_port))
    partial.sendall(b"GET /metr")
    started = time.monotonic()
    assert "forkwsgi_requests_total" in requests.get("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5).text
    assert time.monotonic() - started < 1.0
    with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as sock:
        sock.sendall(b"X" * 20000)  # no end of head: refused, bounded
        assert sock.recv(100).startswith(b"HTTP/1.1 431")
    # The stuck connections are dropped after a bounded time.
    partial.settimeout(10)
    assert partial.recv(10) == b""
    for sock in idle + [partial]:
        sock.close()
    assert requests.get(server.url("/"), timeout=5).status_code == 200


def _read_response(sock, buffered=b""):
    """(head, body, rest) of one Content-Length framed response read from sock."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before a head"
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(data) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed inside a body"
        data += chunk
    return head, data[:length], data[length:]


def test_metrics_connection_is_reused_by_scrapers(server_factory):
    """Prometheus keeps its connection to a target open between scrapes: so does the master, for HTTP/1.1
    without Connection: close. Bytes sent behind a request (pipelined, or a body) get one answer and a close:
    one render per read, never a burst; Connection: close and HTTP/1.0 are obeyed."""
    metrics_port = free_port()
    server_factory(["-w", "1", "--metrics-bind", "127.0.0.1:%d" % metrics_port])
    assert wait_accepting(metrics_port), "the metrics port never accepted"
    scrape_once = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(scrape_once)
            head, body, rest = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
            assert b"forkwsgi_requests_total" in body and rest == b""
        sock.sendall(scrape_once + b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, body, rest = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and b"# TYPE forkwsgi_build_info gauge" in body
        assert b"connection: close" in head.lower() and rest == b"" and sock.recv(10) == b""
    for request in (b"GET /metrics HTTP/1.0\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"):
        with socket.create_connection(("127.0.0.1", metrics_port), timeout=5) as sock:
            sock.sendall(request)
            head, _, rest = _read_response(sock)
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" in head.lower(), request
            assert rest == b"" and sock.recv(10) == b"", request


def test_idle_metrics_connections_make_room_for_new_scrapers(server_factory):
    """Kept-alive scrapers hold no slot another scraper needs: with every slot taken by idle kept
    connections, a new one is still answered (the longest idle is closed to make room)."""
    metrics_port = free_port()
    server_factory(["-w", "1", "--metrics-bind", "127.0.0.1:%d" % metrics_port])
    assert wait_accepting(metrics_port), "the metrics port never accepted"
    kept = []
    try:
        for _ in range(64):
            sock = socket.create_connection(("127.0.0.1", metrics_port), timeout=5)
            kept.append(sock)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock)[0].startswith(b"HTTP/1.1 200")
        assert "forkwsgi_requests_total" in requests.get("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5).text
        kept[0].settimeout(5)
        assert kept[0].recv(10) == b""  # the longest idle made room
    finally:
        for sock in kept:
            sock.close()


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_ctl_status_add_remove_json(server_factory, tmp_path):
    path = str(tmp_path / "ctl.sock")
    server = server_factory(["-w", "2", "--control-socket", path])
    server.wait_workers(2)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    sleeper = threading.Thread(target=lambda: requests.get(server.url("/sleep?4"), timeout=20), daemon=True)
    sleeper.start()

    def running():
        status = ctl_json(path, "status")
        found = [item for worker in status["workers"] for item in worker["current"]]
        return found and found[0]

    first = wait_for(running, timeout=10)
    assert first and first["method"] == "GET" and first["path"] == "/sleep?4", first
    assert wait_for(lambda: (running() or {"seconds": 0})["seconds"] > first["seconds"] + 0.5, timeout=5)
    text = ctl(path, "status").stdout
    assert "GET /sleep?4" in text and "busy" in text and "SLOT" in text, text
    status = ctl_json(path, "status")
    assert status["ok"] and status["master"]["pid"] == server.pid
    assert {w["pid"] for w in status["workers"]} == set(server.worker_pids())
    assert all(w["rss"] > 0 for w in status["workers"])
    assert status["listeners"][0]["backlog_max"] > 0
    sleeper.join(20)

    assert "adding 2" in ctl(path, "add", "2").stdout
    server.wait_workers(4)
    ctl(path, "remove", "1")
    server.wait_workers(3)
    assert len(ctl_json(path, "status")["workers"]) == 3
    reloaded = set(server.worker_pids())
    ctl(path, "reload")
    # a reload re-reads the settings: back to -w 2, all new
    assert wait_for(lambda: len(server.worker_pids()) == 2 and not reloaded & set(server.worker_pids()), timeout=15)
    ctl(path, "graceful-stop")
    assert server.proc.wait(20) == 0
    assert not os.path.exists(path)


def test_control_socket_bad_input(server_factory, tmp_path):
    path = str(tmp_path / "ctl.sock")
    server = server_factory(["-w", "1", "--control-socket", path])
    for raw in (b"bogus\n", b"add x\n", b"add 1 2\n", b"remove 0\n", b"\xff\xfe\n", b"\n", b"status now\n",
                b"y" * 10000):
        answer = json.loads(control_line(path, raw))
        assert answer["ok"] is False and answer["error"], (raw[:20], answer)
    assert json.loads(control_line(path, b"remove 1\n"))["ok"] is False  # never the last worker
    result = ctl(path, "remove", check=False)
    assert result.returncode == 1 and "error" in result.stderr
    assert server.proc.poll() is None
    assert ctl_json(path, "status")["ok"]
    assert requests.get(server.url("/"), timeout=5).status_code == 200


def test_control_socket_path_not_a_socket_is_refused(tmp_path):
    path = tmp_path / "ctl"
    path.write_text("precious")
    server = Server(["-w", "1", "--control-socket", str(path)])
    try:
        assert server.proc.wait(15) != 0
        assert "is not a socket" in server.log()
        assert path.read_text() == "precious"
    finally:
        server.close()


def test_second_server_on_the_same_control_socket_is_refused(server_factory, tmp_path):
    path = str(tmp_path / "ctl.sock")
    server_factory(["-w", "1", "--control-socket", path])
    second = Server(["-w", "1", "--control-socket", path])
    try:
        assert second.proc.wait(15) != 0
        assert "in use by another running server" in second.log()
    finally:
        second.close()
    assert ctl_json(path, "status")["ok"]  # the first keeps its socket


def test_ctl_finds_the_socket_from_the_config_file(server_factory, tmp_path):
    path = str(tmp_path / "ctl.sock")
    config = tmp_path / "conf.py"
    config.write_text("control_socket = %r\n" % path)
    server = server_factory(["-w", "1", "-c", str(config)])
    result = subprocess.run([sys.executable, "-m", "forkwsgi", "ctl", "-c", str(config), "--json", "status"],
                            cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert json.loads(result.stdout)["master"]["pid"] == server.pid


def test_max_worker_memory_recycles_before_the_limit(server_factory):
    metrics_port = free_port()
    limit_mb = 80
    server = server_factory(["-w", "2", "--max-worker-memory", str(limit_mb),
                             "--metrics-bind", "127.0.0.1:%d" % metrics_port], app="tests.obs_apps:leak5")
    assert wait_accepting(metrics_port), "the metrics port never accepted"
    session = requests.Session()
    seen = []
    for _ in range(50):
        response = session.get(server.url("/"), timeout=10)
        assert response.status_code == 200
        pid, uss = map(int, response.text.split())
        seen.append((pid, uss))
    growth = 5 << 20
    slack = 2 << 20  # allocator noise
    assert max(uss for _, uss in seen) <= limit_mb * 1048576 + growth + slack, seen
    assert len({pid for pid, _ in seen}) >= 3, seen  # recycled
    assert wait_for(lambda: value(scrape(metrics_port), "forkwsgi_worker_restarts",
                                  "forkwsgi_worker_restarts_total", reason="memory") >= 1)
    assert "past --max-worker-memory" in server.log()


def test_statsd_lines(server_factory):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.5)
    try:
        server = server_factory(["-w", "1", "--statsd-host", "127.0.0.1:%d" % receiver.getsockname()[1],
                                 "--statsd-prefix", "app1"])
        for _ in range(5):
            assert requests.get(server.url("/"), timeout=5).status_code == 200
        got, lines = 0, []
        deadline = time.monotonic() + 10
        while got < 5 and time.monotonic() < deadline:
            try:
                packet = receiver.recv(65536).decode()
            except socket.timeout:
                continue
            for line in packet.split("\n"):
                lines.append(line)
                if line.startswith("app1.requests.GET.2xx:"):
                    got += int(line.split(":")[1].split("|")[0])
        assert got == 5, lines
        assert any(line.startswith("app1.request_duration:") and "|ms" in line for line in lines), lines
        assert any(line.startswith("app1.request_queue:") and "|ms|@" in line for line in lines), lines
        assert any(line.startswith("app1.workers.idle:") and line.endswith("|g") for line in lines), lines
    finally:
        receiver.close()


def test_ctl_prints_one_error_line_when_the_connection_is_reset(tmp_path, capsys):
    """A master that closes without reading the command resets the connection: no traceback, exit 1."""
    from forkwsgi import ctl as ctl_module
    path = str(tmp_path / "reset.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    listener.settimeout(10)

    def reset_the_client():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            conn.recv(1, socket.MSG_PEEK)  # the command has arrived, and stays unread: close() resets
    thread = threading.Thread(target=reset_the_client, daemon=True)
    thread.start()
    try:
        assert ctl_module.main(["--socket", path, "status"]) == 1
    finally:
        thread.join(10)
        listener.close()
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("forkwsgi ctl: error: ") and "reset" in err, err


def test_ctl_top_json_prints_one_json_object_a_line(server_factory, tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    from forkwsgi import ctl as ctl_module
    path = str(tmp_path / "ctl.sock")
    server = server_factory(["-w", "1", "--control-socket", path])
    refreshes = []

    def sleep(seconds):  # stands in for Ctrl-C after the third refresh
        refreshes.append(seconds)
        if len(refreshes) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(ctl_module, "time", SimpleNamespace(sleep=sleep, strftime=time.strftime))
    assert ctl_module.main(["--socket", path, "--json", "top"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["master"]["pid"] == server.pid for line in lines), lines


class Trickle:
    """``count`` connections to a port, each sending one byte of a request every ``interval`` seconds, and
    reconnecting whenever the server closes one: a slowloris that keeps every slot it can get busy."""

    def __init__(self, port, count=70, interval=0.5, seconds=20.0):
        self.port, self.count, self.interval, self.seconds = port, count, interval, seconds
        self.request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        self.connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self):
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        except OSError:
            return None
        self.connects += 1
        return [sock, 0]

    def _run(self):
        conns = [self._connect() for _ in range(self.count)]
        deadline = time.monotonic() + self.seconds
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            for i, conn in enumerate(conns):
                if conn is not None:
                    sock, sent = conn
                    try:
                        sock.sendall(self.request[sent % len(self.request):][:1])
                        conn[1] += 1
                        continue
                    except OSError:
                        sock.close()
                conns[i] = self._connect()
        for conn in conns:
            if conn is not None:
                conn[0].close()

    def stop(self):
        self._stop.set()
        self._thread.join(15)


@pytest.mark.slow
def test_control_socket_and_scrapes_work_while_trickling_clients_flood_the_metrics_port(server_factory, tmp_path):
    """70 connections trickling a byte every 0.5 s to --metrics-bind, reconnecting when closed, take every
    metrics slot they can: `ctl status` still answers (the control socket has its own slots), and so does a
    scrape (a connection still short of a whole request after a second gives its slot to a newcomer)."""
    from forkwsgi.ctl import request as ctl_request
    metrics_port = free_port()
    path = str(tmp_path / "ctl.sock")
    server = server_factory(["-w", "1", "--metrics-bind", "127.0.0.1:%d" % metrics_port, "--control-socket", path])
    assert wait_accepting(metrics_port), "the metrics port never accepted"
    trickle = Trickle(metrics_port)
    try:
        assert wait_for(lambda: trickle.connects >= 70, 10)
        time.sleep(1.5)  # every slot taken, and each trickler older than a second
        for _ in range(3):
            answer = ctl_request(path, "status", timeout=5)
            assert answer["ok"] and answer["master"]["pid"] == server.pid
            assert "forkwsgi_requests_total" in requests.get(
                "http://127.0.0.1:%d/metrics" % metrics_port, timeout=5).text
            time.sleep(0.5)
        assert trickle._thread.is_alive() and trickle.connects > 70  # the flood went on throughout
    finally:
        trickle.stop()
    assert requests.get(server.url("/"), timeout=5).status_code == 200
