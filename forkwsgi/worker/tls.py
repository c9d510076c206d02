"""TLS for deployments with no proxy in front (service to service, mutual TLS).

The context is built in each worker after fork (config/tls.py; again on USR1,
which re-reads the certificate files). Handshakes run non-blocking in the worker's
event loop, so a slow or half-open TLS client costs a file descriptor, never
the worker, and --header-timeout bounds the handshake like a request head.
"""
import ssl
import time

from forkwsgi.config.tls import build_context
from forkwsgi.http.response import error_response
from forkwsgi.logs import Throttle, log

# What "cannot go on now" looks like on a non-blocking TLS socket: like EAGAIN on a plain one.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Python's SSL_write takes a whole buffer or, after encrypting part of it, says "want write" and must
# be called again with the same bytes. Writing one record (16 KiB) at a time keeps every retry the same
# bytes, whether they come from memory or from the spill file.
TLS_WRITE = 16384
# What OpenSSL says when the first bytes are a plain HTTP request (or a proxy's CONNECT), not a hello.
PLAIN_HTTP_REASONS = ("HTTP_REQUEST", "HTTPS_PROXY_REQUEST")
PLAIN_HTTP_TEXT = "400 Bad Request: this port speaks HTTPS; send the request to an https:// URL.\n"


def refusal_reason(exc):
    """Why the server refused a failed handshake (no or an untrusted client certificate, plain
    HTTP, no common protocol...); None when the client just went away (reset, EOF)."""
    if not isinstance(exc, ssl.SSLError) or isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError,
                                                             ssl.SSLSyscallError)):
        return None
    if is_plain_http(exc):
        return "plain HTTP sent to the TLS port (%s)" % exc.reason
    reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
    return "%s (%s)" % (exc.reason, reason) if exc.reason and reason != exc.reason else reason


def is_plain_http(exc):
    """True when the client spoke plain HTTP to the TLS port."""
    return isinstance(exc, ssl.SSLError) and exc.reason in PLAIN_HTTP_REASONS


def plain_http_answer(date):
    """A plain-text 400 for a client that sent plain HTTP to the TLS port (nginx's 497 idea): it
    tells the person at the other end what to fix instead of a bare close."""
    return error_response(400, "Bad Request", date, text=PLAIN_HTTP_TEXT)


class RefusalLog:
    """Warns of refused TLS handshakes, at most one line a second per worker.

    A refusal is worth a warning (a client without its certificate, a health
    check speaking plain HTTP), but a scanner or a misconfigured fleet must not
    flood the log: the lines between two warnings are counted, not written.
    """

    def __init__(self, clock=time.monotonic):
        self.throttle = Throttle(clock)

    def refused(self, peer, reason):
        count = self.throttle.tick()
        if count:
            more = "; %d more refused since the last line like this" % (count - 1) if count > 1 else ""
            log.warning("refused TLS handshake from %s:%s: %s%s", peer[0], peer[1], reason, more)


class ServerContext:
    """The SSLContext new connections are wrapped in (``context`` None: plain HTTP).

    Built after fork, before privileges drop (keys are often root's), and built
    again on USR1 to pick up renewed certificate files; connections already open
    keep their session."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.context = None

    def load(self):
        self.context = build_context(self.cfg)

    def reload(self, pid):
        if self.context is None:
            return
        try:
            self.context = build_context(self.cfg)
            log.info("worker %d: reloaded the TLS certificate", pid)
        except Exception as exc:  # a bad file, or the ssl_context hook: keep serving with the old one
            log.error("worker %d: keeping the TLS certificate in use: %s", pid, exc)
