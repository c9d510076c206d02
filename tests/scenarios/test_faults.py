"""Fault injection under load. Each scenario runs tests.loadclient against tests.fault_apps
and asserts that nothing is lost and nothing is wrong; ``pytest -s`` shows the numbers of each.

Counting rules (tests/support/loadclient.py): ``lost`` is a request written without a complete response
coming back (a request written on a keep-alive connection the server had just closed counts);
``refused`` is a connection that could not be opened, so nothing was sent.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.support.http import connect
from tests.support.processes import children, process_gone, tcp_sockets, wait_for
from tests.fault_apps import blob
from tests.support.http import ResponseReader
from tests.support.loadclient import LoadClient

APP = "tests.fault_apps:app"
GRACE = 10  # --graceful-timeout of every server here, so that a failing scenario still ends in bounded time
LOAD = dict(keepalive=6, fresh=4, slow_fraction=0.02, slow_secs=(1.0, 2.0), seconds=60.0, timeout=20.0)
CLIENT_THREADS = LOAD["keepalive"] + LOAD["fresh"]


# ----- helpers


@pytest.fixture
def start(server_factory):
    """Start a forkwsgi master on tests.fault_apps; fail with its log if it refuses the arguments."""

    def start(args, **kwargs):
        server = server_factory(["--graceful-timeout", str(GRACE)] + list(args), app=APP, ready=False, **kwargs)

        def accepts():
            if server.proc.poll() is not None:
                return "exited"
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=0.5).close()
                return "ready"
            except OSError:
                return None
        state = wait_for(accepts, 20)
        if state != "ready":
            pytest.fail("server %s (args %r):\n%s" % ("exited early" if state else "never accepted",
                                                      args, server.log()[-3000:]))
        return server
    return start


@pytest.fixture
def loads(start):
    """Load clients to stop at teardown, before the servers they talk to are stopped."""
    clients = []

    def load(port, **kwargs):
        client = LoadClient(port, **dict(LOAD, **kwargs))
        clients.append(client)
        return client.start()
    yield load
    for client in clients:
        client.stop(join_timeout=5)


def report(name, client, **extra):
    """Print the counts (visible with pytest -s) and return them."""
    counts = client.counts()
    line = "[faults] %-18s sent=%d ok=%d lost=%d wrong=%d refused=%d (lost with 0 bytes back: %d, on a reused " \
           "keep-alive connection: %d)" % (name, counts["sent"], counts["ok"], counts["lost"], counts["wrong"],
                                           counts["refused"], counts["lost_no_bytes"], counts["lost_stale"])
    if extra:
        line += " " + " ".join("%s=%s" % item for item in extra.items())
    print("\n" + line + "\n          " + client.summary(), flush=True)
    for failure in client.failures():
        print("          failure: " + failure, flush=True)
    return counts


def assert_clean(client, counts, refused_ok=False):
    assert counts["sent"] > 0, "no request was sent"
    problems = counts["lost"] + counts["wrong"] + (0 if refused_ok else counts["refused"])
    assert problems == 0, "%s\n%s" % (counts, "\n".join(client.failures()))


def wait_ok(client, count, timeout=20.0, what=""):
    assert client.wait_ok(count, timeout), "load stalled %s: %s\n%s" % (what, client.counts(),
                                                                       "\n".join(client.failures()))


def kill_tree(pid, sig=signal.SIGKILL):
    """Signal ``pid`` and every descendant (collected first), ignoring the ones already gone."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(children(current))
    for each in reversed(pids):
        try:
            os.kill(each, sig)
        except ProcessLookupError:
            pass


