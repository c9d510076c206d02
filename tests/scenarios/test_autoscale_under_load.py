"""--max-workers under real load: workers follow it up and back down."""
import socket
import threading
import time

import pytest

from tests.support.processes import wait_for


def _client(port, until, done, failed):
    """Requests of 0.3 s, one connection each, until ``until``; each answer's time in ``done``."""
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"GET /sleep?0.3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if data.startswith(b"HTTP/1.1 200 "):
                done.append(time.monotonic())
            else:
                failed.append(data[:100])
        except OSError as exc:
            failed.append(repr(exc))


@pytest.mark.slow
def test_workers_follow_the_load(server_factory):
    """-w 1 --max-workers 4: eight clients of 0.3 s requests for 10 s bring 3 workers within 3 s and
    over 3x what one worker can serve; 15 s after the load, one worker again; nothing lost."""
    import os
    from forkwsgi.ctl import request
    control = "/tmp/forkwsgi-autoscale-%d.sock" % os.getpid()
    server = server_factory(["-w", "1", "--max-workers", "4", "--scale-down-after", "5",
                             "--control-socket", control])
    server.wait_workers(1)
    done, failed = [], []
    start = time.monotonic()
    clients = [threading.Thread(target=_client, args=(server.port, start + 10.0, done, failed)) for _ in range(8)]
    for client in clients:
        client.start()
    assert wait_for(lambda: len(server.worker_pids()) >= 3, 3.0 - (time.monotonic() - start)), server.log()
    at_three = time.monotonic() - start
    master = request(control, "status")["master"]
    assert (master["workers_min"], master["workers_max"]) == (1, 4) and master["workers_wanted"] >= 3, master
    for client in clients:
        client.join(30)
    stopped = time.monotonic()
    last = [at for at in done if at >= start + 5.0]
    rate = len(last) / (max(last) - (start + 5.0)) if last else 0.0
    assert rate >= 3 * (1 / 0.3), (rate, server.log())  # -w 1 alone serves at most 1/0.3 a second
    assert failed == []
    assert wait_for(lambda: len(server.worker_pids()) == 1, 15.0 - (time.monotonic() - stopped)), server.log()
    down_after = time.monotonic() - stopped
    log = server.log()
    assert "adding a worker" in log and "retiring one" in log
    print("3 workers after %.2fs, %.1f req/s in the last 5 s, 1 worker %.1fs after the load" % (
        at_three, rate, down_after))
