"""A free port on 127.0.0.1, for servers the tests and load tests start."""
import socket


def free_port():
    """A port nothing listens on now (the kernel's pick; the caller binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