def client_ports_held_by(pid, server_port):
    """Client-side ports of the TCP connections to ``server_port`` whose sockets ``pid`` holds."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    return {remote for local, remote, _, inode in tcp_sockets()
            if inode in inodes and local == server_port and remote}


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def get_on(sock, reader, target, timeout=10.0):
    """One keep-alive GET on an open connection: (status, headers, body)."""
    sock.settimeout(timeout)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
    status, headers, body, _ = reader.read_final(time.monotonic() + timeout)
    return status, headers, body


# ----- 1, 2, 3: reload, scaling, max-requests


@pytest.mark.slow
def test_hup_during_load_twice(start, loads):
    server = start(["-w", "4"])
    server.wait_workers(4)
    client = loads(server.port)
    wait_ok(client, 150, what="before HUP")
    for round_ in range(2):
        before = set(server.worker_pids())
        server.send(signal.SIGHUP)
        replaced = wait_for(lambda: len(server.worker_pids()) == 4 and not set(server.worker_pids()) & before, 20)
        assert replaced, "HUP %d: workers not replaced: %r -> %r\n%s" % (
            round_ + 1, sorted(before), server.worker_pids(), server.log()[-3000:])
        wait_ok(client, 150, what="after HUP %d" % (round_ + 1))
    client.stop()
    assert_clean(client, report("hup x2", client))


@pytest.mark.slow
def test_hup_every_two_seconds_with_threads_under_load(start, loads):
    """Each reload completes (its new workers take over) before the next HUP, and nothing is lost."""
    server = start(["-w", "2", "--threads", "4"])
    server.wait_workers(2)
    client = loads(server.port, keepalive=16, fresh=4)
    wait_ok(client, 150, what="before HUP")
    for round_ in range(4):
        before = set(server.worker_pids())
        sent = time.monotonic()
        server.send(signal.SIGHUP)
        replaced = wait_for(lambda: len(server.worker_pids()) == 2 and not set(server.worker_pids()) & before, 5.0)
        assert replaced, "HUP %d: the new workers did not take over: %r -> %r\n%s" % (
            round_ + 1, sorted(before), server.worker_pids(), server.log()[-3000:])
        time.sleep(max(0.0, sent + 2.0 - time.monotonic()))  # the next HUP 2 s after this one
    wait_ok(client, 150, what="after the reloads")
    client.stop()
    assert "supersedes" not in server.log()
    assert_clean(client, report("hup /2s threads", client))


@pytest.mark.slow
def test_ttin_then_ttou_twice(start, loads):
    server = start(["-w", "4"])
    server.wait_workers(4)
    client = loads(server.port)
    wait_ok(client, 150, what="before TTIN")
    for round_ in range(2):
        server.send(signal.SIGTTIN)
        server.wait_workers(5, 20)
        wait_ok(client, 100, what="after TTIN %d" % (round_ + 1))
        server.send(signal.SIGTTOU)
        server.wait_workers(4, 20)
        wait_ok(client, 100, what="after TTOU %d" % (round_ + 1))
    client.stop()
    assert_clean(client, report("ttin/ttou x2", client))


@pytest.mark.slow
def test_max_requests_with_jitter(start, loads):
    server = start(["-w", "4", "--max-requests", "100", "--max-requests-jitter", "20"])
    first = set(server.wait_workers(4))
    client = loads(server.port)
    # enough traffic for every worker to be recycled at least once, bounded in time
    recycled = wait_for(lambda: server.log().count("then restarting") >= 8 and
                        client.counts()["ok"] >= 1200, 25, interval=0.2)
    wait_ok(client, 100, what="after recycling")
    client.stop()
    restarts = server.log().count("then restarting")
    counts = report("max-requests", client, restarts=restarts,
                    first_workers_left=len(first & set(server.worker_pids())))
    assert recycled, "only %d recycles in 25 s" % restarts
    assert_clean(client, counts)


# ----- 4: USR2 upgrade


@pytest.mark.slow
def test_usr2_upgrade_sequence(start, loads, tmp_path):
    pidfile = tmp_path / "app.pid"
    oldbin = tmp_path / "app.pid.oldbin"
    server = start(["-w", "4", "--pid", str(pidfile)])
    old_workers = server.wait_workers(4)
    new_master = []
    client = loads(server.port)
    try:
        wait_ok(client, 150, what="before USR2")
        server.send(signal.SIGUSR2)

        def new_pid():
            try:
                pid = int(pidfile.read_text())
            except (OSError, ValueError):
                return 0
            return pid if pid != server.pid and oldbin.exists() else 0
        pid = wait_for(new_pid, 20)
        assert pid, "no new pid file after USR2\n%s" % server.log()[-3000:]
        new_master.append(pid)
        assert wait_for(lambda: len(children(pid)) == 4, 20), "new master %d has workers %r\n%s" % (
            pid, children(pid), server.log()[-3000:])
        wait_ok(client, 100, what="with both masters")
        server.send(signal.SIGWINCH)
        assert wait_for(lambda: server.worker_pids() == [pid], 20), "old workers left: %r\n%s" % (
            server.worker_pids(), server.log()[-3000:])  # only the new master is the old master's child
        assert all(process_gone(w) for w in old_workers)
        wait_ok(client, 100, what="after WINCH")
        server.send(signal.SIGQUIT)
        assert server.proc.wait(20) == 0
        wait_ok(client, 150, what="after QUIT of the old master")
        client.stop()
        counts = report("usr2 upgrade", client, new_master_workers=len(children(pid)))
        assert int(pidfile.read_text()) == pid and not oldbin.exists()
        assert_clean(client, counts)
    finally:
        client.stop(join_timeout=5)
        for pid in new_master:
            kill_tree(pid, signal.SIGTERM)
            if not wait_for(lambda: process_gone(pid), 15):
                kill_tree(pid)
            kill_tree(pid)  # any worker left behind (no-op when all are gone)


# ----- 5: TERM with new connections arriving


@pytest.mark.slow
def test_term_answers_every_accepted_connection(start, loads):
    grace = 5
    server = start(["-w", "4", "--graceful-timeout", str(grace)])  # overrides GRACE: the last flag wins
    workers = server.wait_workers(4)
    client = loads(server.port)
    wait_ok(client, 300, what="before TERM")
    started = time.monotonic()
    server.send(signal.SIGTERM)
    try:
        code = server.proc.wait(grace + 10)
    except subprocess.TimeoutExpired:
        code = None
    took = time.monotonic() - started
    # keep trying a moment after the exit: every attempt now must be refused, never reset
    time.sleep(0.5)
    client.stop()
    log = server.log()
    drained = [(int(pid), int(n)) for pid, n in re.findall(r"worker (\d+): stopping, took (\d+) queued", log)]
    late = [r for r in client.records if r.start > started]
    counts = report("term", client, exit_code=code, master_exit_s="%.2f" % took, drained=drained,
                    requests_started_after_term=len(late),
                    ok_after_term=sum(1 for r in late if r.outcome == "ok"),
                    lost_sent_at_s_after_term=["%.3f" % (r.start - started) for r in client.records
                                               if r.outcome == "lost"][:10])
    leftovers = [pid for pid in workers if not process_gone(pid)]
    assert code == 0, "master exit code %r after %.1fs\n%s" % (code, took, log[-3000:])
    assert took <= grace + 2, "master took %.1fs to exit (graceful_timeout %ds)" % (took, grace)
    assert not leftovers, "workers still alive after the master exited: %r" % leftovers
    # the client never has more than one connection per thread open: a worker that took more has kept
    # accepting connections that arrived after TERM instead of only those queued at the time
    assert all(n <= CLIENT_THREADS for _, n in drained), drained
    assert_clean(client, counts, refused_ok=True)


# ----- 6: uploads when the spool cannot be written


def _upload(sock, reader, size, timeout=30.0):
    """Send a ``size``-byte chunked POST /upload on an open connection while reading the answer.
    Chunked: such a body is received whole, and spooled, before the app runs (one with a large
    Content-Length would stream to the app instead, never touching the spool)."""
    result = {"send_error": None, "body_sent": 0}
    sock.settimeout(timeout)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"u" * 65536 + b"\r\n"

    def send_body():
        try:
            while result["body_sent"] < size:
                sock.sendall(chunk)
                result["body_sent"] += 65536
            sock.sendall(b"0\r\n\r\n")
        except OSError as exc:
            result["send_error"] = repr(exc)
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        status, headers, body, _ = reader.read_final(time.monotonic() + timeout)
        result.update(status=status, body=body[:200], connection=headers.get("connection"))
    except Exception as exc:  # a reset or EOF instead of a status line is the failure under test
        result.update(status=None, error=repr(exc), bytes_back=reader.received)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sender.join(10)
    return result


class _Probe:
    """A keep-alive client on one given connection: small GETs in a loop, each checked and timed."""

    def __init__(self, sock, reader):
        self.sock, self.reader = sock, reader
        self.results = []  # (ok, latency, detail)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        seed = 5_000_000
        while not self._stop.is_set() and len(self.results) < 20000:
            seed += 1
            begun = time.monotonic()
            try:
                status, _, body = get_on(self.sock, self.reader, "/blob?seed=%d&size=1000" % seed, 10)
                ok = status == 200 and body == blob(seed, 1000)
                self.results.append((ok, time.monotonic() - begun, "status %d" % status))
            except Exception as exc:
                self.results.append((False, time.monotonic() - begun, repr(exc)))
                return
            self._stop.wait(0.01)

    def wait(self, count, timeout=10.0):
        target = len(self.results) + count
        return wait_for(lambda: len(self.results) >= target or not self._thread.is_alive(), timeout) and \
            len(self.results) >= target

    def stop(self):
        self._stop.set()
        self._thread.join(15)
        failed = [detail for ok, _, detail in self.results if not ok]
        return len(self.results), failed, max([lat for _, lat, _ in self.results] or [0.0])


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 2 MiB tmpfs, unmounted at teardown; skips where mounting is not permitted."""
    path = tmp_path / "spool"
    path.mkdir()
    if not shutil.which("mount"):
        pytest.skip("no mount command: cannot make a 2 MiB tmpfs for the full-disk upload")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a 2 MiB tmpfs (needs root or CAP_SYS_ADMIN): %s" % done.stderr.strip())
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


