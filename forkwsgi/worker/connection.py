"""One client connection: its socket, parsing state, unsent output and clocks.

Exactly one thread owns a connection at a time: the thread running the app
for its request while it is in the app (states.APP), and otherwise whoever
holds the worker's lock (the event loop, or the hand-off watcher while the
loop is inside an inline app call). The owner alone reads, writes, moves or
closes it. Its life is the table in states.py.
"""
import json
import os
import select
import time
from functools import partial
from typing import Any, Final, List

from forkwsgi.compiled import compiled
from forkwsgi.http.errors import RequestTimeout
from forkwsgi.http.parser import RequestReader
from forkwsgi.http.proxy import parse_proxy
from forkwsgi.http.response import CONTINUE
from forkwsgi.worker.outbuf import OutputBuffer
from forkwsgi.worker.states import AFTER, BUSY, CLOSED, HANDSHAKE, READING, WAITING, next_state
from forkwsgi.worker.tls import TLS_WRITE, WOULD_BLOCK

_monotonic: Final = time.monotonic
HANDOFF_MAX_BUFFER: Final = 65536  # a connection holding more unparsed bytes than this stays where it is
HOLD_MAX: Final = 68 << 10  # an app's response up to this size is held to the turn's end (64 KiB and its head)...
HOLD_TURN_MAX: Final = 1 << 20  # ...while the turn holds no more than this in all
_HANDOFF_KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme")
# _loopio.c: recv and send on a plain socket's descriptor, never blocking, with no GIL hand-over (the
# socket's own methods are the reference, and are used wherever these were not built)
recv_nowait = compiled("forkwsgi.worker._loopio", "recv")
send_nowait = compiled("forkwsgi.worker._loopio", "send")


class ClientGone(Exception):
    """The client went away or stopped reading; the connection is dropped."""


def _closed(*args):
    raise ClientGone("the connection is closed")


# A closed connection's writers (Connection.writers): a response begun after the close (a thread's,
# past the graceful timeout) finds its client gone, as a send on the closed socket would say.
CLOSED_WRITERS = (_closed, _closed, lambda: False)


class ConnectionKit:
    """What every connection of a worker is made with: parser limits, output buffer sizes, the
    timeouts a thread waits on its client with, and the heartbeat it keeps beating meanwhile."""

    held: List["Connection"]
    held_bytes: int
    out_memory: int
    out_max: int
    threaded: bool

    def __init__(self, cfg, limits, spill_budget, beat):
        self.limits = limits
        self.out_memory = cfg.output_buffer_memory
        self.out_max = cfg.output_buffer_max
        self.spool_dir = cfg.spool_dir
        self.spill_budget = spill_budget
        self.body_timeout = cfg.body_timeout or 3600
        self.send_timeout = cfg.send_timeout or 3600
        self.beat = beat
        self.threaded = cfg.threads > 1  # app responses are sent as written, not held to the turn's end
        # Sends by descriptor only where the loop's thread makes them all: a pool thread may still be
        # writing when the loop closes a connection at the graceful timeout, and a descriptor number
        # can be reused at once; a socket object that is closed refuses instead.
        self.send_nowait = None if self.threaded else send_nowait
        # connections holding output until the loop's turn ends (Connection.send_or_hold): one list for
        # the worker's life, which the inline executor watches too
        self.held = []
        self.held_bytes = 0

    def new(self, sock, peer, base, proxy_pending, tls: bool = False) -> "Connection":
        return Connection(self, sock, peer, base, proxy_pending, tls)

    def from_handoff(self, sock, message, base):
        """The connection a sibling handed over (Connection.handoff_message), on its socket ``sock``;
        ``base`` is this worker's environ, which the carried keys update."""
        size = int.from_bytes(message[:4], "big")
        state = json.loads(message[4:4 + size])
        base = base.copy()  # (a copy keeps the room its environs grow into: environ.base_environ)
        base.update(state["environ"])
        conn = Connection(self, sock, tuple(state["peer"]), base, state["proxy"])
        conn.served = state["served"]
        conn.started = state["started"]  # CLOCK_MONOTONIC is one clock for every process
        conn.last_io = state["last_io"]
        conn.waiting_since = state.get("waiting_since", 0.0)  # its place in line travels with it
        conn.arrived = state.get("arrived", 0.0)  # and so does its queue time
        conn.reader.feed(message[4 + size:])
        return conn


