"""The TLS settings turned into an SSLContext: checked by the master at start, built by each worker.

Certificates are often readable by root only, so each worker builds its
context after fork and before dropping privileges.
"""
import ssl

from forkwsgi.errors import ConfigError

CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


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
