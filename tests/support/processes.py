"""Bounded waits and /proc views of processes: what every test that starts a process needs."""
import os
import signal
import time


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Poll ``predicate`` until true; bounded in time. Returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def process_gone(pid):
    """True once ``pid`` has exited (or is a zombie waiting for its parent)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def terminate(pid, timeout=20.0):
    """SIGTERM ``pid`` (a master a test started by USR2, outside any Server) and wait until it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    return wait_for(lambda: process_gone(pid), timeout)


def children(pid):
    """Live (non-zombie) children of ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):  # gone meanwhile
                continue
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found
