"""Bind addresses as the settings take them: ``HOST:PORT``, ``[IPV6]:PORT``, ``unix:PATH``, ``fd://N``."""
from forkwsgi.errors import ConfigError


def parse_address(text):
    """``('tcp', host, port)``, ``('unix', path)`` or ``('fd', n)`` for one bind string."""
    text = text.strip()
    if text.startswith("unix:"):
        path = text[5:]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ConfigError("bind %r: empty unix socket path" % text)
        return ("unix", path)
    if text.startswith("fd://"):
        try:
            return ("fd", int(text[5:]))
        except ValueError:
            raise ConfigError("bind %r: fd:// needs a number" % text) from None
    if text.startswith("["):
        host, sep, port = text[1:].partition("]")
        if not sep or (port and not port.startswith(":")):
            raise ConfigError("bind %r: expected [IPV6]:PORT" % text)
        port = port[1:] or "8000"
    elif ":" in text:
        host, _, port = text.rpartition(":")
    else:
        host, port = text, "8000"
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError("bind %r: bad port %r" % (text, port))
    return ("tcp", host or "0.0.0.0", int(port))
