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
import array
import fcntl
import mmap
import os
import socket
import termios
import time

from forkwsgi.logs import log

MAX_MESSAGE = 1 << 17
FULL_BACKOFF = 0.05  # after the queue was found full, seconds before trying to send again
UNTAKEN_LIMIT = 4096  # bytes of hand-offs no sibling has taken yet, past which waiting ones stay put
WARN_EVERY = 10.0
SPARE_SLOTS = 4096  # bytes of the shared page where each worker says whether it has a thread to spare


class HandoffChannel:
    def __init__(self, board):
        self.board = board
        self.send_end, self.receive_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (self.send_end, self.receive_end):
            end.setblocking(False)
        self.full_until = 0.0
        self.warned_at = -WARN_EVERY
        self.spare_fd = -1
        # One byte per worker (at its pid modulo the size), set while it has a free thread and
        # nothing waiting: a busy worker hands a connection on only while some sibling says so.
        self.spare_page = mmap.mmap(-1, SPARE_SLOTS + 8)
        self.sent_at = memoryview(self.spare_page)[SPARE_SLOTS:].cast("d")  # [0]: the last send, monotonic
        self.slot = -1
        self.spare = False

    @property
    def open(self):
        return self.board.handoff_open

    def fileno(self):
        return self.receive_end.fileno()

    def reserve_fd(self):
        """In the worker: hold one fd in reserve, so a connection received at the fd limit is not lost.
        True once held; at the fd limit it cannot be, and then nothing may be received (has_room)."""
        if self.spare_fd < 0:
            try:
                self.spare_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
        return True

    def has_room(self):
        """Whether a connection can be received now: the reserved fd is there to give up for it.
        A worker at its fd limit takes no hand-off until it has one again; a sibling takes it."""
        return self.spare_fd >= 0

    def say_spare(self, spare):
        """In the worker: publish whether it has a thread to spare (a store into shared memory)."""
        if spare != self.spare:
            if self.slot < 0:
                self.slot = os.getpid() % SPARE_SLOTS
            self.spare = spare
            self.spare_page[self.slot] = 1 if spare else 0

    def forget(self, pid):
        """In the master, once worker ``pid`` is gone: its word on spare threads no longer holds."""
        self.spare_page[pid % SPARE_SLOTS] = 0

    def sibling_spare(self):
        """Whether some other worker has said it has a thread to spare. Slots may collide or go
        stale (a killed worker): then a connection waits in the channel, as before, and the
        untaken bytes (siblings_busy) stop more from following it."""
        page = self.spare_page
        found = page.find(b"\x01", 0, SPARE_SLOTS)
        if found >= 0 and found == self.slot:
            found = page.find(b"\x01", found + 1, SPARE_SLOTS)
        return found >= 0

    def sent_lately(self, now):
        """Whether some worker handed a connection on in the last second: only then is a receive
        worth trying each time a thread frees (a syscall that otherwise finds nothing)."""
        return now - self.sent_at[0] < 1.0

    def can_send(self, now):
        """False for a moment after the queue was full: every sibling is busy, and none will read it."""
        return now >= self.full_until

    def siblings_busy(self):
        """True when hand-offs already sent wait untaken: every sibling is busy. Moving more would only
        make them wait in the channel instead of here, behind the ones this worker serves first."""
        queued = array.array("i", [0])
        try:
            fcntl.ioctl(self.send_end.fileno(), termios.TIOCOUTQ, queued, True)  # SIOCOUTQ: bytes untaken
        except OSError:
            return False
        return queued[0] > UNTAKEN_LIMIT or not self.sibling_spare()

    def send(self, message, fd):
        """Give the connection ``fd`` away; True if a sibling will get it (the caller then forgets it)."""
        try:
            socket.send_fds(self.send_end, [message], [fd], socket.MSG_DONTWAIT)
            self.sent_at[0] = time.monotonic()
        except (BlockingIOError, InterruptedError):
            now = time.monotonic()
            self.full_until = now + FULL_BACKOFF
            if now - self.warned_at >= WARN_EVERY:
                self.warned_at = now
                log.warning("hand-off queue full: every sibling is busy; waiting connections stay where they are")
            return False
        except OSError as exc:
            log.error("hand-off failed: %s", exc)
            return False
        return True

    def receive(self):
        """(socket, message) of one handed-off connection, or None when there is none."""
        if not self.has_room():
            return None  # the message waits in the channel for a sibling, or for an fd here
        os.close(self.spare_fd)  # room for the fd that arrives, even at the fd limit
        self.spare_fd = -1
        try:
            message, fds, flags, _ = socket.recv_fds(self.receive_end, MAX_MESSAGE, 1)
        except (BlockingIOError, InterruptedError):
            return None
        finally:
            self.reserve_fd()  # at the fd limit it fails, and receiving stops until an fd frees
        if flags & socket.MSG_CTRUNC:
            log.error("a connection handed over by a sibling was lost: this worker is at its fd limit")
        if not fds:
            return None
        if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC) or len(fds) != 1:
            log.error("dropped a malformed hand-off message")
            for fd in fds:
                os.close(fd)
            return None
        return socket.socket(fileno=fds[0]), message
