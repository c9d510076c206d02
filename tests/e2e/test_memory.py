"""Memory a --preload app shares with the workers, and --max-worker-memory counting what a worker owns.

End-to-end tests run real servers on 127.0.0.1 with tests/memory_app.py: about 50 MB of small
objects built at import, and a gc.collect() on every request.
"""
import json
import os
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from forkwsgi.shared import stats
from forkwsgi.master.arbiter import preload_app
from forkwsgi.master.workers import fork_with_gc_off
from tests.support.ports import free_port
from tests.support.processes import wait_for
from tests.support.server import ROOT, Server

MEMORY_APP = "tests.memory_app:app"


def pss(pid):
    """Proportional set size of ``pid`` in bytes, from /proc/PID/smaps_rollup."""
    with open("/proc/%d/smaps_rollup" % pid, "rb") as handle:
        for line in handle:
            if line.startswith(b"Pss:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no Pss line for %d" % pid)


def collect_in_every_worker(server, pids, rounds=10):
    """Send requests (each runs gc.collect()) until every worker in ``pids`` has served ``rounds`` of them."""
    served = dict.fromkeys(pids, 0)
    for _ in range(rounds * len(pids) * 20):
        served[int(requests.get(server.url("/"), timeout=10, headers={"Connection": "close"}).text)] += 1
        if min(served.values()) >= rounds:
            return
    raise AssertionError("not every worker served %d requests: %r" % (rounds, served))


def workers_pss(args, command=None):
    """Total PSS of the 4 workers of a server started with ``args``, after each ran gc.collect()."""
    with Server(args, app=MEMORY_APP, command=command) as server:
        server.wait_ready(60)
        pids = server.wait_workers(4, 60)
        collect_in_every_worker(server, pids)
        return sum(pss(pid) for pid in pids)


@pytest.mark.slow
def test_preloaded_app_stays_shared_after_workers_collect_compared_with_gunicorn():
    pytest.importorskip("gunicorn", reason="gunicorn (the bench extra) is the baseline measured against")
    ours = workers_pss(["--preload", "-w", "4"])
    gunicorn = workers_pss(["--preload", "-w", "4"], command=[sys.executable, "-m", "gunicorn"])
    print("workers' total PSS: forkwsgi %.1f MB, gunicorn %.1f MB, ratio %.2f"
          % (ours / 1048576.0, gunicorn / 1048576.0, ours / gunicorn))
    assert ours <= 0.5 * gunicorn, (ours, gunicorn)


def scrape(port):
    text = requests.get("http://127.0.0.1:%d/metrics" % port, timeout=5).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def gauge(families, name):
    return sum(sample.value for sample in families[name].samples)


