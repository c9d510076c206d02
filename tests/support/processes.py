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


LISTEN = "0A"  # a TCP socket's state in /proc/net/tcp


def tcp_sockets():
    """(local port, remote port, state, inode) of every TCP socket (IPv4 and IPv6), from /proc/net."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9:
                yield (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16), fields[3],
                       fields[9])


def _listening_inodes(port):
    """Socket inodes of the TCP listeners on ``port``."""
    return {inode for local, _, state, inode in tcp_sockets() if local == port and state == LISTEN}


def listens_on(port, pid):
    """Whether ``pid`` (or, failing that, one of its children) holds a socket listening on TCP ``port``."""
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    wanted = {"socket:[%s]" % inode for inode in inodes}
    return _holds(pid, wanted) or any(_holds(child, wanted) for child in children(pid))


def _holds(pid, wanted):
    """Whether one of ``pid``'s file descriptors is one of the ``wanted`` links (socket:[inode])."""
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in wanted:
                return True
        except OSError:
            continue
    return False