class Connection:
    __slots__ = ("kit", "sock", "fd", "reader", "out", "base", "peer", "started", "last_io", "served",
                 "proxy_pending", "state", "linger_until", "waiting_since", "pending", "job",
                 "send_progress_at", "tls", "input_ended", "read_paused", "unread_input", "arrived", "held",
                 "recv", "send_some", "writers")

    # (typed for mypyc: what the loop reads of every connection on every event)
    kit: ConnectionKit
    fd: int
    reader: RequestReader
    out: OutputBuffer
    base: dict
    started: float
    last_io: float
    served: int
    state: str
    waiting_since: float
    pending: Any
    job: Any
    send_progress_at: float
    tls: bool
    input_ended: bool
    read_paused: bool
    unread_input: bool
    arrived: float
    held: Any
    writers: tuple

    def __init__(self, kit: ConnectionKit, sock, peer, base, proxy_pending, tls: bool = False) -> None:
        self.kit = kit
        self.sock = sock
        self.fd = sock.fileno()
        self.reader = RequestReader(kit.limits)
        self.out = OutputBuffer(kit.out_memory, kit.out_max, kit.spool_dir, tls, kit.spill_budget)
        self.base = base
        self.peer = peer
        self.started = self.last_io = _monotonic()
        self.served = 0
        self.proxy_pending = proxy_pending  # a PROXY protocol header is due before the first request
        self.state = HANDSHAKE if tls else READING  # states.py
        self.linger_until = 0.0  # LINGER: when to give up waiting for the client's close
        self.waiting_since = 0.0  # WAITING: when it began to wait (a sibling's wait counts too)
        self.pending = None  # WAITING: the parsed request, or None while only its raw bytes are here
        self.job = None  # APP, SUSPENDED: its request's handler.RequestRun
        self.send_progress_at = 0.0
        self.tls = tls
        self.input_ended = False  # the client shut its side: serve what it sent, then close
        self.read_paused = False  # too much unparsed input while it cannot be served: not polled for input
        self.unread_input = False  # the app left part of a streamed request body unread: close gently
        self.arrived = 0.0  # monotonic: when its first bytes reached the host, if earlier than read (queuetime.py)
        self.held = None  # output held until the loop's turn ends: its bytes, or a bytearray of pieces (send_or_hold)
        # recv(size) for the loop, and send_some(data) -> how much the socket took (plain sockets)
        plain = not tls
        self.recv = partial(recv_nowait, self.fd) if plain and recv_nowait is not None else sock.recv
        self.send_some = partial(kit.send_nowait, self.fd) if plain and kit.send_nowait is not None else sock.send
        # What an app's response is written through (handler.RequestRun): the send (held to the turn's
        # end when inline), sendfile and the room check, bound once for the connection's life instead
        # of three bound methods made for each request. close() lets them go, undoing the cycle.
        self.writers = (self.send if kit.threaded else self.send_or_hold, self.send_file, self.has_room)

    def move(self, event: str) -> str:
        """Apply ``event`` (states.py); the new state. IllegalTransition where the table has no entry."""
        try:
            self.state = state = AFTER[event][self.state]
        except KeyError:
            next_state(self.state, event)  # raises, naming the state and the event
        return state

    @property
    def busy(self) -> bool:
        """Its request is in the app, or the app's body waits for the client: not the loop's to serve."""
        return self.state in BUSY

    @property
    def open(self) -> bool:
        return self.state is not CLOSED

    # ----- output, called by the owner while a response is written

    def send(self, data, wait: bool = True) -> None:
        """Write through while the client keeps up; queue the rest for the event loop. Past the
        buffer's limits, wait for the client (bounded), unless the caller can stop instead
        (``wait`` False: it asks has_room, and leaves the rest for later)."""
        if self.held is not None:
            self.release()  # what is held leaves first
        out = self.out
        if not out.segments:
            try:
                sent = self.send_some(data) if not self.tls else self._send_tls(data)
            except WOULD_BLOCK:
                sent = 0
            except OSError as exc:
                raise ClientGone(exc.strerror) from None
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self.send_progress_at = _monotonic()
        out.append(data)
        if wait and out.full:
            self._wait_drained()

    def send_or_hold(self, data, wait: bool = True) -> None:
        """The inline loop's way to write an app's response: hold it until the turn ends.

        Sending on loopback runs the client's side of TCP in our system call, waking a client
        that sleeps: answered one by one, a turn of many requests wakes it once for each, and
        that cost a worker 12% of its CPU here. Held, the turn's responses leave together
        (Channels.release_held), and the client wakes once. Only small responses are held, on
        plain connections with nothing queued: anything else goes at once, after what is held.
        """
        held = self.held
        kit = self.kit
        size = len(data)
        if held is None:
            if self.out.segments or self.tls or size > HOLD_MAX or kit.held_bytes + size > HOLD_TURN_MAX:
                self.send(data, wait)
                return
            self.held = data
            kit.held.append(self)
        elif len(held) + size > HOLD_MAX or kit.held_bytes + size > HOLD_TURN_MAX:
            self.send(data, wait)  # (releases what is held first)
            return
        else:  # pieces (a body in parts, pipelined responses) gather in place: linear however many
            if type(held) is not bytearray:
                self.held = held = bytearray(held)
            held += data
        kit.held_bytes += size

    def release(self) -> None:
        """Send what is held now (what the socket does not take is queued, as for any send)."""
        held, self.held = self.held, None
        if held:
            self.send(held, False)

    def take_proxy_header(self, protocols) -> bool:
        """Read the PROXY protocol header due before the first request; False until it is whole.
        The client it names becomes this connection's peer."""
        found = parse_proxy(self.reader.buf, protocols)
        if found is None:
            return False
        self.proxy_pending = False
        if found[0] is not None:
            self.peer = found[0]
            self.base = base = self.base.copy()  # (keeping its room: environ.base_environ)
            base["REMOTE_ADDR"], base["REMOTE_PORT"] = found[0][0], str(found[0][1])
        return True

    def stream_input(self, request):
        """A body the app reads as it arrives (http.body.StreamedBody) reads from this connection."""
        body = request.body
        body.receive = self.receive
        if request.expect_continue:
            body.send_continue = lambda: self.send(CONTINUE)

    def receive(self):
        """Wait, bounded by --body-timeout, for more of a body the app is reading; b"" once the
        client closed. Runs in the thread that runs the app, which owns the connection then."""
        timeout = self.kit.body_timeout
        deadline = _monotonic() + timeout
        poller = None
        while True:
            try:
                data = self.sock.recv(65536)
                if self.tls:
                    while self.sock.pending():
                        data += self.sock.recv(65536)
                return data
            except WOULD_BLOCK:
                pass
            except OSError as exc:
                raise ClientGone(exc.strerror) from None
            now = _monotonic()
            if now > deadline:
                raise RequestTimeout("request body stalled for %gs" % timeout)
            self.kit.beat(now)
            if poller is None:
                poller = select.poll()
                poller.register(self.fd, select.POLLIN)
            poller.poll(250)

    def has_room(self) -> bool:
        """Whether a body may go on: the output buffer is within its limits."""
        return not self.out.full

    def drained_enough(self):
        """Whether a suspended body may go on: the client took half of what filled the buffer."""
        out = self.out
        return out.size <= out.max_size // 2 and out.memory <= out.memory_limit

    def _send_tls(self, data):
        """What the TLS socket takes now, one record at a time (see tls.TLS_WRITE)."""
        view = memoryview(data)
        sent = 0
        try:
            while sent < len(view):
                sent += self.sock.send(view[sent:sent + TLS_WRITE])
        except WOULD_BLOCK:
            pass
        return sent

    def send_file(self, in_fd, offset, count):
        """sendfile while the socket takes it; the rest of the file is queued, not copied."""
        if self.held is not None:
            self.release()
        sent = 0
        if self.tls:  # sendfile would bypass the encryption
            while sent < count:
                chunk = os.pread(in_fd, min(count - sent, 65536), offset + sent)
                if not chunk:
                    return sent
                self.send(chunk)
                sent += len(chunk)
            return sent
        if not self.out:
            while sent < count:
                try:
                    n = os.sendfile(self.fd, in_fd, offset + sent, count - sent)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    raise ClientGone(exc.strerror) from None
                if n == 0:  # the file shrank under us
                    return sent
                sent += n
        if sent < count:
            self.send_progress_at = _monotonic()
            self.out.append_file(in_fd, offset + sent, count - sent)
        return count

    def _wait_drained(self):
        """The app produces faster than the client reads and the buffer is full: wait, bounded.

        The client must take half the buffer within send_timeout each time (a
        minimum rate), or it is dropped: a slow reader never holds the app for long.
        """
        out = self.out
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        timeout = self.kit.send_timeout
        deadline = _monotonic() + timeout
        low_water = out.max_size // 2
        while out.size > low_water or out.memory > out.memory_limit:
            if poller.poll(250) and self.flush():
                return
            now = _monotonic()
            self.kit.beat(now)
            if now > deadline:
                raise ClientGone("client took too little of the response within %gs" % timeout)

    def flush(self):
        """Send queued output; True once all is sent."""
        try:
            done = self.out.flush(self.sock)
        except OSError as exc:
            raise ClientGone(exc.strerror) from None
        self.send_progress_at = _monotonic()
        return done

    # ----- hand-off to another worker process

    def first_seen(self) -> float:
        """Monotonic time its current request was first seen: its first byte read, or the
        kernel's stamp of its arrival when that is earlier (a connection that waited in the backlog)."""
        arrived = self.arrived
        return arrived if 0.0 < arrived < self.started else self.started

    def can_hand_off(self):
        """Only a connection between requests (reading, or waiting with raw bytes), holding nothing
        but raw bytes, moves: never over TLS, whose session cannot travel."""
        return ((self.state is READING or (self.state is WAITING and self.pending is None))
                and not self.tls and not self.input_ended and not self.out and self.held is None
                and self.reader.request is None and len(self.reader.buf) <= HANDOFF_MAX_BUFFER)

    def handoff_message(self):
        state = {"environ": {key: self.base[key] for key in _HANDOFF_KEYS if key in self.base},
                 "peer": list(self.peer), "served": self.served, "proxy": self.proxy_pending,
                 "started": self.started, "last_io": self.last_io, "waiting_since": self.waiting_since,
                 "arrived": self.arrived}
        header = json.dumps(state).encode()
        return len(header).to_bytes(4, "big") + header + bytes(self.reader.buf)

    def close(self) -> None:
        """Release the socket, the output buffer and a body's spool file; the state is the caller's."""
        if self.held is not None:
            try:
                self.release()  # best effort, as for anything queued: the socket is closing
            except ClientGone:
                pass
        self.writers = CLOSED_WRITERS
        self.out.close()
        self.reader.discard()  # a body cut off mid-way: its spool file closes with the connection
        try:
            self.sock.close()
        except OSError:
            pass