UPLOAD_STATUSES = (413, 507)  # or any 5xx


def _upload_status_ok(status):
    return status is not None and (status in UPLOAD_STATUSES or 500 <= status < 600)


@pytest.mark.slow
def test_upload_on_a_full_disk(start, full_tmpfs):
    """--spool-dir on a 2 MiB tmpfs: a 10 MB upload gets an error status line; nothing else suffers."""
    server = start(["-w", "4", "--spool-dir", str(full_tmpfs)])
    workers = server.wait_workers(4)
    # find two connections on the same worker: one uploads, the other is the concurrent keep-alive client
    conns, by_pid = [], {}
    try:
        for _ in range(24):
            sock = connect(server.port)
            reader = ResponseReader(sock)
            status, headers, _ = get_on(sock, reader, "/pid")
            conns.append(sock)
            by_pid.setdefault(int(headers["x-pid"][0]), []).append((sock, reader))
            if any(len(v) >= 2 for v in by_pid.values()):
                break
        pid, pair = next((p, v) for p, v in by_pid.items() if len(v) >= 2)
        probe = _Probe(*pair[1])
        assert probe.wait(20), "keep-alive probe not served before the upload: %r" % probe.results[-3:]
        result = _upload(pair[0][0], pair[0][1], 10 * 1000 * 1000)
        served_after = probe.wait(20)
        total, failed, worst = probe.stop()
        new = server.worker_pids()
        print("\n[faults] %-18s upload worker %d: %r; probe on that worker: %d requests, %d failed, max latency "
              "%.3fs; workers %s" % ("upload full disk", pid, result, total, len(failed), worst,
                                     "unchanged" if new == workers else "%r -> %r" % (workers, new)), flush=True)
        assert _upload_status_ok(result["status"]), "upload got no error status line: %r\n%s" % (
            result, server.log()[-3000:])
        assert new == workers, "a worker died: %r -> %r\n%s" % (workers, new, server.log()[-3000:])
        assert served_after and not failed, failed[:3]
        assert os.listdir(full_tmpfs) == [], "spool files left behind: %r" % os.listdir(full_tmpfs)
    finally:
        for sock in conns:
            sock.close()
        leftovers = server.worker_pids()
        server.stop()  # before the tmpfs is unmounted: no spool file may keep it busy
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: all(process_gone(pid) for pid in leftovers), 5)


