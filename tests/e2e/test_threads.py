"""--threads N runs app calls on a pool while the worker's loop keeps serving I/O."""
import json
import signal
import threading
import time

import pytest
import requests

from tests.support.http import ResponseReader, connect
from tests.support.processes import wait_for


def _parallel(count, target):
    results = [None] * count

    def run(i):
        try:
            results[i] = target(i)
        except Exception as exc:  # recorded, asserted by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_eight_threads_serve_eight_sleeping_requests_at_once(server_factory):
    server = server_factory(["-w", "1", "--threads", "8"])
    started = time.monotonic()
    results = _parallel(8, lambda i: requests.get(server.url("/sleep?0.5"), timeout=10))
    elapsed = time.monotonic() - started
    assert [r.status_code for r in results] == [200] * 8
    assert len({r.text for r in results}) == 1  # one worker process served them all
    assert elapsed < 1.2, "8 concurrent 0.5 s requests took %.2fs" % elapsed


def test_environ_says_multithread(server_factory):
    server = server_factory(["-w", "1", "--threads", "2"])
    assert requests.get(server.url("/environ")).json()["wsgi.multithread"] is True


def test_pipelined_requests_stay_in_order_on_one_connection(server_factory):
    server = server_factory(["-w", "1", "--threads", "4"])
    bodies = [b"request-%02d" % i for i in range(20)]
    raw = b"".join(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b) for b in bodies)
    with connect(server.port) as sock:
        sock.sendall(raw)
        reader = ResponseReader(sock)
        assert [reader.read()[2] for _ in bodies] == bodies


