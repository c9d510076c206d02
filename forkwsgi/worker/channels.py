"""The loop's side of each connection: reading, draining output, the TLS handshake, closing.

The loop calls ``readable`` and ``writable`` as the poller reports them; what
was read goes to the scheduler (scheduler.py), which parses and serves it.
Closing is gentle wherever the client may still be sending: our side is shut
and input is read and discarded for a while (LINGER), so that the client sees
our answer and a close, not a reset.
"""
import os
import socket
import ssl
import time
from typing import Final

from forkwsgi.http.errors import HTTPError
from forkwsgi.http.parser import READ_SIZE, RequestReader
from forkwsgi.http.response import error_response
from forkwsgi.logs import log
from forkwsgi.worker.connection import ClientGone, Connection, ConnectionKit
from forkwsgi.worker.poller import READ, WRITE, Poller
from forkwsgi.worker.states import (APP, CLOSE, CLOSED, CLOSING, DRAINED, HANDSHAKE, LAST_RESPONSE, LINGER,
                                    READING, SECURED, SENDING, SHUT, SUSPENDED, WAITING)
from forkwsgi.worker.tls import WOULD_BLOCK, RefusalLog, is_plain_http, plain_http_answer, refusal_reason

LINGER_SECONDS: Final = 2.0  # after closing our side, read and discard so the client sees a close, not a reset
INPUT_PAUSE: Final = 1 << 20  # unparsed input a connection may hold while it cannot be served (then: no reads)
_monotonic: Final = time.monotonic
_PAUSABLE: Final = frozenset((READING, WAITING, SENDING, CLOSING))  # states whose input the loop reads


class ConnectionEvents:
    """What Channels tells the scheduler (scheduler.Scheduler answers it). A base class, so that
    compiled, each is a native call."""

    def process(self, conn: Connection) -> None:
        """Input was read: serve the whole requests it holds."""
        raise NotImplementedError

    def responded(self, conn: Connection) -> None:
        """The last of a response has left a kept connection."""
        raise NotImplementedError

    def resume(self, conn: Connection) -> None:
        """A suspended body may go on: its client has taken enough."""
        raise NotImplementedError

    def forget(self, conn: Connection) -> None:
        """``conn`` is closing or leaving."""
        raise NotImplementedError


