"""Moving a waiting connection to an idle sibling worker.

The master makes one SOCK_SEQPACKET socket pair before forking. A worker
sends a connection on one end: its fd travels by SCM_RIGHTS with a small
state message (peer, counters, bytes already read). Idle workers poll the
other end like a listener, and each message is received by exactly one of
them, so exactly one worker ever owns a connection. Bytes the client sends
meanwhile stay in the socket for the new owner.

A shared flag page says whether hand-off is open: the master closes it for
a full stop or when no worker will remain (WINCH), so that nothing is
handed to a queue that nobody will read.
"""
import mmap
import socket

from .logs import log

MAX_MESSAGE = 1 << 17


class HandoffChannel:
    def __init__(self):
        self.send_end, self.receive_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (self.send_end, self.receive_end):
            end.setblocking(False)
        self._flags = mmap.mmap(-1, 1)
        self.open = True

    @property
    def open(self):
        return self._flags[0] == 1

    @open.setter
    def open(self, value):
        self._flags[0] = 1 if value else 0

    def fileno(self):
        return self.receive_end.fileno()

    def send(self, conn):
        """Give ``conn`` away; True if a sibling will get it (the caller then forgets it)."""
        try:
            socket.send_fds(self.send_end, [conn.handoff_message()], [conn.fd], socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            log.warning("hand-off queue full: connection from %s:%s stays with this worker", *conn.peer[:2])
            return False
        except OSError as exc:
            log.error("hand-off of %s:%s failed: %s", conn.peer[0], conn.peer[1], exc)
            return False
        return True

    def receive(self):
        """(socket, message) of one handed-off connection, or None when there is none."""
        try:
            message, fds, flags, _ = socket.recv_fds(self.receive_end, MAX_MESSAGE, 1)
        except (BlockingIOError, InterruptedError):
            return None
        if not fds:
            return None
        if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC) or len(fds) != 1:
            log.error("dropped a malformed hand-off message")
            for fd in fds:
                socket.close(fd)
            return None
        return socket.socket(fileno=fds[0]), message

    def close(self):
        self.send_end.close()
        self.receive_end.close()
        self._flags.close()
