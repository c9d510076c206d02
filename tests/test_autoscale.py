"""--max-workers: workers that follow the load."""
import socket
import threading
import time

import pytest

from forkwsgi.master.autoscale import Autoscaler
from tests.conftest import wait_for


def test_the_autoscaler_adds_under_pressure_and_retires_what_stays_idle():
    scaler = Autoscaler(up_after=1.0, down_after=5.0)
    assert scaler.sample(0.0, {1: True}, 0, 1, 3) == 0
    assert scaler.sample(0.5, {1: True}, 0, 1, 3) == 0
    assert scaler.sample(1.0, {1: True}, 0, 1, 3) == 1  # busy for 1 s
    assert scaler.sample(1.5, {1: True, 2: False}, 4, 2, 2) == 0  # a queue, but the last change is young
    assert scaler.sample(2.0, {1: True, 2: True}, 4, 2, 2) == 1
    assert scaler.sample(3.0, {1: True, 2: True, 3: True}, 4, 3, 0) == 0  # no room left
    assert scaler.extra == 2
    assert scaler.sample(3.1, {1: True, 2: False, 3: True}, 0, 3, 1) == 0  # a free one resets the pressure
    for now in (4.0, 6.0, 8.0):
        assert scaler.sample(now, {1: False, 2: False, 3: False}, 0, 3, 1) == 0
    assert scaler.sample(9.0, {1: False, 2: False, 3: False}, 0, 3, 1) == -1  # idle 5 s: one less
    assert scaler.sample(9.5, {1: False, 2: False}, 0, 2, 2) == 0  # a second between retirements
    assert scaler.sample(10.0, {1: False, 2: False}, 0, 2, 2) == -1
    assert scaler.extra == 0
    assert scaler.sample(20.0, {1: False}, 0, 1, 3) == 0  # never below -w


def test_max_workers_below_w_and_bad_delays_are_refused():
    import subprocess
    import sys
    for args, text in ((["-w", "3", "--max-workers", "2"], "--max-workers 2 is below -w 3"),
                       (["--max-workers", "0"], "max_workers"), (["--scale-up-after", "0"], "scale_up_after"),
                       (["--scale-down-after", "-1"], "scale_down_after")):
        done = subprocess.run([sys.executable, "-m", "forkwsgi"] + args + ["tests.apps:app"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode != 0 and text in done.stderr, (args, done.stderr)


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
