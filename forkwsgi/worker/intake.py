"""Where a worker's connections come from: its listeners and the hand-off channel.

The worker polls the listeners while it has room, and the hand-off channel
while it has a free thread. One connection is taken per wake-up, so idle
siblings share new arrivals; a lone worker takes what queued too. On a full
stop, what the kernel had queued in the backlog when the stop began is taken
too (bounded by that count and by time), then the listeners close.
"""
import errno
import os
import socket
import time

from forkwsgi.logs import log
from forkwsgi.shared import stats as _stats
from forkwsgi.shared.backlog import listen_queue_reader
from forkwsgi.shared.board import LONE
from forkwsgi.worker.accepting import acceptor
from forkwsgi.worker.connection import ConnectionKit
from forkwsgi.worker.executor import Executor
from forkwsgi.worker.stopping import StopState
from forkwsgi.wsgi.queuetime import arrival

BUSY_ACCEPT_DELAY = 0.005  # with every thread busy, seconds before a worker accepts anyway
DRAIN_SECONDS = 1.0  # drain the backlog this long where its length cannot be read (unix sockets), or past the count
BURST_ROUNDS = 3  # times a burst reads the accept queue's length and takes that many
BURST_UNMEASURED = 64  # connections a round takes where the queue length cannot be read (unix sockets)
_monotonic = time.monotonic


class ListenerIntake:
    """What each connection from one listener is taken and set up with, found once at start-up."""

    __slots__ = ("accept", "unix", "nodelay_each", "environ", "listen_queue")
    unix: bool
    nodelay_each: bool
    environ: dict

    def __init__(self, listener, base):
        self.accept = acceptor(listener.sock)  # accepting.py: () -> (non-blocking socket, address)
        self.unix = listener.sock.family == socket.AF_UNIX
        self.nodelay_each = not _nodelay_inherited(listener.sock)  # set on each connection, one call more
        self.environ = _listener_environ(listener, base)  # SERVER_NAME, SERVER_PORT, wsgi.url_scheme
        self.listen_queue = listen_queue_reader(listener.sock)

    def backlog_length(self):
        """Connections waiting in the listener's accept queue; None where Linux does not say."""
        queue = self.listen_queue()
        return None if queue is None else queue[0]