_WITH_FD_LIMIT = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
                  "os.execv(sys.executable, [sys.executable, '-m', 'forkwsgi'] + sys.argv[1:])")


@pytest.mark.slow
def test_upload_with_fds_exhausted(start):
    """RLIMIT_NOFILE 64, -w 1, ~70 idle connections: the spool file cannot be opened (EMFILE).

    -w 1 so that the idle connections exhaust the one worker's descriptors (with -w 4 they would be
    spread over four workers, none at its limit). The spool goes to the default temporary directory,
    which has room: the fault here is only the missing descriptor.
    """
    server = start(["-w", "1"], command=[sys.executable, "-c", _WITH_FD_LIMIT])
    worker = server.wait_workers(1)[0]
    upload_sock = connect(server.port)
    probe_sock = connect(server.port)
    idle = []
    try:
        readers = [ResponseReader(upload_sock), ResponseReader(probe_sock)]
        for sock, reader in zip((upload_sock, probe_sock), readers):
            assert get_on(sock, reader, "/pid")[0] == 200
        probe = _Probe(probe_sock, readers[1])
        assert probe.wait(10)
        for _ in range(70):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        at_limit = wait_for(lambda: open_fds(worker) >= 62, 10)
        fds = open_fds(worker)
        result = _upload(upload_sock, readers[0], 10 * 1000 * 1000)
        served_after = probe.wait(20)
        total, failed, worst = probe.stop()
        for sock in idle:
            sock.close()
        idle = []
        # once the idle connections are gone the worker must accept again
        try:
            fresh = connect(server.port, timeout=10)
            with fresh:
                after = get_on(fresh, ResponseReader(fresh), "/pid")[0]
        except Exception as exc:
            after = repr(exc)
        print("\n[faults] %-18s worker fds at upload %d (limit 64); upload %r; probe %d requests, %d failed, "
              "max latency %.3fs; worker %s; new connection after: %r" % (
                  "upload fd limit", fds, result, total, len(failed), worst,
                  "alive" if server.worker_pids() == [worker] else "replaced: %r" % server.worker_pids(), after),
              flush=True)
        assert at_limit, "the worker never reached its descriptor limit (%d open)" % fds
        assert _upload_status_ok(result["status"]), "upload got no error status line: %r\n%s" % (
            result, server.log()[-3000:])
        assert server.worker_pids() == [worker], "the worker died\n%s" % server.log()[-3000:]
        assert served_after and not failed, failed[:3]
        assert after == 200
    finally:
        for sock in idle + [upload_sock, probe_sock]:
            sock.close()


