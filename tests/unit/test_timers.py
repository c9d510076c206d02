"""The client's clocks (forkwsgi/worker/timers.py), driven in-process with a clock the test sets."""
import time

from forkwsgi.worker import states
from forkwsgi.worker.timers import STOP_IDLE_GRACE
from tests.unit.test_worker_connections import Gate, busy_worker, get
from tests.unit.worker_harness import Harness, read_response


def sweep_at(harness, later):
    harness.worker.timers.sweep(harness.worker.connections, later, later, 0.0)


def test_a_connection_that_never_sent_a_request_waits_the_header_timeout_until_a_stop():
    harness = Harness(header_timeout=10)
    try:
        conn, client = harness.connect()
        sweep_at(harness, time.monotonic() + 5)
        assert conn.state is states.READING, "within --header-timeout"
        harness.worker.stop.begin(time.monotonic())
        sweep_at(harness, time.monotonic() + STOP_IDLE_GRACE + 0.1)
        assert conn.state is states.LINGER, "a stop does not wait on a connection opened ahead of need"
        assert client.recv(10) == b""
    finally:
        harness.close()


def test_a_stop_still_serves_a_request_that_came_just_before_the_close():
    harness = Harness(header_timeout=10)
    try:
        conn, client = harness.connect()
        harness.worker.stop.begin(time.monotonic())
        client.sendall(get("late"))  # not read by the loop yet: the sweep finds it first
        sweep_at(harness, time.monotonic() + STOP_IDLE_GRACE + 0.1)
        assert read_response(client).endswith(b"hello /late")
    finally:
        harness.close()


def test_idle_keep_alive_connections_close_at_keepalive_and_sooner_once_stopping():
    harness = Harness(keepalive=5)
    try:
        conn, client = harness.connect()
        client.sendall(get())
        harness.channels.readable(conn)
        harness.turn_ends()
        read_response(client)
        sweep_at(harness, time.monotonic() + 4)
        assert conn.state is states.READING
        harness.worker.stop.begin(time.monotonic())
        sweep_at(harness, time.monotonic() + STOP_IDLE_GRACE + 0.1)
        assert conn.state is states.LINGER
    finally:
        harness.close()


def test_a_request_waiting_for_a_thread_is_never_timed_out():
    gate = Gate()
    harness, blocked = busy_worker(gate, header_timeout=1, keepalive=1)
    try:
        conn, client = harness.connect()
        harness.send(conn, client, get("late"))
        assert conn.state is states.WAITING
        sweep_at(harness, time.monotonic() + 60)
        assert conn.state is states.WAITING and blocked[0][0].state is states.APP, "the wait is ours"
    finally:
        gate.opened.set()
        harness.close()


def test_a_slow_body_is_answered_408():
    harness = Harness(body_timeout=2)
    try:
        conn, client = harness.connect()
        harness.send(conn, client, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        sweep_at(harness, time.monotonic() + 3)
        assert read_response(client).startswith(b"HTTP/1.1 408 ")
    finally:
        harness.close()