class Intake:
    """Takes connections in: from the listeners, and from siblings through the hand-off channel.

    It is given what it decides with: the worker's connections (how many), the executor (free
    threads), the stop state, the hand-off channel (None without hand-off), the scheduler's
    waiting queue (a worker with connections waiting has no thread to spare), where a new
    connection goes (``register``), and the board's flags (whether it is a lone worker)."""

    # (typed for mypyc: each new connection reads them)
    kit: ConnectionKit
    executor: Executor
    stop: StopState
    connections: dict
    intakes: dict
    listeners: list
    worker_connections: int
    polling_listeners: bool
    polling_handoffs: bool
    all_busy_since: float
    paused_until: float
    drain_until: float
    drain_quota: int
    drained: int

    def __init__(self, listeners, poller, kit, register, connections, executor, stop, handoff, waiting,
                 worker_connections, tls, proxy_peers=None, stats=None, flags=None):
        self.listeners = list(listeners)
        self.poller = poller
        self.kit = kit  # connection.ConnectionKit
        self.register = register
        self.connections = connections
        self.executor = executor
        self.stop = stop
        self.handoff = handoff  # the hand-off channel, or None; used while stop.may_hand_off says so
        self.waiting = waiting
        self.worker_connections = worker_connections
        self.tls = tls  # tls.TLSContext: the server's SSLContext now (None: plain), reloaded on USR1
        self.proxy_peers = proxy_peers  # PROXY protocol: the peers whose header is read
        self.stats = stats
        self.flags = flags  # the board's page of server-wide flags (shared/board.py), or None
        self.base = {}
        self.by_fd = {}
        self.intakes = {}  # per listener: its ListenerIntake
        self.polling_listeners = False
        self.polling_handoffs = False
        self.all_busy_since = 0.0
        self.paused_until = 0.0
        self.drain_until = 0.0
        self.drain_quota = 0
        self.drained = 0

    def start(self, base, now):
        self.base = base
        for listener in self.listeners:
            self.by_fd[listener.fileno()] = listener
            self.intakes[listener] = ListenerIntake(listener, base)
        self.refresh(now)

    # ----- what to poll

    def _has_room(self) -> bool:
        return len(self.connections) < self.worker_connections

    def _room(self) -> bool:
        """Whether this worker may take one more connection: below its connection limit, and not at its fd limit."""
        return self._has_room() and self._fd_spare()

    def _wants_listeners(self, now: float, room: bool) -> bool:
        if self.stop.stopping and not self.drain_until:
            return False
        if not room or now < self.paused_until:
            return False
        if self.executor.free > 0:
            self.all_busy_since = 0.0
            return True
        # Every thread is busy: idle siblings get new connections first; past a moment this
        # worker takes them too (a health probe, a request it will hand on): its loop never goes deaf.
        if not self.all_busy_since:
            self.all_busy_since = now
        return now - self.all_busy_since >= BUSY_ACCEPT_DELAY

    def _wants_handoffs(self, room: bool) -> bool:
        """Siblings with a free thread take waiting connections; a worker handing over gives, never takes."""
        return self.stop.may_hand_off and not self.stop.handing_over and self.executor.free > 0 and room

    def _fd_spare(self):
        """False while this worker is at its fd limit (its reserved fd could not be taken back):
        it then neither accepts nor takes hand-offs, and siblings with room get them."""
        return not self.stop.may_hand_off or self.handoff.reserve_fd()

    def refresh(self, now: float) -> None:
        """Poll the listeners and the hand-off channel as this turn's room and threads say (once a turn)."""
        poller = self.poller
        room = self._room()
        want = self._wants_listeners(now, room)
        if want != self.polling_listeners:
            for fd in self.by_fd:
                if want:
                    poller.add(fd)
                else:
                    poller.remove(fd)
            self.polling_listeners = want
        want = self._wants_handoffs(room)
        if self.stop.may_hand_off:
            self.handoff.say_spare(want and not self.waiting)
        if want != self.polling_handoffs:
            if want:
                poller.add(self.handoff.fileno())
            else:
                poller.remove(self.handoff.fileno())
            self.polling_handoffs = want

    def poll_timeout(self, timeout):
        """Wake in time to accept once the busy delay has passed."""
        return min(timeout, BUSY_ACCEPT_DELAY) if self.all_busy_since and not self.polling_listeners else timeout

    # ----- taking connections

    def accept(self, listener, burst: bool = False) -> None:
        """Take one connection, then go back to polling: idle sibling workers get the next ones.

        With ``burst`` (this turn of the loop also serves connections already here), take the
        connections queued, as room allows: they queued while this worker served a whole turn,
        and an idle sibling would have raced for them already. One a turn would let a few busy
        keep-alive clients starve every new one. The burst is bounded: what the queue holds, read
        again a few times (a crowd arriving over a few milliseconds gets in), no more: clients
        that reconnect at once would otherwise keep it going, while connections it took before
        their requests came wait for the loop. The first is taken without asking: the listener
        was found readable (an accept that finds none says so, as cheaply as asking would)."""
        if not self.polling_listeners or not self._accept_some(listener, 1) or not burst:
            return
        facts = self.intakes[listener]
        for _ in range(BURST_ROUNDS):
            queued = facts.backlog_length()
            if queued == 0 or not self._accept_some(listener, BURST_UNMEASURED if queued is None else queued):
                return

    def accept_ready(self, listener) -> None:
        """An idle turn's accept: one connection, so that idle siblings share what comes. A lone
        worker (the master wants one) has no sibling to take what queued meanwhile: it takes that
        too (a burst), rather than a loop turn and an epoll_wait for each of many short connections."""
        self.accept(listener, burst=self.flags is not None and self.flags[LONE] == 1)

    def _accept_some(self, listener, most: int) -> bool:
        """Accept up to ``most`` connections; False once the queue is empty or this worker is to take no more."""
        facts = self.intakes[listener]
        accept = facts.accept
        for _ in range(most):
            try:
                sock, address = accept()
            except (BlockingIOError, InterruptedError):
                if self.drain_until and facts.backlog_length() is None:
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
            self._adopt(sock, address, facts)
            if (self.drain_until and self.drain_quota <= 0) or not self.listeners \
                    or self.stop.stop_after_turn or not self._has_room():
                return False  # (a worker told to stop meanwhile, by TERM or --max-requests, takes no more)
        return True

    def accept_waiting(self):
        """Take every connection queued on the listeners (Scheduler.watch_turn, with shedding); they wait here."""
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

    def _adopt(self, sock, address, facts: ListenerIntake) -> None:
        if facts.unix:
            peer = ("", 0)
        else:
            if facts.nodelay_each:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = address[:2]
        environ = facts.environ.copy()
        environ["REMOTE_ADDR"] = peer[0]
        environ["REMOTE_PORT"] = str(peer[1])
        proxy = self.proxy_peers is not None and self.proxy_peers.trusts(peer[0])
        context = self.tls.context
        if context is not None:
            environ["wsgi.url_scheme"] = "https"
            try:
                sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (OSError, ValueError) as exc:  # reset before the handshake began (a TCP health check)
                log.debug("TLS connection from %s:%s failed at once: %s", peer[0], peer[1], exc)
                sock.close()
                return
        conn = self.kit.new(sock, peer, environ, proxy, context is not None)
        if context is None:  # (a TLS stamp would be the handshake's)
            conn.arrived = arrival(sock)
            if conn.arrived < 0.0:  # the head came with the connection, unstamped: count from the accept
                conn.arrived = conn.started
        self.register(conn)

    def take_handoffs(self, thread_freed=False):
        """Adopt what siblings handed over while this worker has a free thread for it. Called when
        the channel is readable or a thread has just freed (then only if a sibling handed one on
        lately): a connection handed over has waited already, and takes a freed thread before
        those that wait here (Scheduler.first_in_line)."""
        if thread_freed and not self.handoff.sent_lately(_monotonic()):
            return
        if self._wants_handoffs(self._room()):
            while self.executor.free > 0 and self.take_handoff():
                pass

    def take_handoff(self):
        """Adopt one connection a sibling handed over; True if there was one."""
        if self.handoff is None or self.executor.free <= 0 or not self._has_room() or not self.handoff.has_room():
            return False
        received = self.handoff.receive()
        if received is None:
            return False
        sock, message = received
        try:
            sock.setblocking(False)
            conn = self.kit.from_handoff(sock, message, self.base)
        except (ValueError, KeyError, OSError) as exc:
            log.error("dropped a connection handed over with a bad state: %s", exc)
            sock.close()
            return True
        log.debug("took over connection %s:%s from a sibling", *conn.peer[:2])
        if self.stats is not None:
            self.stats.add(_stats.HANDOFF_TAKEN)
        self.register(conn)
        return True

    # ----- stopping

    def begin_drain(self, now):
        """A full stop: take what the backlog held at this moment, then close."""
        if not self.listeners:
            return
        queued = [self.intakes[listener].backlog_length() for listener in self.listeners]
        self.drain_quota = sum(1 << 30 if count is None else count for count in queued)
        self.drain_until = now + DRAIN_SECONDS

    def drain_done(self, now):
        """The backlog queued at the stop is taken: once the queue is empty, or where it cannot be
        read, by count or by time. A handshake the kernel had answered when the master stopped
        admitting completes into the queue up to a round trip later, past the count taken at the
        stop: what the queue holds is taken too, for DRAIN_SECONDS at most, rather than reset."""
        if now >= self.stop.deadline:
            return True
        queued = [self.intakes[listener].backlog_length() for listener in self.listeners]
        if None in queued:
            return self.drain_quota <= 0 or now >= self.drain_until
        return sum(queued) == 0 or (self.drain_quota <= 0 and now >= self.drain_until)

    def close_listeners(self):
        drained = self.drain_until
        self.drain_until = 0.0
        for fd in self.by_fd:
            self.poller.remove(fd)
        self.by_fd.clear()
        self.polling_listeners = False
        for listener in self.listeners:
            listener.sock.close()
        self.listeners = []
        if drained and self.drained:
            log.info("worker %d: stopping, took %d queued connection(s)", os.getpid(), self.drained)


def _nodelay_inherited(sock):
    """Set TCP_NODELAY on a TCP listener, which Linux copies to each connection it accepts (one
    system call less per connection); False where it is not a TCP socket or the option won't hold."""
    if sock.family == socket.AF_UNIX:
        return True  # (no Nagle to turn off)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    except OSError:
        return False


def _listener_environ(listener, base):
    """The keys every connection of ``listener`` starts from: a copy of ``base``, keeping its room."""
    environ = base.copy()
    environ["wsgi.url_scheme"] = "http"
    address = listener.sock.getsockname()
    if isinstance(address, tuple):
        environ["SERVER_NAME"], environ["SERVER_PORT"] = address[0], str(address[1])
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", "0"
    return environ