@pytest.mark.slow
def test_handoff_to_a_worker_at_its_fd_limit_loses_nothing(start, loads):
    """RLIMIT_NOFILE 64, -w 2, 60 idle connections and 40 clients: a worker that has no descriptor to
    spare stops taking hand-offs (and accepts) until it has one again, so a sibling with room takes them."""
    server = start(["-w", "2", "--keepalive", "60", "--header-timeout", "60"],
                   command=[sys.executable, "-c", _WITH_FD_LIMIT])
    server.wait_workers(2)
    idle = []
    try:
        for _ in range(60):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        client = loads(server.port, keepalive=20, fresh=20, slow_fraction=0.05, slow_secs=(0.2, 0.5),
                       seconds=8.0)
        assert client.join(40), "the load did not end"
        counts = report("handoff fd limit", client)
        assert counts["ok"] > 100
        assert_clean(client, counts, refused_ok=True)
        assert "at its fd limit" not in server.log()
    finally:
        for sock in idle:
            sock.close()


# ----- 7: a slow reader must not hold the worker


@pytest.mark.slow
def test_slow_reader_does_not_hold_the_worker(start, loads):
    server = start(["-w", "1"])
    client = loads(server.port, keepalive=1, fresh=0, slow_fraction=0.0, sizes=(64, 1000, 4096), timeout=10.0)
    wait_ok(client, 20, what="before the slow reader")
    progress = {"read": 0, "error": None}
    window = []

    def slow_reader():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        try:
            sock.settimeout(10)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (50 * 1000 * 1000))
            window.append(time.monotonic())
            end = window[0] + 5.0
            while time.monotonic() < end:
                data = sock.recv(10000)
                if not data:
                    break
                progress["read"] += len(data)
                time.sleep(0.1)  # ~100 KB/s
        except OSError as exc:
            progress["error"] = repr(exc)
        finally:
            window.append(time.monotonic())
            sock.close()
    reader = threading.Thread(target=slow_reader, daemon=True)
    reader.start()
    reader.join(20)
    wait_ok(client, 20, timeout=15, what="after the slow reader")
    client.stop()
    during = [r for r in client.records if len(window) == 2 and r.end and r.end > window[0] and r.start < window[1]]
    worst = max([r.latency for r in during] or [0.0])
    counts = report("slow reader", client, slow_reader_read=progress["read"], slow_reader_error=progress["error"],
                    requests_during=len(during), max_latency_during="%.3fs" % worst)
    assert len(window) == 2 and progress["read"] > 0, progress
    assert_clean(client, counts)
    assert len(during) >= 10, "the keep-alive client was barely served while the slow reader read"
    assert worst < 1.0, "a request waited %.2fs behind the slow reader" % worst


