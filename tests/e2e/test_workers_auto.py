"""-w auto on a real server: a worker per CPU it may use, and TTIN and HUP keep their meaning."""
import os
import signal

from forkwsgi.config import cpus
from tests.support.processes import wait_for


def expected_workers():
    return cpus.available_cpus()[0]


def test_w_auto_starts_a_worker_per_cpu_and_ttin_hup_keep_their_meaning(server_factory):
    count = expected_workers()
    server = server_factory(["-w", "auto"])
    server.wait_workers(count)
    assert server.wait_log("workers: auto = %d, from " % count)
    server.send(signal.SIGTTIN)  # one more, as with a number
    server.wait_workers(count + 1)
    old = set(server.worker_pids())
    server.send(signal.SIGHUP)  # a reload counts again, as it re-reads a number
    assert wait_for(lambda: len(server.worker_pids()) == count and not old & set(server.worker_pids()),
                    timeout=15), server.log()


def test_forkwsgi_workers_auto_from_the_environment(server_factory):
    count = expected_workers()
    server = server_factory([], env={"FORKWSGI_WORKERS": "auto"})
    server.wait_workers(count)
    assert server.wait_log("workers: auto = %d" % count)
    assert len(os.sched_getaffinity(0)) >= count
