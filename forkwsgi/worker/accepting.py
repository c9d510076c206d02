"""Taking one connection from a listener: a non-blocking socket and its peer's address.

``acceptor(listener)`` gives the function the intake calls for each connection.
It works one of two ways, with the same answers:

- the reference, always present (``acceptor(listener, None)``): the listener's
  own accept (less socket.accept()'s enum conversions), then
  ``setblocking(False)``, which is an ioctl: one more system call for every
  connection;
- ``compiled_accept`` (``_accept.c``, built by ``pip install`` where a C
  compiler is found): accept4() with SOCK_NONBLOCK, so that the socket is
  non-blocking from birth. Its address is None for a unix socket's peer.

Both raise as socket.accept() does: BlockingIOError once the queue is empty,
ConnectionAbortedError for a connection reset while it waited.
FORKWSGI_PURE_PYTHON=1 picks the reference (compiled.py).
"""
import socket

from forkwsgi.compiled import compiled

compiled_accept = compiled("forkwsgi.worker._accept", "accept")


def acceptor(listener, accept=compiled_accept):
    """A function of no arguments that accepts one connection on ``listener`` (a listening
    socket.socket): (non-blocking socket, address). Family, type and protocol are read once."""
    family, kind, proto = int(listener.family), int(listener.type), listener.proto
    if accept is None:
        raw = listener._accept

        def accept_then_unblock():
            fd, address = raw()
            sock = socket.socket(family, kind, proto, fd)
            sock.setblocking(False)
            return sock, address
        return accept_then_unblock

    listener_fd = listener.fileno()
    kind |= socket.SOCK_NONBLOCK  # the fd is non-blocking already: the socket object only records it

    def accept_nonblocking():
        fd, address = accept(listener_fd)
        return socket.socket(family, kind, proto, fd), address
    return accept_nonblocking