@pytest.mark.slow
@pytest.mark.parametrize("threads", ["1", "4"])
def test_clients_that_never_read_a_big_body_hold_no_worker(start, threads):
    """Two clients ask for 200 MB each and stop reading: once their buffers are full, the app's
    body waits (suspended), not the worker; a fresh GET is answered at once."""
    server = start(["-w", "2", "--threads", threads])
    stuck = []
    try:
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (200 * 1000 * 1000))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # the body is under way; now never read
            stuck.append(sock)
        latencies = []
        deadline = time.monotonic() + 4.0  # long enough for both output buffers to fill
        while time.monotonic() < deadline:
            started = time.monotonic()
            with connect(server.port, timeout=10) as fresh:
                status = get_on(fresh, ResponseReader(fresh), "/pid")[0]
            latencies.append(time.monotonic() - started)
            assert status == 200
            time.sleep(0.25)
        print("\n[faults] never-reading clients, --threads %s: %d fresh GETs, worst %.3fs"
              % (threads, len(latencies), max(latencies)), flush=True)
        assert max(latencies) < 0.5, latencies
    finally:
        for sock in stuck:
            sock.close()


# ----- 8, 9: a stopped worker, a killed worker


def _busiest(server, workers):
    """The worker holding the most client connections right now (so that the fault costs something)."""
    return max(workers, key=lambda pid: len(client_ports_held_by(pid, server.port)))


def _victim_outcome(client, held):
    """Requests that never got their answer, and those of them not on the killed worker's connections.
    A request the killed worker was running when the master aborted it is answered 504: that
    counts with the lost (it was not served), never as a wrong answer."""
    lost = [r for r in client.records
            if r.outcome == "lost" or (r.outcome == "wrong" and r.status == 504 and r.port in held)]
    unexplained = [r.describe() for r in lost if r.port not in held]
    return lost, unexplained


