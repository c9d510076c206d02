"""Three forkwsgi hosts (network namespaces) behind nginx, under checked load.

Runs ``python -m loadtests.multihost`` in a subprocess (it makes and removes its own namespaces, veths and
processes, and is a subreaper for the masters a USR2 upgrade orphans). A rolling USR2 upgrade and
a rolling TERM restart with --shutdown-delay must lose no request; the kill -9 phase is reported,
not judged. Skips where namespaces cannot be made (not root, no iproute2, no nginx).
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from loadtests import multihost
from tests.support.processes import wait_for
from tests.support.server import ROOT

SCRIPT = [sys.executable, "-m", "loadtests.multihost"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def can_run():
    reason = multihost.unavailable_reason()
    if reason:
        pytest.skip(reason)


def leftovers(pid):
    """Namespaces, veths and processes that the run with this pid left behind."""
    found = []
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20).stdout
    found += [line.split()[0] for line in namespaces.splitlines()
              if line.startswith("%s%d-" % (multihost.NS_PREFIX, pid))]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=20).stdout
    found += [line.split(":")[1].strip() for line in links.splitlines()
              if line.split(":")[1].strip().startswith(("fw%dh" % pid, "fw%dn" % pid))]
    token = ("multihost-%d-" % pid).encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    if token in handle.read():
                        found.append("process %s" % entry)
            except OSError:
                pass
    return found


def test_rolling_upgrade_and_rolling_restart_lose_nothing(can_run, tmp_path):
    out = tmp_path / "multihost.json"
    proc = subprocess.Popen(SCRIPT + ["--phases", "upgrade,restart,kill", "--json", str(out),
                             "--strict-skip"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        report, _ = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the script cleans up on TERM
            proc.communicate(timeout=60)
    if proc.returncode == multihost.SKIP_STATUS:
        pytest.skip(report.strip())
    print(report)  # the table, shown with -s or on a failure
    assert proc.returncode == 0, report
    results = json.loads(out.read_text())
    assert results["problems"] == [], report
    phases = {r["phase"]: r for r in results["phases"]}
    for name in ("upgrade", "restart"):
        phase = phases[name]
        assert phase["sent"] >= 200, report
        assert phase["failed"] == 0 and phase["ok"] == phase["sent"], report
        assert phase["lb_5xx"] == 0 and phase["refused_by_nginx"] == 0, report
    assert phases["kill"]["sent"] > 0, report  # reported, not judged
    assert leftovers(proc.pid) == []


def test_interrupted_run_removes_its_namespaces_veths_and_processes(can_run, tmp_path):
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(SCRIPT + ["--phases", "restart", "--strict-skip"], cwd=ROOT,
                                stdout=log_file, stderr=subprocess.STDOUT)
    try:
        # interrupt while a host is in its --shutdown-delay and the load client runs
        assert wait_for(lambda: "TERM to master" in log_path.read_text() or proc.poll() is not None, 60), \
            log_path.read_text()
        if proc.poll() == multihost.SKIP_STATUS:
            pytest.skip(log_path.read_text().strip())
        assert leftovers(proc.pid), "the run made nothing to clean up?"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    report = log_path.read_text()
    assert proc.returncode == 130 and "interrupted" in report, report
    assert wait_for(lambda: leftovers(proc.pid) == [], 10), leftovers(proc.pid)
