"""TLS for deployments with no proxy in front (service to service, mutual TLS).

The context is built in each worker after fork (and again on USR1, which
re-reads the certificate files). Handshakes run non-blocking in the worker's
event loop, so a slow or half-open TLS client costs a file descriptor, never
the worker, and --header-timeout bounds the handshake like a request head.
"""
import ssl

from .errors import ConfigError

CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
# What "cannot go on now" looks like on a non-blocking TLS socket: like EAGAIN on a plain one.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Python's SSL_write takes a whole buffer or, after encrypting part of it, says "want write" and must
# be called again with the same bytes. Writing one record (16 KiB) at a time keeps every retry the same
# bytes, whether they come from memory or from the spill file.
TLS_WRITE = 16384


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