@pytest.mark.slow
def test_sigstopped_worker_is_killed_and_replaced(start, loads):
    server = start(["-w", "4", "--timeout", "3"])
    workers = server.wait_workers(4)
    client = loads(server.port)
    wait_ok(client, 300, what="before SIGSTOP")
    victim = _busiest(server, workers)
    try:
        os.kill(victim, signal.SIGSTOP)
        stopped_at = time.monotonic()
        held = client_ports_held_by(victim, server.port)
        outstanding = [r for r in client.inflight() if r.port in held]
        gone = wait_for(lambda: process_gone(victim), 15)
        took = time.monotonic() - stopped_at
        ok_meanwhile = sum(1 for r in client.records if r.outcome == "ok" and stopped_at < r.end < stopped_at + took)
        replaced = wait_for(lambda: len(server.worker_pids()) == 4 and victim not in server.worker_pids(), 15)
        wait_ok(client, 200, what="after the replacement")
        client.stop()
        lost, unexplained = _victim_outcome(client, held)
        counts = report("sigstop worker", client, killed_after_s="%.2f" % took,
                        victim_connections=len(held), outstanding_at_stop=len(outstanding),
                        ok_while_stopped=ok_meanwhile)
        assert gone, "the stopped worker %d was never killed\n%s" % (victim, server.log()[-3000:])
        assert took <= 4.5, "the stopped worker was killed %.2fs after SIGSTOP (timeout 3s)" % took
        assert replaced, server.worker_pids()
        assert ok_meanwhile > 0, "nothing was served while one worker of four was stopped"
        timed_out = sum(1 for r in lost if r.outcome == "wrong")
        assert counts["wrong"] == timed_out and counts["refused"] == 0, client.failures()
        assert not unexplained, unexplained[:5]
        assert len(lost) <= len(held), (len(lost), len(held))
    finally:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_kill_9_one_worker(start, loads):
    server = start(["-w", "4"])
    workers = server.wait_workers(4)
    client = loads(server.port)
    wait_ok(client, 300, what="before the kill")
    victim = _busiest(server, workers)
    os.kill(victim, signal.SIGSTOP)  # freeze it first: the connections it holds are then known exactly
    held = client_ports_held_by(victim, server.port)
    outstanding = [r for r in client.inflight() if r.port in held]
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(lambda: len(server.worker_pids()) == 4 and victim not in server.worker_pids(), 15)
    wait_ok(client, 300, what="after the kill")
    client.stop()
    lost, unexplained = _victim_outcome(client, held)
    counts = report("kill -9 worker", client, victim_connections=len(held), outstanding_at_kill=len(outstanding))
    assert replaced, server.worker_pids()
    assert counts["wrong"] == 0 and counts["refused"] == 0, client.failures()
    assert not unexplained, unexplained[:5]
    assert len(lost) <= len(held), (len(lost), len(held))


# ----- 10: keep-alive connections waiting behind long app calls


@pytest.mark.slow
def test_keepalive_behind_long_requests_loses_nothing(start, loads):
    server = start(["-w", "4", "--keepalive", "2"])
    server.wait_workers(4)
    client = loads(server.port, keepalive=8, fresh=0, slow_fraction=0.01, slow_secs=(6.0, 6.0), seconds=15.0,
                   timeout=45.0)
    assert client.join(70), "load did not finish"
    client.stop()
    counts = report("keepalive + 6s", client, slow_requests=sum(1 for r in client.records if r.slow))
    assert sum(1 for r in client.records if r.slow) > 0, "no long request was made"
    assert_clean(client, counts)


# ----- the load client itself (fast)


def test_loadclient_smoke(start, loads):
    """Not slow: the load client against a plain -w 2 server for a second: everything ok."""
    server = start(["-w", "2"])
    client = loads(server.port, keepalive=2, fresh=2, slow_fraction=0.0, seconds=1.0, timeout=10.0)
    assert client.join(15), "load did not finish"
    client.stop()
    counts = report("loadclient smoke", client)
    assert counts["ok"] == counts["sent"] >= 20, counts
    assert counts["refused"] == 0, counts