class Channels:
    """Given the worker's connections and poller, and the DateCache for error answers. The
    scheduler (set once both exist) is told what was read, what has drained, when a suspended
    body may go on and what closed (ConnectionEvents)."""

    connections: dict
    poller: Poller
    kit: ConnectionKit  # the connections holding output this turn
    scheduler: ConnectionEvents  # set once it exists (boot.py)

    def __init__(self, connections, poller, dates, kit):
        self.connections = connections
        self.poller = poller
        self.dates = dates
        self.kit = kit
        self.tls_refusals = RefusalLog()

    # ----- input

    def readable(self, conn: Connection) -> None:
        if conn.state is HANDSHAKE and not self._handshake(conn):
            return
        reader: RequestReader = conn.reader
        try:
            # (read_size is asked only while a body is coming: between requests it is READ_SIZE)
            data = conn.recv(READ_SIZE if reader.body is None else reader.read_size())
            if conn.tls:
                while conn.sock.pending():  # decrypted bytes epoll cannot see
                    data += conn.sock.recv(65536)
        except WOULD_BLOCK:
            return
        except OSError as exc:  # reset, or a TLS error: nobody is left to read an answer
            log.debug("client %s:%s: %s", conn.peer[0], conn.peer[1], exc)
            self.close(conn)
            return
        if conn.state is LINGER:
            if not data:
                self.close(conn)
            return
        if not data:
            self._on_eof(conn)
            return
        # Empty lines before a request extend no timer; the common case (a request's first
        # bytes on an empty buffer) needs no look at the parser's state.
        if reader.feed(data):
            if data[0] != 13 or reader.in_progress:
                conn.started = conn.last_io = _monotonic()
        elif reader.in_progress:
            conn.last_io = _monotonic()
        self.scheduler.process(conn)
        if len(reader.buf) > INPUT_PAUSE and not conn.read_paused and conn.state in _PAUSABLE:
            # A client that sends and never reads: take no more than this until it can be served.
            # (A connection in the app is its thread's, and reads its body itself.)
            conn.read_paused = True
            self.watch(conn, write=bool(conn.out.segments))

    def read_ready(self, exclude=None):
        """Read every connection between requests whose input is ready now (the hand-off watcher's
        turn while an inline app call runs: the loop cannot), all but ``exclude``."""
        connections = self.connections
        for fd, _ in self.poller.poll(0):
            conn = connections.get(fd)
            if conn is not None and conn is not exclude and conn.state is READING:
                self.readable(conn)

    def _on_eof(self, conn):
        """The client closed its side: serve the whole requests it sent first, then close."""
        conn.input_ended = True
        self.watch(conn, write=bool(conn.out))  # no more read events: the end of input stays readable
        self.scheduler.process(conn)

    def input_ended(self, conn):
        """Nothing whole is left to serve for a client that closed its side."""
        if conn.reader.in_progress:
            log.debug("client %s:%s closed the connection mid-request", *conn.peer[:2])
            try:
                conn.reader.feed_eof()
            except HTTPError as exc:  # a client that only half-closed still reads our answer
                self.refuse(conn, exc)
                return
        self.close(conn)

    def watch(self, conn: Connection, write: bool = False) -> None:
        """Poll ``conn`` for input (until its client closed, or while it is paused) and, while output
        is queued, for room."""
        reading = not (conn.input_ended or conn.read_paused or conn.state is SUSPENDED)
        self.poller.modify(conn.fd, (READ if reading else 0) | (WRITE if write else 0))

    def resume_reading(self, conn):
        """Input was paused while the connection could not move on; it can again."""
        if conn.read_paused and len(conn.reader.buf) <= INPUT_PAUSE and conn.state is not CLOSED:
            conn.read_paused = False
            if not conn.busy:
                self.watch(conn, write=bool(conn.out.segments))

    # ----- TLS

    def _handshake(self, conn):
        """Advance a TLS handshake without blocking; True once done."""
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.watch(conn)
            return False
        except ssl.SSLWantWriteError:
            self.watch(conn, write=True)
            return False
        except (OSError, ValueError) as exc:
            self._handshake_failed(conn, exc)
            return False
        conn.move(SECURED)
        self.watch(conn)
        return True

    def _handshake_failed(self, conn, exc):
        """A refused client gets its TLS alert (or, for plain HTTP, a plain 400) and a gentle close:
        a close with its bytes unread would be a reset, which can overtake the alert."""
        reason = refusal_reason(exc)
        if reason is None:  # the client went away: nobody to tell
            log.debug("TLS handshake with %s:%s failed: %s", conn.peer[0], conn.peer[1], exc)
            self.close(conn)
            return
        self.tls_refusals.refused(conn.peer, reason)
        # Over: OpenSSL wrote its alert as the handshake failed; plain bytes from here on.
        if is_plain_http(exc):
            try:
                self.dates.get()
                os.write(conn.fd, plain_http_answer(self.dates.value))  # past TLS: the client speaks none
            except OSError:
                pass
        self.linger(conn)
        if conn.state is LINGER:
            self.watch(conn)

    # ----- output

    def writable(self, conn: Connection) -> None:
        if conn.state is HANDSHAKE:
            self.readable(conn)
            return
        try:
            done = conn.flush()
        except ClientGone as exc:
            log.debug("client %s:%s went away: %s", conn.peer[0], conn.peer[1], exc)
            self.close(conn)
            return
        if conn.state is SUSPENDED:
            if conn.drained_enough():
                self.scheduler.resume(conn)
            return
        if done and conn.state is not APP:
            conn.last_io = _monotonic()  # idle from when the response has left, not from when it was queued
            self.watch(conn)
            if conn.state is CLOSING:
                self.finish(conn)
            else:
                if conn.state is SENDING:  # (a READING one had only a 100 Continue queued)
                    conn.move(DRAINED)
                self.scheduler.responded(conn)
            self.resume_reading(conn)

    def release_held(self, keep: int = 0) -> None:
        """The app responses held this turn leave now, together (Connection.send_or_hold), unless no
        more than ``keep`` connections hold any. What a socket does not take is drained by the loop
        before that connection's next request."""
        kit = self.kit
        held = kit.held
        if len(held) <= keep:
            return
        releasing = held.copy()
        held.clear()  # (the one list, which the executor watches too)
        kit.held_bytes = 0
        for conn in releasing:
            if conn.held is None:
                continue  # sent with what followed it, or closed
            try:
                conn.release()
            except ClientGone as exc:
                log.debug("client %s:%s went away: %s", conn.peer[0], conn.peer[1], exc)
                self.close(conn)
                continue
            if conn.out.segments:
                self.watch(conn, write=True)

    # ----- closing

    def refuse(self, conn, exc):
        """Answer a request we will not serve, then close gently."""
        log.info("refused request from %s:%s: %d %s: %s", conn.peer[0], conn.peer[1],
                 exc.status, exc.reason, exc.detail)
        self.answer_and_close(conn, exc.status, exc.reason)

    def answer_and_close(self, conn, status, reason, headers=""):
        self.dates.get()
        try:
            conn.send(error_response(status, reason, self.dates.value, headers=headers))
        except ClientGone:
            self.close(conn)
            return
        conn.move(LAST_RESPONSE)
        if conn.out:
            self.watch(conn, write=True)
        else:
            self.linger(conn)

    def finish(self, conn: Connection) -> None:
        """Close after the last response; if the client sent (or still sends) more, linger so it is not reset."""
        if conn.reader.buf or conn.unread_input:
            self.linger(conn)
        else:
            self.close(conn)

    def linger(self, conn: Connection) -> None:
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(conn)
            return
        conn.reader.discard()  # closes the file of a body refused mid-way now, not after the linger
        self.scheduler.forget(conn)
        conn.move(SHUT)
        conn.linger_until = _monotonic() + LINGER_SECONDS

    def close(self, conn: Connection) -> None:
        if conn.state is CLOSED or self.connections.get(conn.fd) is not conn:
            return  # closed, or handed off, already
        del self.connections[conn.fd]
        self.scheduler.forget(conn)
        self.poller.forget(conn.fd)  # closed just below: the kernel drops it from the epoll set
        suspended = conn.state is SUSPENDED  # its client stopped reading, or the worker stops
        conn.move(CLOSE)
        if suspended:
            job, conn.job = conn.job, None
            job.abandon()
        conn.close()

    def close_idle(self, conn):
        """Close a connection between requests, unless its next request has just arrived.

        What is in the socket is taken first: a request found there is served, and the
        connection it came on is not idle any more, so it stays open for the next one."""
        last_io = conn.last_io
        self.readable(conn)
        if conn.state is READING and conn.last_io == last_io and not conn.out \
                and not conn.reader.in_progress:
            self.linger(conn)

    def drop(self, conn):
        """Forget a connection whose socket another thread still owns (a request cut loose past
        --timeout): no longer polled or counted; its thread's return closes it."""
        if self.connections.get(conn.fd) is conn:
            del self.connections[conn.fd]
            self.scheduler.forget(conn)
            self.poller.remove(conn.fd)
