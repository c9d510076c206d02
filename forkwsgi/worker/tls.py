"""TLS for deployments with no proxy in front (service to service, mutual TLS).

The context is built in each worker after fork (and again on USR1, which
re-reads the certificate files). Handshakes run non-blocking in the worker's
event loop, so a slow or half-open TLS client costs a file descriptor, never
the worker, and --header-timeout bounds the handshake like a request head.
"""
import ssl
import time

from forkwsgi.errors import ConfigError
from forkwsgi.http.response import error_response
from forkwsgi.logs import Throttle, log

CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
# What "cannot go on now" looks like on a non-blocking TLS socket: like EAGAIN on a plain one.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Python's SSL_write takes a whole buffer or, after encrypting part of it, says "want write" and must
# be called again with the same bytes. Writing one record (16 KiB) at a time keeps every retry the same
# bytes, whether they come from memory or from the spill file.
TLS_WRITE = 16384
# What OpenSSL says when the first bytes are a plain HTTP request (or a proxy's CONNECT), not a hello.
PLAIN_HTTP_REASONS = ("HTTP_REQUEST", "HTTPS_PROXY_REQUEST")
PLAIN_HTTP_TEXT = "400 Bad Request: this port speaks HTTPS; send the request to an https:// URL.\n"


def cert_reqs(value):
    """Settings validator: none, optional or required (or ssl.CERT_* numbers, as gunicorn takes)."""
    if isinstance(value, int) and value in CERT_REQS.values():
        return value
    text = str(value).strip().lower()
    if text.isdigit() and int(text) in CERT_REQS.values():
        return int(text)
    if text not in CERT_REQS:
        raise ValueError("expected none, optional or required")
    return CERT_REQS[text]


def build_context(cfg):
    """The server's SSLContext from the settings, passed through the ssl_context hook; None without TLS."""
    if not cfg.certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cfg.certfile, cfg.keyfile)
        if cfg.ca_certs:
            context.load_verify_locations(cfg.ca_certs)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("cannot load TLS certificate %s: %s" % (cfg.certfile, exc)) from None
    if cfg.ciphers:
        try:
            context.set_ciphers(cfg.ciphers)  # OpenSSL's cipher list syntax, as gunicorn's --ciphers
        except ssl.SSLError:
            raise ConfigError("--ciphers %r selects no cipher OpenSSL knows" % cfg.ciphers) from None
    context.verify_mode = cfg.cert_reqs
    if cfg.cert_reqs != ssl.CERT_NONE and not cfg.ca_certs:
        raise ConfigError("--cert-reqs %s needs --ca-certs to verify clients against"
                          % ("optional" if cfg.cert_reqs == ssl.CERT_OPTIONAL else "required"))
    context.set_alpn_protocols(["http/1.1"])
    if cfg.ssl_context is not None:
        context = cfg.ssl_context(cfg, context)
    return context


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
