"""Where a worker's connections come from: its listeners and the hand-off channel.

The worker polls the listeners while it has room, and the hand-off channel
while it has a free thread. One connection is taken per wake-up, so idle
siblings share new arrivals. On a full stop, what the kernel had queued in
the backlog when the stop began is taken too (bounded by that count and by
time), then the listeners close.
"""
import errno
import socket
import time

from forkwsgi.shared.backlog import tcp_listen_queue
from forkwsgi.worker.connection import Connection
from forkwsgi.logs import log
from forkwsgi.wsgi.queuetime import arrival
from forkwsgi.shared import stats as _stats

BUSY_ACCEPT_DELAY = 0.005  # with every thread busy, seconds before a worker accepts anyway
DRAIN_SECONDS = 1.0  # without a queue length to read (unix sockets), drain the backlog this long
BURST_ROUNDS = 3  # times a burst reads the accept queue's length and takes that many
BURST_UNMEASURED = 64  # connections a round takes where the queue length cannot be read (unix sockets)
_monotonic = time.monotonic


def backlog_length(sock):
    """Connections waiting in a TCP listener's accept queue; None where Linux does not say."""
    queue = tcp_listen_queue(sock)
    return None if queue is None else queue[0]


class Intake:
    def __init__(self, worker, listeners):
        self.worker = worker
        self.listeners = list(listeners)
        self.by_fd = {}
        self.environ_by_fd = {}  # per listener: SERVER_NAME, SERVER_PORT, wsgi.url_scheme
        self.polling_listeners = False
        self.polling_handoffs = False
        self.all_busy_since = 0.0
        self.paused_until = 0.0
        self.drain_until = 0.0
        self.drain_quota = 0
        self.drained = 0

    def start(self, base, now):
        for listener in self.listeners:
            self.by_fd[listener.fileno()] = listener
            self.environ_by_fd[listener.fileno()] = _listener_environ(listener, base)
        self.refresh(now)

    # ----- what to poll

    def _wants_listeners(self, now):
        worker = self.worker
        if worker.stopping and not self.drain_until:
            return False
        if len(worker.connections) >= worker.cfg.worker_connections or now < self.paused_until \
                or not self._fd_spare():
            return False
        if worker.executor.free > 0:
            self.all_busy_since = 0.0
            return True
        # Every thread is busy: idle siblings get new connections first; past a moment this
        # worker takes them too (a health probe, a request it will hand on): its loop never goes deaf.
        if not self.all_busy_since:
            self.all_busy_since = now
        return now - self.all_busy_since >= BUSY_ACCEPT_DELAY

    def _wants_handoffs(self):
        """Siblings with a free thread take waiting connections; a retiring worker gives, never takes."""
        worker = self.worker
        return (worker.handoff_enabled and not worker.retiring and worker.executor.free > 0
                and len(worker.connections) < worker.cfg.worker_connections and self._fd_spare())

    def _fd_spare(self):
        """False while this worker is at its fd limit (its reserved fd could not be taken back):
        it then neither accepts nor takes hand-offs, and siblings with room get them."""
        handoff = self.worker.handoff
        return handoff is None or not self.worker.handoff_enabled or handoff.reserve_fd()

    def refresh(self, now):
        poller = self.worker.poller
        want = self._wants_listeners(now)
        if want != self.polling_listeners:
            for fd in self.by_fd:
                if want:
                    poller.add(fd)
                else:
                    poller.remove(fd)
            self.polling_listeners = want
        want = self._wants_handoffs()
        if self.worker.handoff_enabled:
            self.worker.handoff.say_spare(want and not self.worker.waiting)
        if want != self.polling_handoffs:
            if want:
                poller.add(self.worker.handoff.fileno())
            else:
                poller.remove(self.worker.handoff.fileno())
            self.polling_handoffs = want

    def poll_timeout(self, timeout):
        """Wake in time to accept once the busy delay has passed."""
        return min(timeout, BUSY_ACCEPT_DELAY) if self.all_busy_since and not self.polling_listeners else timeout

    # ----- taking connections

    def accept(self, listener, burst=False):
        """Take one connection, then go back to polling: idle sibling workers get the next ones.

        With ``burst`` (this turn of the loop also serves connections already here), take the
        connections queued, as room allows: they queued while this worker served a whole turn,
        and an idle sibling would have raced for them already. One a turn would let a few busy
        keep-alive clients starve every new one. The burst is bounded: what the queue holds, read
        again a few times (a crowd arriving over a few milliseconds gets in), no more: clients
        that reconnect at once would otherwise keep it going, while connections it took before
        their requests came wait for the loop."""
        if not self.polling_listeners:
            return
        for _ in range(BURST_ROUNDS if burst else 1):
            queued = backlog_length(listener.sock) if burst else 1
            if queued == 0 or not self._accept_some(listener, BURST_UNMEASURED if queued is None else queued):
                return

    def _accept_some(self, listener, most):
        """Accept up to ``most`` connections; False once the queue is empty or this worker is to take no more."""
        worker = self.worker
        for _ in range(most):
            try:
                sock, address = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                if self.drain_until and backlog_length(listener.sock) is None:
                    self.drain_quota = 0  # no queue length to read: an empty accept ends the drain
                return False
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                log.error("accept failed on %s: %s; pausing accepts for a second", listener, exc)
                self.paused_until = _monotonic() + 1.0  # no busy loop on EMFILE
                return False
            if self.drain_until:
                self.drain_quota -= 1
                self.drained += 1
            self._adopt(sock, address, listener)
            if (self.drain_until and self.drain_quota <= 0) or not self.listeners \
                    or worker.retire_requested or len(worker.connections) >= worker.cfg.worker_connections:
                return False  # (a worker that just served its --max-requests takes no more)
        return True

    def accept_waiting(self):
        """Take every connection queued on the listeners (Worker.queue_while_busy); they wait here."""
        if self.polling_listeners:
            for listener in list(self.listeners):
                self.accept(listener, burst=True)

    def accept_queued(self, events):
        """Take every queued connection of the listeners among ``events`` (a turn that has
        connections to serve too); True if there were any."""
        ready = [self.by_fd[fd] for fd, _ in events if fd in self.by_fd]
        if not ready or len(ready) == len(events):
            return False
        for listener in ready:
            self.accept(listener, burst=True)
        return True

    def _adopt(self, sock, address, listener):
        worker = self.worker
        sock.setblocking(False)
        if sock.family == socket.AF_UNIX:
            peer = ("", 0)
        else:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = address[:2]
        environ = self.environ_by_fd[listener.fileno()].copy()
        environ["REMOTE_ADDR"] = peer[0]
        environ["REMOTE_PORT"] = str(peer[1])
        proxy = worker.proxy_peers is not None and worker.proxy_peers.trusts(peer[0])
        tls = worker.ssl_context is not None
        if tls:
            environ["wsgi.url_scheme"] = "https"
            try:
                sock = worker.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:  # reset before the handshake began (a TCP health check)
                log.debug("TLS connection from %s:%s failed at once: %s", peer[0], peer[1], exc)
                sock.close()
                return
        conn = Connection(worker, sock, peer, environ, proxy, tls)
        if not tls:  # (a TLS stamp would be the handshake's)
            conn.arrived = arrival(sock)
            if conn.arrived < 0.0:  # the head came with the connection, unstamped: count from the accept
                conn.arrived = conn.started
        worker.register(conn)

    def take_handoffs(self, thread_freed=False):
        """Adopt what siblings handed over while this worker has a free thread for it. Called when
        the channel is readable or a thread has just freed (then only if a sibling handed one on
        lately): a connection handed over has waited already, and takes a freed thread before
        those that wait here (Worker._first_in_line)."""
        if thread_freed and not self.worker.handoff.sent_lately(_monotonic()):
            return
        if self._wants_handoffs():
            while self.worker.executor.free > 0 and self.take_handoff():
                pass

    def take_handoff(self):
        """Adopt one connection a sibling handed over; True if there was one."""
        worker = self.worker
        if worker.handoff is None or worker.executor.free <= 0 \
                or len(worker.connections) >= worker.cfg.worker_connections or not worker.handoff.has_room():
            return False
        received = worker.handoff.receive()
        if received is None:
            return False
        sock, message = received
        try:
            sock.setblocking(False)
            conn = Connection.from_handoff(worker, sock, message)
        except (ValueError, KeyError, OSError) as exc:
            log.error("dropped a connection handed over with a bad state: %s", exc)
            sock.close()
            return True
        log.debug("took over connection %s:%s from a sibling", *conn.peer[:2])
        if worker.stats is not None:
            worker.stats.add(_stats.HANDOFF_TAKEN)
        worker.register(conn)
        return True

    # ----- stopping

    def begin_drain(self, now):
        """A full stop: take what the backlog held at this moment, then close."""
        if not self.listeners:
            return
        queued = [backlog_length(listener.sock) for listener in self.listeners]
        self.drain_quota = sum(1 << 30 if count is None else count for count in queued)
        self.drain_until = now + DRAIN_SECONDS

    def drain_done(self, now):
        """The backlog queued at the stop is taken: by count, by an empty queue, or by time."""
        if self.drain_quota <= 0 or now >= self.worker.stop_deadline:
            return True
        queued = [backlog_length(listener.sock) for listener in self.listeners]
        if None in queued:
            return now >= self.drain_until
        return sum(queued) == 0

    def close_listeners(self):
        drained = self.drain_until
        self.drain_until = 0.0
        for fd in self.by_fd:
            self.worker.poller.remove(fd)
        self.by_fd.clear()
        self.polling_listeners = False
        for listener in self.listeners:
            listener.sock.close()
        self.listeners = []
        if drained and self.drained:
            log.info("worker %d: stopping, took %d queued connection(s)", self.worker.pid, self.drained)


def _listener_environ(listener, base):
    environ = dict(base)
    environ["wsgi.url_scheme"] = "http"
    address = listener.sock.getsockname()
    if isinstance(address, tuple):
        environ["SERVER_NAME"], environ["SERVER_PORT"] = address[0], str(address[1])
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", "0"
    return environ
