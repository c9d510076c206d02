"""Sockets, systemd, logging, proxies and process options, with real files and processes."""
import json
import os
import shutil
import signal
import socket
import stat
import sys
import time

import pytest
import requests

from tests.support.http import ResponseReader, request
from tests.support.ports import free_port
from tests.support.processes import process_gone, terminate, wait_for
from tests.support.server import ROOT, Server
from tests.e2e.test_tls import _tls_args


def unix_request(path, raw):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(raw)
        return ResponseReader(sock).read()


def wait_unix(server, path):
    def ready():
        assert server.proc.poll() is None, server.log()
        try:
            unix_request(path, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            return True
        except OSError:
            return False
    assert wait_for(ready, 15), server.log()


def test_several_binds_tcp_and_unix_with_umask_and_stale_socket(server_factory, tmp_path):
    path = str(tmp_path / "app.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # a socket file nobody listens on: a crash leftover
    server = server_factory(["-b", "unix:" + path, "--umask", "007"])
    wait_unix(server, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o770
    assert unix_request(path, b"GET /environ HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    assert requests.get(server.url("/")).text == "hello"
    assert server.stop() == 0
    assert not os.path.exists(path)


def test_unix_socket_in_use_or_not_a_socket_is_refused(server_factory, tmp_path):
    path = str(tmp_path / "busy.sock")
    with socket.socket(socket.AF_UNIX) as busy:
        busy.bind(path)
        busy.listen()
        server = server_factory(["-b", "unix:" + path], bind=False, ready=False)
        assert server.proc.wait(15) != 0 and "another server is listening" in server.log()
    regular = tmp_path / "file"
    regular.write_text("data")
    server = server_factory(["-b", "unix:" + str(regular)], bind=False, ready=False)
    assert server.proc.wait(15) != 0 and "not a socket" in server.log() and regular.read_text() == "data"


def test_ipv6_loopback(server_factory):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 here")
    port = free_port()
    server = server_factory(["-b", "[::1]:%d" % port], bind=False, ready=False)

    def ready():
        try:
            socket.create_connection(("::1", port), timeout=1).close()
            return True
        except OSError:
            return False
    assert wait_for(ready, 15), server.log()
    assert requests.get("http://[::1]:%d/" % port).text == "hello"
    assert "Listening at: http://[::1]:%d" % port in server.log()


def _launcher(fd, env_code, unix=False):
    """A python -c program that opens a listening socket on ``fd`` and execs forkwsgi, as systemd would.

    Its first argument is the TCP port on 127.0.0.1 or, with ``unix``, the socket's path.
    """
    make = ("s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" if unix else
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('127.0.0.1', int(sys.argv[1])))")
    return [sys.executable, "-c",
            "import os, socket, sys\n%s; s.listen(128)\n"
            "os.dup2(s.fileno(), %d); os.set_inheritable(%d, True)\n%s\n"
            "os.execv(sys.executable, [sys.executable, '-m', 'forkwsgi'] + sys.argv[2:])" % (make, fd, fd, env_code)]


_ACTIVATED = "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))"


def _unix_connection(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


class RawTraffic:
    """Requests in a background thread over TCP or a unix socket, each on a new connection
    (Connection: close), recording every outcome: a status, or the error that lost the request."""

    def __init__(self, connect, limit=200000, seconds=40.0):
        import threading
        self.connect, self.limit, self.seconds = connect, limit, seconds
        self.results = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + self.seconds
        while not self._stop.is_set() and len(self.results) < self.limit and time.monotonic() < deadline:
            try:
                with self.connect() as sock:
                    sock.settimeout(10)
                    sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    self.results.append(ResponseReader(sock).read()[0])
            except (OSError, EOFError) as exc:
                self.results.append(repr(exc))

    def wait_count(self, count, timeout=15.0):
        assert wait_for(lambda: len(self.results) >= count, timeout), "traffic stalled at %d" % len(self.results)

    def stop(self):
        self._stop.set()
        self._thread.join(15)
        return self.results


def test_systemd_socket_activation(server_factory):
    port = free_port()
    command = _launcher(3, _ACTIVATED) + [str(port)]
    server = server_factory(["-b", "127.0.0.1:1"], port=port, bind=False, command=command)
    assert requests.get(server.url("/")).text == "hello"
    assert "(fd 3)" in server.log()  # the bind setting was ignored in favour of the passed socket


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_usr2_upgrade_under_socket_activation_keeps_serving_the_passed_socket(server_factory, tmp_path, family):
    """USR2, WINCH and QUIT of the old master, with the listener from LISTEN_FDS: the new master serves
    that same socket (not `bind`), and no request is lost, before, during or after the old one goes."""
    port, ignored = free_port(), free_port()
    path = str(tmp_path / "app.sock")
    pidfile = tmp_path / "app.pid"
    unix = family == "unix"
    command = _launcher(3, _ACTIVATED, unix=unix) + [path if unix else str(port)]
    server = server_factory(["-w", "2", "--pid", str(pidfile), "-b", "127.0.0.1:%d" % ignored],
                            port=port, bind=False, command=command, ready=False)
    if unix:
        wait_unix(server, path)
    else:
        server.wait_ready()

    def connect():
        return _unix_connection(path) if unix else socket.create_connection(("127.0.0.1", port), timeout=10)
    server.wait_workers(2)
    new_master = []
    traffic = RawTraffic(connect)
    try:
        traffic.wait_count(50)
        server.send(signal.SIGUSR2)
        assert wait_for(lambda: (tmp_path / "app.pid.oldbin").exists() and pidfile.exists(), 15), server.log()
        new_master.append(int(pidfile.read_text()))
        assert wait_for(lambda: server.log().count("booted (generation 0)") == 4, 20), server.log()
        server.send(signal.SIGWINCH)
        assert wait_for(lambda: server.worker_pids() == new_master, 20), server.log()
        seen = len(traffic.results)
        traffic.wait_count(seen + 50)
        server.send(signal.SIGQUIT)
        assert server.proc.wait(20) == 0
        seen = len(traffic.results)
        traffic.wait_count(seen + 100)
        results = traffic.stop()
        assert results and all(status == 200 for status in results), [r for r in results if r != 200][:5]
        log = server.log()
        assert log.count("(fd 3)") >= 2, log  # both masters served the passed socket
        assert "127.0.0.1:%d" % ignored not in log.replace("-b 127.0.0.1:%d" % ignored, "")
        with connect() as sock:
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
            assert ResponseReader(sock).read()[0] == 200  # the new master alone serves
    finally:
        traffic.stop()
        if new_master:
            assert terminate(new_master[0])


def test_fd_bind_survives_a_reload_that_adds_a_bind(server_factory, tmp_path):
    port, extra = free_port(), free_port()
    conf = tmp_path / "fd.conf.py"
    conf.write_text("bind = ['fd://7']\n")
    command = _launcher(7, "") + [str(port)]
    server = server_factory(["-c", str(conf)], port=port, bind=False, command=command)
    assert requests.get(server.url("/")).text == "hello"
    conf.write_text("bind = ['fd://7', '127.0.0.1:%d']\n" % extra)
    server.send(signal.SIGHUP)
    assert wait_for(lambda: "Listening at: http://127.0.0.1:%d" % extra in server.log(), 10), server.log()
    assert requests.get(server.url("/")).text == "hello"
    assert requests.get("http://127.0.0.1:%d/" % extra).text == "hello"


def test_sd_notify_ready_reloading_stopping(server_factory, tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(path)
        notify.settimeout(15)
        server = server_factory(env={"NOTIFY_SOCKET": path})
        assert notify.recv(4096).decode().startswith("READY=1\nMAINPID=%d" % server.pid)
        server.send(signal.SIGHUP)
        assert notify.recv(4096).decode().startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert notify.recv(4096) == b"READY=1"
        server.send(signal.SIGTERM)
        assert notify.recv(4096) == b"STOPPING=1"


@pytest.mark.slow  # a timing scenario of several seconds: the full run has it
def test_sd_notify_ready_after_a_reload_only_once_the_new_workers_serve(server_factory, tmp_path):
    """notify-reload: RELOADING=1 with the monotonic time of the HUP, and READY=1 only when the new
    generation has booted (the app takes a second to import), not while it is still booting."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(path)
        notify.settimeout(20)
        server = server_factory(["-w", "2"], app="tests.slow_boot_app:app",
                                env={"NOTIFY_SOCKET": path, "SLOW_BOOT_SECONDS": "1.0"})
        assert notify.recv(4096).startswith(b"READY=1\nMAINPID=")
        server.wait_workers(2)
        assert wait_for(lambda: server.log().count("booted (generation 0)") == 2, 15), server.log()
        hup_usec = time.monotonic_ns() // 1000
        server.send(signal.SIGHUP)
        reloading = notify.recv(4096).decode()
        assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC="), reloading
        assert 0 <= int(reloading.split("MONOTONIC_USEC=")[1].split()[0]) - hup_usec < 5_000_000
        assert notify.recv(4096) == b"READY=1"
        assert time.monotonic_ns() // 1000 - hup_usec >= 900_000  # not before the new app could import
        assert server.log().count("booted (generation 1)") == 2, server.log()
        assert requests.get(server.url("/"), timeout=5).status_code == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes test certificates")
def test_tls_listeners_are_named_https_in_the_log_and_ctl_status(server_factory, tmp_path, certs):
    from forkwsgi.ctl import request as ctl_request
    path = str(tmp_path / "ctl.sock")
    server = server_factory(["-w", "1", "--control-socket", path] + _tls_args(certs))
    assert server.wait_log("Listening at: https://127.0.0.1:%d" % server.port), server.log()
    assert [item["name"] for item in ctl_request(path, "status")["listeners"]] == [
        "https://127.0.0.1:%d" % server.port]
    plain = server_factory(["-w", "1"])
    assert plain.wait_log("Listening at: http://127.0.0.1:%d" % plain.port), plain.log()


def test_access_log_format_and_usr1_reopen(server_factory, tmp_path):
    access = tmp_path / "access.log"
    errors = tmp_path / "error.log"
    fmt = '%(h)s "%(r)s" %(s)s %(b)s %(m)s %(U)s %(q)s %(H)s %({x-req}i)s %({content-type}o)s %(D)s %(L)s %(u)s'
    server = server_factory(["-w", "2", "--access-logfile", str(access), "--access-logformat", fmt,
                             "--error-logfile", str(errors)])
    requests.get(server.url("/?a=1"), headers={"X-Req": "abc"}, auth=("alice", "pw"))
    assert wait_for(lambda: access.exists() and access.read_text().strip(), 5)
    fields = access.read_text().split()
    assert fields[:10] == ["127.0.0.1", '"GET', "/?a=1", 'HTTP/1.1"', "200", "5", "GET", "/", "a=1", "HTTP/1.1"]
    assert fields[10:12] == ["abc", "text/plain"] and fields[12].isdigit() and fields[14] == "alice"
    os.rename(access, tmp_path / "access.log.1")
    os.rename(errors, tmp_path / "error.log.1")
    server.send(signal.SIGUSR1)
    assert wait_for(lambda: errors.exists() and "reopened log files" in errors.read_text(), 5)

    def wsgi_errors_in_new_file():
        requests.get(server.url("/errors"))
        return "app wrote to wsgi.errors" in errors.read_text()
    assert wait_for(wsgi_errors_in_new_file, 10, interval=0.1)

    def logged_to_new_file():
        requests.get(server.url("/after-rotation"))
        return access.exists() and "/after-rotation" in access.read_text()
    assert wait_for(logged_to_new_file, 10, interval=0.1)


def test_forwarded_headers_only_from_trusted_peers(server_factory):
    headers = {"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Proto": "https"}
    trusted = server_factory()
    environ = requests.get(trusted.url("/environ"), headers=headers).json()
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("203.0.113.9", "https")
    untrusted = server_factory(["--forwarded-allow-ips", "10.0.0.0/8"])
    environ = requests.get(untrusted.url("/environ"), headers=headers).json()
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("127.0.0.1", "http")


def test_proxy_protocol_v1(server_factory):
    # Not the usual readiness probe: a connection that sends no PROXY line would be waited on at the stop.
    server = server_factory(["--proxy-protocol"], ready=False)
    assert server.wait_log("Listening at", 15), server.log()
    status, _, body = request(server.port, b"PROXY TCP4 198.51.100.7 127.0.0.1 4444 80\r\n"
                                           b"GET /environ HTTP/1.1\r\nHost: x\r\n\r\n")
    environ = json.loads(body)
    assert status == 200 and (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("198.51.100.7", "4444")
    assert request(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 400


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_user_and_group_drop_in_workers(server_factory):
    import pwd
    nobody = pwd.getpwnam("nobody")
    # --preload: this machine's Python lives under /root, which nobody cannot read
    server = server_factory(["--user", "nobody", "--group", str(nobody.pw_gid), "--preload"])
    worker = server.wait_workers(1)[0]
    assert requests.get(server.url("/")).text == "hello"  # booted: privileges are dropped by now
    with open("/proc/%d/status" % worker) as handle:
        status = dict(line.split(":", 1) for line in handle if ":" in line)
    assert status["Uid"].split()[0] == str(nobody.pw_uid) and status["Gid"].split()[0] == str(nobody.pw_gid)


def test_daemon_with_pidfile(tmp_path):
    pidfile = tmp_path / "d.pid"
    port = free_port()
    with Server(["-D", "--pid", str(pidfile), "--chdir", ROOT], port=port) as launcher:
        assert launcher.proc.wait(15) == 0  # the foreground process returns at once
        assert wait_for(pidfile.exists, 15)
        pid = int(pidfile.read_text())
        try:
            assert pid != launcher.pid
            assert wait_for(lambda: request(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[2] == b"hello", 10)
        finally:
            os.kill(pid, signal.SIGTERM)
            assert wait_for(lambda: process_gone(pid), 20)
    assert wait_for(lambda: not pidfile.exists(), 5)
    assert not os.path.exists(launcher.log_path)


def test_config_file_hooks_and_name(server_factory, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    conf = tmp_path / "hooks.conf.py"
    conf.write_text(
        "import os\n_dir = %r\n"
        "def _mark(name):\n    open(os.path.join(_dir, name), 'a').write(str(os.getpid()) + '\\n')\n"
        "workers = 1\nproc_name = 'hooked'\n"
        "def on_starting(arbiter): _mark('on_starting')\n"
        "def when_ready(arbiter): _mark('when_ready')\n"
        "def pre_fork(arbiter, worker): _mark('pre_fork')\n"
        "def post_fork(arbiter, worker): _mark('post_fork')\n"
        "def post_worker_init(worker): _mark('post_worker_init')\n"
        "def pre_request(worker, environ): _mark('pre_request')\n"
        "def post_request(worker, environ, status, length): _mark('post_request:' + status[:3])\n"
        "def child_exit(arbiter, worker): _mark('child_exit')\n"
        "def worker_exit(arbiter, worker): _mark('worker_exit')\n"
        "def on_reload(arbiter): _mark('on_reload')\n"
        "def on_exit(arbiter): _mark('on_exit')\n" % str(marks))
    server = server_factory(["-c", str(conf)])
    requests.get(server.url("/"))
    server.send(signal.SIGHUP)
    assert wait_for(lambda: (marks / "child_exit").exists(), 15)
    server.stop()
    names = sorted(os.listdir(marks))
    assert names == sorted(["on_starting", "when_ready", "pre_fork", "post_fork", "post_worker_init",
                            "pre_request", "post_request:200", "child_exit", "worker_exit", "on_reload",
                            "on_exit"])
    assert (marks / "on_exit").read_text().strip() == str(server.pid)
    assert (marks / "post_fork").read_text().strip() != str(server.pid)


def test_hooks_may_keep_their_own_state_on_the_worker(server_factory, tmp_path):
    """As on gunicorn's worker object: a hook sets an attribute the next hooks read."""
    conf = tmp_path / "state.conf.py"
    conf.write_text("def post_worker_init(worker):\n    worker.served_here = 0\n"
                    "def pre_request(worker, req):\n    worker.served_here += 1\n"
                    "    worker.log.info('hook served_here=%d', worker.served_here)\n")
    server = server_factory(["-w", "1", "-c", str(conf)])
    assert [requests.get(server.url("/"), timeout=10).status_code for _ in range(2)] == [200, 200]
    assert wait_for(lambda: "hook served_here=2" in server.log(), 5), server.log()
    assert "hook served_here=1" in server.log() and "crashed" not in server.log()


def test_a_hup_while_the_app_preloads_is_served_once_started_not_fatal(server_factory, tmp_path):
    """The port accepts from the moment the listeners open, before a preloaded app has finished
    importing: a deploy script that waits for the port may send HUP then. The master queues it,
    starts, then reloads; the connection that waited in the backlog meanwhile is answered."""
    (tmp_path / "slow_import_app.py").write_text("import time\ntime.sleep(2.0)\nfrom tests.apps import app\n")
    server = server_factory(["--preload", "-w", "1"], app="slow_import_app:app",
                            env={"PYTHONPATH": ROOT + os.pathsep + str(tmp_path)})  # ready: the port accepts
    early = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    server.send(signal.SIGHUP)  # while the app is still importing
    early.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ResponseReader(early).read(deadline=time.monotonic() + 15)[0] == 200, server.log()
    early.close()
    assert wait_for(lambda: "Handling signal: hup" in server.log(), 15), server.log()
    assert server.proc.poll() is None, server.log()
    assert requests.get(server.url("/"), timeout=10).text == "hello"


def test_hup_with_a_new_bind_keeps_the_old_socket_and_adds_the_new(server_factory, tmp_path):
    port, extra = free_port(), free_port()
    conf = tmp_path / "binds.conf.py"
    conf.write_text("bind = ['127.0.0.1:%d']\n" % port)
    server = server_factory(["-c", str(conf)], port=port, bind=False)
    conf.write_text("bind = ['127.0.0.1:%d', '127.0.0.1:%d']\n" % (port, extra))
    server.send(signal.SIGHUP)
    assert wait_for(lambda: "Listening at: http://127.0.0.1:%d" % extra in server.log(), 10), server.log()
    assert requests.get("http://127.0.0.1:%d/" % extra).text == "hello"
    assert requests.get(server.url("/")).text == "hello"
    assert "reload failed" not in server.log()