def test_concurrent_connections_never_interleave_responses(server_factory):
    server = server_factory(["-w", "1", "--threads", "4"])

    def client(i):
        with connect(server.port) as sock:
            reader = ResponseReader(sock)
            for n in range(30):
                size = 1000 + 7919 * ((i * 30 + n) % 13)
                sock.sendall(b"GET /big?%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
                status, _, body = reader.read()
                assert status == 200 and body == b"x" * size
        return True

    assert _parallel(8, client) == [True] * 8


def test_a_stuck_thread_gets_504_at_the_timeout_and_its_worker_is_replaced(server_factory):
    server = server_factory(["-w", "1", "--threads", "2", "--timeout", "2"])
    pid = requests.get(server.url("/pid")).text
    with connect(server.port, timeout=20) as sock:
        sent = time.monotonic()
        sock.sendall(b"GET /sleep?30 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ResponseReader(sock).read()[0] == 504
        assert 1.9 < time.monotonic() - sent < 2.5, "cut at --timeout, not later"
        assert "GET /sleep?30 has run" in server.log() and "Stuck at:" in server.log()
        assert wait_for(lambda: requests.get(server.url("/pid"), timeout=5).text != pid, 10)
    assert "WORKER TIMEOUT" not in server.log(), "the worker replaced itself; the master had no one to kill"


@pytest.mark.slow
def test_a_request_past_the_timeout_spares_its_sibling_threads(server_factory, tmp_path):
    """One request stuck for 60 s, then three of 5 s on one worker: the three are served, the stuck
    one answered 504 at --timeout, the worker replaced, and a request sent right after served."""
    server = server_factory(["-w", "1", "--threads", "4", "--timeout", "2"], env={"TEST_MARKER_DIR": str(tmp_path)})
    pid = requests.get(server.url("/pid")).text

    def call(i):
        with connect(server.port, timeout=30) as sock:
            if i:  # the stuck one is the first to run: the oldest past --timeout is the one cut
                assert wait_for((tmp_path / "sleeping").exists, 5.0)
            started = time.monotonic()
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % (b"/sleep?5" if i else b"/sleep?60"))
            return ResponseReader(sock).read()[0], time.monotonic() - started
    results = _parallel(4, call)
    assert results[0][0] == 504 and results[0][1] < 2.5, results
    assert [status for status, _ in results[1:]] == [200, 200, 200], results
    after = requests.get(server.url("/pid"), timeout=15)
    assert after.status_code == 200 and after.text != pid
    assert "WORKER TIMEOUT" not in server.log()


def test_term_serves_every_request_in_flight(server_factory, tmp_path):
    server = server_factory(["-w", "1", "--threads", "8"], env={"TEST_MARKER_DIR": str(tmp_path)})

    def sleeper(i):
        return requests.get(server.url("/sleep?1"), timeout=20).status_code

    results = []
    runner = threading.Thread(target=lambda: results.extend(_parallel(8, sleeper)), daemon=True)
    runner.start()
    assert wait_for(lambda: (tmp_path / "sleeping").exists()
                    and len((tmp_path / "sleeping").read_text().split()) == 8, 10)
    server.send(signal.SIGTERM)
    runner.join(30)
    assert results == [200] * 8
    assert server.proc.wait(20) == 0


def test_a_thread_that_raises_fails_only_its_own_request(server_factory):
    server = server_factory(["-w", "1", "--threads", "4"])

    def request(i):
        return requests.get(server.url("/raise" if i == 0 else "/sleep?0.3"), timeout=10).status_code

    assert _parallel(4, request) == [500, 200, 200, 200]
    assert requests.get(server.url("/")).status_code == 200


def test_max_requests_counts_requests_of_every_thread(server_factory):
    server = server_factory(["-w", "1", "--threads", "4", "--max-requests", "20"])
    first = requests.get(server.url("/pid")).text
    results = _parallel(8, lambda i: [requests.get(server.url("/pid"), timeout=10) for _ in range(5)])
    assert all(r.status_code == 200 for batch in results for r in batch)
    assert wait_for(lambda: requests.get(server.url("/pid")).text != first, 10)
    assert server.log().count("then restarting") >= 1


def test_access_log_lines_stay_whole_under_threads(server_factory, tmp_path):
    access = tmp_path / "access.log"
    server = server_factory(["-w", "1", "--threads", "8", "--access-logfile", str(access)])
    _parallel(8, lambda i: [requests.get(server.url("/environ?%d" % n)) for n in range(20)])
    assert wait_for(lambda: access.exists() and len(access.read_text().splitlines()) == 160, 5)
    assert all('"GET /environ?' in line for line in access.read_text().splitlines())


def test_hooks_run_for_threaded_requests(server_factory, tmp_path):
    config = tmp_path / "conf.py"
    marker = tmp_path / "hooks"
    config.write_text(
        "import threading\n_lock = threading.Lock()\n"
        "def pre_request(worker, environ):\n"
        "    with _lock, open(%r, 'a') as f: f.write('pre\\n')\n"
        "def post_request(worker, environ, status, length):\n"
        "    with _lock, open(%r, 'a') as f: f.write(json.dumps([status, length]) + '\\n')\n"
        "import json\n" % (str(marker), str(marker)))
    server = server_factory(["-w", "1", "--threads", "4", "-c", str(config)])
    _parallel(4, lambda i: requests.get(server.url("/")))
    # post_request runs after each response has left: wait for the last of them, not a sleep
    assert wait_for(lambda: marker.exists() and len(marker.read_text().splitlines()) == 8, 5)
    lines = marker.read_text().splitlines()
    assert lines.count("pre") == 4
    assert [json.loads(line) for line in lines if line != "pre"] == [["200 OK", 5]] * 4


def test_an_inline_request_killed_by_the_timeout_gets_a_504(server_factory):
    """Without threads the master aborts the silent worker; the request in it still gets an answer."""
    server = server_factory(["-w", "1", "--timeout", "2"])
    with connect(server.port, timeout=20) as sock:
        sent = time.monotonic()
        sock.sendall(b"GET /sleep?30 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = ResponseReader(sock).read()
        assert status == 504 and headers.get("connection") == ["close"]
        assert time.monotonic() - sent < 3.5
    assert requests.get(server.url("/"), timeout=10).status_code == 200
