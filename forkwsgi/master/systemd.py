"""systemd socket activation and sd_notify, without libsystemd."""
import os
import socket

SD_LISTEN_FDS_START = 3


def listen_fds(environ=os.environ, unset=True):
    """File descriptors passed by systemd socket activation (LISTEN_FDS/LISTEN_PID), if meant for us."""
    try:
        count = int(environ.get("LISTEN_FDS", "0"))
        pid = int(environ.get("LISTEN_PID", "0"))
    except ValueError:
        return []
    if unset:
        for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            environ.pop(key, None)
    if pid != os.getpid() or count <= 0:
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))


def notify(message, environ=os.environ):
    """Send a state line (READY=1, RELOADING=1, STOPPING=1, STATUS=...) to systemd, if it listens.

    Failures are swallowed: a service must not die because the notify socket vanished.
    """
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        return True
    except OSError:
        return False
