"""Supervision and signals, with real processes and real signals."""
import os
import re
import shutil
import signal
import socket
import threading
import time

import pytest
import requests

from tests.support.http import ResponseReader, Traffic, connect
from tests.support.processes import process_gone, terminate, wait_for
from tests.support.server import ROOT, Server


def _lines(path):
    try:
        with open(path) as handle:
            return handle.read().split()
    except FileNotFoundError:
        return []


@pytest.mark.slow  # a timing scenario of several seconds: the full run has it
@pytest.mark.parametrize("connection", [b"", b"Connection: close\r\n"], ids=["keep-alive", "plain"])
def test_term_serves_requests_queued_in_the_backlog(server_factory, tmp_path, connection):
    """One worker, four 1-second requests queued in the backlog, TERM: all four must be answered."""
    server = server_factory(["-w", "1"], env={"TEST_MARKER_DIR": str(tmp_path)})
    sleep_request = b"GET /sleep?1 HTTP/1.1\r\nHost: x\r\n" + connection + b"\r\n"
    results = {}

    def client(i, sock):
        try:
            results[i] = ResponseReader(sock).read()
        except OSError as exc:
            results[i] = exc

    socks = [connect(server.port, timeout=30)]
    socks[0].sendall(sleep_request)
    assert wait_for(lambda: len(_lines(tmp_path / "sleeping")) == 1, 10)  # the worker is busy in the app
    for _ in range(3):
        sock = connect(server.port, timeout=30)  # completes in the kernel backlog; nobody accepts yet
        sock.sendall(sleep_request)
        socks.append(sock)
    threads = [threading.Thread(target=client, args=(i, sock)) for i, sock in enumerate(socks)]
    for thread in threads:
        thread.start()
    server.send(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    assert [results[i][0] for i in range(4)] == [200] * 4, results
    assert all(results[i][1]["connection"] == ["close"] for i in range(4))
    assert server.proc.wait(30) == 0
    assert "took 3 queued connection(s)" in server.log(), server.log()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def _zero_loss_during(server, action, keep_alive):
    traffic = Traffic(server.port, keep_alive, path="/pid")
    traffic.wait_count(50)
    action()
    seen = len(traffic.results)
    traffic.wait_count(seen + 100, timeout=20)
    results = traffic.stop()
    assert results and all(status == 200 for status in results), [r for r in results if r != 200][:5]
    return results


def test_hup_reload_loses_nothing_and_replaces_workers(server_factory):
    server = server_factory(["-w", "2"])
    old = server.wait_workers(2)
    for keep_alive in (False, True):
        before = server.worker_pids()
        _zero_loss_during(server, lambda: server.send(signal.SIGHUP), keep_alive)
        assert wait_for(lambda: len(server.worker_pids()) == 2 and not set(server.worker_pids()) & set(before),
                        15), server.log()
    assert not set(server.worker_pids()) & set(old)
    assert server.log().count("Handling signal: hup") == 2


@pytest.mark.slow  # an upgrade under traffic, counted for loss: the full run keeps it
def test_usr2_upgrade_then_winch_and_quit_loses_nothing(server_factory, tmp_path):
    pidfile = tmp_path / "forkwsgi.pid"
    server = server_factory(["-w", "2", "--pid", str(pidfile)])
    server.wait_workers(2)
    new_master = []

    def upgrade():
        server.send(signal.SIGUSR2)
        assert wait_for(lambda: (tmp_path / "forkwsgi.pid.oldbin").exists() and pidfile.exists(), 15)
        new_master.append(int(pidfile.read_text()))
        new = Server.__new__(Server)
        new.proc = type("P", (), {"pid": new_master[0]})()
        assert wait_for(lambda: len(Server.worker_pids(new)) == 2, 20), server.log()
        server.send(signal.SIGWINCH)
        assert wait_for(lambda: server.worker_pids() == new_master, 20)  # only the new master is left
        server.send(signal.SIGQUIT)
        assert server.proc.wait(20) == 0

    try:
        for keep_alive in (False, True):
            results = _zero_loss_during(server, upgrade if not new_master else lambda: None, keep_alive)
            assert len(results) > 150
        assert new_master[0] != server.pid
        assert int(pidfile.read_text()) == new_master[0]
        assert not (tmp_path / "forkwsgi.pid.oldbin").exists()
        assert requests.get(server.url("/")).text == "hello"
    finally:
        if new_master:
            assert terminate(new_master[0])


def test_term_with_steady_traffic_answers_everything_accepted(server_factory):
    server = server_factory(["-w", "2"])
    traffic = Traffic(server.port, keep_alive=False, path="/pid")
    traffic.wait_count(50)
    server.send(signal.SIGTERM)
    assert server.proc.wait(30) == 0
    results = traffic.stop()
    answered = [r for r in results if r == 200]
    failures = [r for r in results if r != 200]
    # after the stop, connections are refused (never reset or left hanging)
    assert answered and all("Connection refused" in r or "Errno 111" in r for r in failures), failures[:3]


def test_ttin_ttou_winch(server_factory):
    server = server_factory(["-w", "2"])
    server.wait_workers(2)
    server.send(signal.SIGTTIN)
    server.wait_workers(3)
    server.send(signal.SIGTTOU)
    server.wait_workers(2)
    server.send(signal.SIGWINCH)
    server.wait_workers(0)
    assert server.proc.poll() is None
    server.send(signal.SIGHUP)
    server.wait_workers(2)
    assert requests.get(server.url("/")).text == "hello"


def _hook_config(tmp_path, *hooks):
    """A config file whose hooks each leave a marker file named after the hook."""
    conf = tmp_path / "hooks.conf.py"
    conf.write_text("import os\n" + "".join(
        "def %s(*args):\n    open(os.path.join(%r, %r), 'w').write(str(os.getpid()))\n" % (h, str(tmp_path), h)
        for h in hooks))
    return str(conf)


def test_hung_worker_is_aborted_and_replaced(server_factory, tmp_path):
    server = server_factory(["-w", "1", "--timeout", "1", "-c", _hook_config(tmp_path, "worker_abort")])
    old = server.wait_workers(1)
    with connect(server.port, timeout=20) as sock:
        sock.sendall(b"GET /sleep?30 HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = ResponseReader(sock)
        assert reader.read()[0] == 504  # its client is answered before the worker exits
        assert reader.closed(timeout=15)
    assert server.wait_log("WORKER TIMEOUT (pid:%d)" % old[0], 5)
    assert requests.get(server.url("/pid")).text != str(old[0])
    assert (tmp_path / "worker_abort").read_text() == str(old[0])


def test_max_requests_recycles_gracefully_keeping_the_connection(server_factory):
    """The retiring worker hands its keep-alive connection to the next one: no reconnect, no failure."""
    server = server_factory(["-w", "1", "--max-requests", "10", "--max-requests-jitter", "3"])
    with connect(server.port) as sock:
        reader = ResponseReader(sock)
        pids = []
        for _ in range(40):
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = reader.read()
            assert status == 200 and "connection" not in headers
            pids.append(body)
    assert len(set(pids)) >= 3
    assert "then restarting" in server.log()


def test_max_requests_without_handoff_closes_the_last_connection(server_factory):
    server = server_factory(["-w", "1", "--max-requests", "10", "--max-requests-jitter", "3", "--no-handoff"])
    with requests.Session() as session:
        responses = [session.get(server.url("/pid")) for _ in range(40)]
    pids = [r.text for r in responses]
    assert len(set(pids)) >= 3
    last_of_each = [r for r, after in zip(responses, pids[1:]) if r.text != after]
    assert all(r.headers.get("Connection") == "close" for r in last_of_each)


def test_worker_signals(server_factory):
    server = server_factory(["-w", "1"])
    first = server.wait_workers(1)[0]
    os.kill(first, signal.SIGTERM)
    second = wait_for(lambda: [p for p in server.worker_pids() if p != first], 10)
    assert second
    os.kill(second[0], signal.SIGQUIT)
    assert wait_for(lambda: [p for p in server.worker_pids() if p not in (first, second[0])], 10)
    assert requests.get(server.url("/")).text == "hello"


def test_a_worker_signalled_as_soon_as_it_exists_still_stops(server_factory):
    """TERM to a worker the moment its pid appears (while it may still hold the master's handlers)
    ends it, and the master replaces it: never a worker that ignores the signal."""
    server = server_factory(["-w", "1"])
    worker = server.wait_workers(1)[0]
    for _ in range(10):
        os.kill(worker, signal.SIGTERM)
        assert wait_for(lambda: process_gone(worker), 5), "worker %d ignored TERM" % worker
        fresh = wait_for(lambda: [p for p in server.worker_pids() if p != worker], 10, interval=0.0005)
        assert fresh, server.log()
        worker = fresh[0]
    assert requests.get(server.url("/"), timeout=10).text == "hello"


def test_int_is_a_fast_stop(server_factory, tmp_path):
    server = server_factory(["-w", "1", "-c", _hook_config(tmp_path, "worker_int")],
                            env={"TEST_MARKER_DIR": str(tmp_path)})
    worker = server.wait_workers(1)[0]
    with connect(server.port, timeout=20) as sock:
        sock.sendall(b"GET /sleep?20 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: (tmp_path / "sleeping").exists(), 10)
        server.send(signal.SIGINT)
        assert server.proc.wait(10) == 0
        assert ResponseReader(sock).closed()
    assert (tmp_path / "worker_int").read_text() == str(worker)


def test_boot_failure_at_start_exits_with_clear_error(server_factory):
    server = server_factory(["-w", "2"], app="tests.broken_app:app", ready=False)
    assert server.proc.wait(20) == 3
    log = server.log()
    assert "RuntimeError: this app cannot start" in log and "worker failed to boot" in log
    assert log.count("Booting worker") <= 2


def test_broken_reload_keeps_previous_workers(server_factory, tmp_path):
    shutil.copy(os.path.join(ROOT, "tests", "preload_app.py"), tmp_path / "reloadable.py")
    server = server_factory(["-w", "1", "--chdir", str(tmp_path)], app="reloadable:app")
    old = server.wait_workers(1)
    assert requests.get(server.url("/")).status_code == 200  # the worker has imported the app: now break it
    (tmp_path / "reloadable.py").write_text("raise ImportError('broken deploy')\n")
    server.send(signal.SIGHUP)
    assert server.wait_log("keeping the 1 previous workers", 20), server.log()
    assert server.worker_pids() == old
    assert requests.get(server.url("/")).status_code == 200
    assert server.log().count("cannot import 'reloadable:app': ImportError: broken deploy") == 5


def test_preload_imports_in_the_master(server_factory):
    server = server_factory(["-w", "1", "--preload"], app="tests.preload_app:app")
    imported_by, worker = requests.get(server.url("/")).text.split()
    assert int(imported_by) == server.pid and int(worker) != server.pid


def _write_nested_broken_app(root):
    """A package whose app module fails at import time, inside a helper module it imports."""
    package = root / "nestedbroken"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def load_settings():\n    settings = {}\n"
                                        "    return settings['DATABASES']\n")
    (package / "app.py").write_text("from nestedbroken import helpers\n\nSETTINGS = helpers.load_settings()\n")
    return str(package / "helpers.py")


def _assert_summary_then_traceback(log, helpers):
    summary = "cannot import 'nestedbroken.app:app': KeyError: 'DATABASES' (%s:3)" % helpers
    assert summary in log, log
    after = log[log.index(summary):]
    assert "Traceback (most recent call last):" in after, log
    assert '  File "%s", line 3, in load_settings' % helpers in after, log
    assert "    return settings['DATABASES']" in after and "<frozen importlib" not in log


def test_preload_import_error_logs_the_summary_then_the_traceback(server_factory, tmp_path):
    helpers = _write_nested_broken_app(tmp_path)
    server = server_factory(["--preload", "--chdir", str(tmp_path)], app="nestedbroken.app:app", ready=False)
    assert server.proc.wait(20) == 1
    _assert_summary_then_traceback(server.log(), helpers)


def test_worker_import_error_logs_the_summary_then_the_traceback(server_factory, tmp_path):
    helpers = _write_nested_broken_app(tmp_path)
    server = server_factory(["-w", "1", "--chdir", str(tmp_path)], app="nestedbroken.app:app", ready=False)
    assert server.proc.wait(20) == 3
    _assert_summary_then_traceback(server.log(), helpers)


class _WorkerCount:
    """Samples the master's live worker count in a thread, bounded in time, recording the most seen."""

    def __init__(self, server, seconds=60.0):
        self.server, self.most, self.samples = server, 0, 0
        self._stop = threading.Event()
        self._deadline = time.monotonic() + seconds
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self.most = max(self.most, len(self.server.worker_pids()))
            self.samples += 1

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return self.most


def _booted(tmp_path):
    """Pids whose post_worker_init hook ran: workers that finished loading the app."""
    return {int(name.split("-")[1]) for name in os.listdir(tmp_path) if name.startswith("booted-")}


def test_hup_burst_keeps_only_the_serving_and_the_newest_generation(server_factory, tmp_path):
    conf = tmp_path / "boot.conf.py"
    conf.write_text("import os\n"
                    "def post_worker_init(worker):\n"
                    "    open(os.path.join(%r, 'booted-%%d' %% os.getpid()), 'w').close()\n" % str(tmp_path))
    server = server_factory(["-w", "4", "-c", str(conf)], app="tests.slow_boot_app:app")
    first = server.wait_workers(4)
    assert wait_for(lambda: _booted(tmp_path) >= set(first), 15), server.log()
    counter = _WorkerCount(server)
    traffic = Traffic(server.port, keep_alive=False)
    try:
        traffic.wait_count(20)
        for sent in range(1, 6):  # each handled before the next: every reload supersedes a booting generation
            server.send(signal.SIGHUP)
            assert wait_for(lambda: server.log().count("Handling signal: hup") == sent, 10), server.log()

        def settled():
            pids = server.worker_pids()
            return len(pids) == 4 and not set(pids) & set(first) and set(pids) <= _booted(tmp_path)
        assert wait_for(settled, 20), server.log()
        seen = len(traffic.results)
        traffic.wait_count(seen + 20)
    finally:
        most = counter.stop()
        results = traffic.stop()
    booting = [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", server.log())]
    assert set(server.worker_pids()) == set(booting[-4:])  # the newest generation serves
    assert counter.samples > 10 and most <= 8, (most, server.log())
    assert results and all(status == 200 for status in results), [r for r in results if r != 200][:5]


@pytest.mark.slow  # a timing scenario: its bounds hold on a quiet machine, the serial full run
def test_hups_queued_together_are_one_reload(server_factory, tmp_path):
    reloads = tmp_path / "reloads"
    conf = tmp_path / "slow_reload.conf.py"
    conf.write_text("import time\n"
                    "def on_reload(arbiter):\n"
                    "    open(%r, 'a').write('reload\\n')\n"
                    "    time.sleep(1.0)\n" % str(reloads))
    server = server_factory(["-w", "1", "-c", str(conf)])
    server.wait_workers(1)
    server.send(signal.SIGHUP)
    assert wait_for(lambda: reloads.exists(), 10)  # the master is inside the first reload for a second
    for _ in range(4):
        server.send(signal.SIGHUP)
        time.sleep(0.05)  # apart, so the kernel delivers each one rather than merging them
    server.send(signal.SIGTTIN)  # queued behind the HUPs: once it is handled, so are they
    assert server.wait_log("Handling signal: ttin", 10), server.log()
    assert server.log().count("Handling signal: hup") == 2
    assert reloads.read_text().count("reload") == 2
    server.wait_workers(2)
    assert requests.get(server.url("/")).text == "hello"


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_stopped_worker_is_killed_within_the_timeout_and_replaced(server_factory, tmp_path):
    """A SIGSTOPped worker cannot run its SIGABRT handler until it gets SIGCONT."""
    server = server_factory(["-w", "2", "--timeout", "3", "-c", _hook_config(tmp_path, "worker_abort")])
    workers = server.wait_workers(2)
    assert requests.get(server.url("/")).text == "hello"
    victim = workers[0]
    os.kill(victim, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        assert wait_for(lambda: process_gone(victim), 8), server.log()
        gone_after = time.monotonic() - stopped_at
    finally:
        if not process_gone(victim):
            os.kill(victim, signal.SIGKILL)
    assert gone_after < 4.5, (gone_after, server.log())
    assert wait_for(lambda: len([p for p in server.worker_pids() if p not in workers]) == 1, 10), server.log()
    assert server.wait_log("WORKER TIMEOUT (pid:%d)" % victim, 5), server.log()
    assert (tmp_path / "worker_abort").read_text() == str(victim)  # SIGCONT let its abort handler run
    assert "sending SIGKILL" not in server.log()
    assert workers[1] in server.worker_pids()  # the healthy worker was left alone


def test_workers_stop_when_the_master_is_killed(server_factory):
    """An orphaned worker would serve on (and hold the port) forever: it notices and stops."""
    server = server_factory(["-w", "2"])
    workers = server.wait_workers(2)
    server.send(signal.SIGKILL)
    server.proc.wait(5)
    assert wait_for(lambda: all(process_gone(pid) for pid in workers), 10)


def test_term_right_after_ctl_add_64_stops_the_master(server_factory, tmp_path):
    from forkwsgi.ctl import request as ctl_request
    path = str(tmp_path / "ctl.sock")
    server = server_factory(["-w", "1", "--control-socket", path, "--graceful-timeout", "10"])
    server.wait_workers(1)
    assert ctl_request(path, "add 64")["ok"]
    server.send(signal.SIGTERM)
    assert wait_for(lambda: server.proc.poll() is not None, 30), "TERM was lost:\n" + server.log()[-2000:]
    assert server.proc.returncode == 0
    log = server.log()
    assert "Handling signal: ttin (x64)" in log and "Handling signal: term" in log