@pytest.mark.slow  # a timing scenario of several seconds: the full run keeps it
def test_max_worker_memory_counts_what_a_preloaded_worker_owns(server_factory, tmp_path):
    metrics_port = free_port()
    control = str(tmp_path / "ctl.sock")
    limit_mb = 30  # below the app's 50 MB, shared with the master
    server = server_factory(["--preload", "-w", "1", "--max-worker-memory", str(limit_mb),
                             "--metrics-bind", "127.0.0.1:%d" % metrics_port, "--control-socket", control],
                            app=MEMORY_APP)
    [pid] = server.wait_workers(1)
    session = requests.Session()
    deadline = time.monotonic() + 2.5  # past two readings of smaps_rollup (once a second), every request collecting
    while time.monotonic() < deadline:
        assert int(session.get(server.url("/"), timeout=10).text) == pid, server.log()
    assert server.worker_pids() == [pid]
    assert "past --max-worker-memory" not in server.log()

    families = scrape(metrics_port)
    rss = gauge(families, "forkwsgi_worker_resident_memory_bytes")
    uss = gauge(families, "forkwsgi_worker_unique_memory_bytes")
    assert rss > 50 << 20 > limit_mb << 20 > uss > 0, (rss, uss)
    status = json.loads(subprocess.run([sys.executable, "-m", "forkwsgi", "ctl", "--socket", control, "--json",
                                        "status"], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout)
    [worker] = status["workers"]
    assert worker["rss"] > 50 << 20 > limit_mb << 20 > worker["uss"] > 0, worker

    # the worker now leaks 40 MB of its own: it is retired, with reason memory
    assert int(session.get(server.url("/leak"), timeout=10).text) == pid
    assert wait_for(lambda: pid not in server.worker_pids() and len(server.worker_pids()) == 1, timeout=10), \
        server.log()
    assert "past --max-worker-memory" in server.log()
    restarts = scrape(metrics_port)["forkwsgi_worker_restarts"]
    assert sum(s.value for s in restarts.samples if s.labels.get("reason") == "memory") == 1


class FakeGuard(stats.MemoryGuard):
    """A MemoryGuard whose RSS and USS readings are set by the test, counting the USS readings."""

    def __init__(self, limit_mb, clock):
        super().__init__(limit_mb, clock)
        self.fake_rss = self.fake_uss = 10 << 20
        self.uss_reads = 0

    def rss(self):
        return self.fake_rss

    def uss(self):
        self.uss_reads += 1
        return self.fake_uss


def test_memory_guard_reads_smaps_rollup_at_most_once_a_second_unless_rss_growth_could_pass_the_limit():
    now = [100.0]
    guard = FakeGuard(20, lambda: now[0])
    assert guard.exceeded() == 0 and guard.uss_reads == 1
    for _ in range(100):  # many requests within a second: the cheap RSS bound answers
        now[0] += 0.005
        assert guard.exceeded() == 0
    assert guard.uss_reads == 1
    now[0] += 0.6
    guard.exceeded()
    assert guard.uss_reads == 2  # a second has passed: copy-on-write pages are counted again
    guard.fake_uss = 25 << 20  # pages copied on write: RSS the same, found at the next reading
    now[0] += 0.5
    assert guard.exceeded() == 0 and guard.uss_reads == 2
    now[0] += 0.6
    assert guard.exceeded() == 25 << 20 and guard.uss_reads == 3

    fresh = FakeGuard(20, lambda: now[0])
    fresh.exceeded()
    fresh.fake_rss += 12 << 20  # grew by more than the room left: read at once, not a second later
    fresh.fake_uss += 12 << 20
    now[0] += 0.01
    assert fresh.exceeded() == 22 << 20 and fresh.uss_reads == 2


def test_private_bytes_of_a_smaps_rollup():
    rollup = (b"55bf62601000-7fff79120000 ---p 00000000 00:00 0      [rollup]\n"
              b"Rss:              128636 kB\nPss:              122690 kB\nShared_Clean:       6160 kB\n"
              b"Private_Clean:        12 kB\nPrivate_Dirty:    122476 kB\nPrivate_Hugetlb:       0 kB\n")
    assert stats.private_bytes(rollup) == (12 + 122476) * 1024
    assert stats.process_uss(os.getpid()) > 0
    assert stats.process_uss(2 ** 22 + 1) is None  # past pid_max: no such process


def test_preload_freezes_the_app_and_fork_keeps_the_collector_state(monkeypatch):
    import gc

    class Cfg:
        wsgi_app, chdir = "tests.preload_app:app", None

    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(gc.isenabled()))
    frozen = []
    assert gc.isenabled()
    app = preload_app(Cfg)
    assert callable(app) and frozen == [False] and gc.isenabled()  # frozen with the collector off, then on again
    pid = fork_with_gc_off()
    if pid == 0:
        os._exit(0 if gc.isenabled() else 1)
    assert gc.isenabled()
    assert os.waitpid(pid, 0)[1] == 0


def test_guard_publishes_its_reading_for_the_master():
    page = stats.WorkerStats()
    try:
        assert stats.worker_uss(page, os.getpid()) > 0  # nothing published: read from /proc
        guard = FakeGuard(20, lambda: 1.0)
        guard.stats = page
        guard.fake_uss = 12345 << 10
        guard.exceeded()
        assert stats.worker_uss(page, os.getpid()) == 12345 << 10  # the very figure the limit was checked against
    finally:
        page.close()
