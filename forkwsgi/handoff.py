"""Moving a waiting connection to an idle sibling worker.

The master makes one SOCK_SEQPACKET socket pair before forking. A worker
sends a connection on one end: its fd travels by SCM_RIGHTS with a small
state message (peer, counters, bytes already read). Idle workers poll the
other end like a listener, and each message is received by exactly one of
them, so exactly one worker ever owns a connection. Bytes the client sends
meanwhile stay in the socket for the new owner.

The master closes hand-off (board.py) for a full stop or when no worker
will remain (WINCH), so that nothing is handed to a queue nobody will read.
"""
import socket

from .logs import log

MAX_MESSAGE = 1 << 17


class HandoffChannel:
    def __init__(self, board):
        self.board = board
        self.send_end, self.receive_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (self.send_end, self.receive_end):
            end.setblocking(False)

    @property
    def open(self):
        return self.board.handoff_open

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
