"""PEP 3333: the environ of a request, built from a parsed head and the connection's shared keys."""
import io
import os
from typing import Final
from urllib.parse import unquote_to_bytes

from forkwsgi.compiled import compiled
from forkwsgi.http.head import Request
from forkwsgi.logs import ErrorStream
from forkwsgi.wsgi.response import FileWrapper, ReadingFileWrapper

# Lower-case header name -> its environ key, or None for a name with "_" (dropped:
# X_Forwarded would collide with X-Forwarded, so never guess). Filled as names
# come, up to a bound: heads repeat the same few names.
_HEADER_KEYS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
_HEADER_KEYS_MAX = 1024
_UNSEEN = object()
fast_environ: Final = compiled("forkwsgi.wsgi._environ", "fast_environ")  # _environ.c, where it was built
# An equal dict whose copies take a request's keys without growing their table (base_environ); a plain
# copy where nothing is compiled.
roomy: Final = compiled("forkwsgi.wsgi._environ", "roomy") or dict


def _has_any(environ, keys):
    """Whether ``environ`` holds any of ``keys`` (the reference of _environ.has_any)."""
    return not environ.keys().isdisjoint(keys)


has_any: Final = compiled("forkwsgi.wsgi._environ", "has_any") or _has_any
_BytesIO: Final = io.BytesIO  # (io has a module __getattr__: io.BytesIO is a slow, unspecialized lookup)


def _header_key(name):
    key = None if "_" in name else "HTTP_" + name.upper().replace("-", "_")
    if len(_HEADER_KEYS) < _HEADER_KEYS_MAX and len(name) <= 64:
        _HEADER_KEYS[name] = key
    return key


def base_environ(cfg, multiprocess):
    """The keys every request of this worker shares. Every environ descends from this dict by
    copies (a listener's keys, a connection's, then the request's), and a dict's copy keeps the
    table of what it copies: made roomy here, no environ grows its table for a request's keys."""
    return roomy({
        "wsgi.version": (1, 0),
        "wsgi.errors": ErrorStream(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper if getattr(cfg, "sendfile", True) else ReadingFileWrapper,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": "forkwsgi",
        "SCRIPT_NAME": os.environ.get("SCRIPT_NAME", ""),
    })


def _split_host(host, default_port):
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else default_port
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, default_port


def build_environ(request: Request, base: dict, trusted, fast=fast_environ) -> dict:
    """The PEP 3333 environ for ``request``; ``base`` holds the connection's shared keys.

    The head's keys come from the compiled builder (``fast``) when it was built and is not in
    doubt about this head, else from ``_head_environ``, the reference; the rest is the same."""
    environ = None if fast is None else fast(base, request.method, request.target, request.version,
                                             request.headers)
    forwarded_fields = None
    if environ is None:
        environ, forwarded_fields = _head_environ(request, base, trusted)
    if request.chunked:
        environ["CONTENT_LENGTH"] = str(request.content_length)
    environ["wsgi.input"] = request.body if request.body is not None else _BytesIO()
    if forwarded_fields or has_any(environ, trusted.forwarding_keys):
        _apply_forwarding(environ, trusted, forwarded_fields)
    return environ


def _apply_forwarding(environ, trusted, forwarded_fields):
    """What a trusted proxy says of the client: its address (X-Forwarded-For), the scheme
    (secure_scheme_headers) and the fields named in forwarder_headers."""
    # Repeated fields are one list (RFC 9110 5.3): the hops of every X-Forwarded-For line, in order.
    forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
    scheme = trusted.scheme(environ)  # secure_scheme_headers; None when none is present
    if (forwarded_for or scheme or forwarded_fields) and trusted.trusts(environ["REMOTE_ADDR"]):
        if forwarded_for:
            environ["REMOTE_ADDR"] = trusted.client_address(forwarded_for, environ["REMOTE_ADDR"])
            environ["REMOTE_PORT"] = "0"
        if scheme:
            environ["wsgi.url_scheme"] = scheme
        if forwarded_fields:
            trusted.apply_forwarder_headers(environ, forwarded_fields)


def _head_environ(request, base, trusted):
    """The keys the head gives (request line, headers, Host), and the fields only a trusted proxy
    may set (names with '_'), or None."""
    environ = base.copy()
    target = request.target
    path, _, query = target.partition("?")
    if "#" in query:
        query = query.partition("#")[0]
    absolute = False
    if not path.startswith("/"):
        if "://" in path:  # absolute-form: its authority is the host (RFC 9112 3.2.2), Host is ignored
            scheme, _, rest = path.partition("://")
            authority, slash, path = rest.partition("/")
            path = slash + path
            environ["HTTP_HOST"] = authority
            absolute = True
        elif path != "*":
            path = ""  # authority-form (CONNECT)
    if "#" in path:
        path = path.partition("#")[0]
    if "%" in path:
        path = unquote_to_bytes(path).decode("latin-1")
    script_name = environ["SCRIPT_NAME"]
    if script_name and path.startswith(script_name):
        path = path[len(script_name):]
    environ["REQUEST_METHOD"] = request.method
    environ["RAW_URI"] = target
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = query
    environ["SERVER_PROTOCOL"] = request.version
    repeats = None  # key -> values of a header sent more than once, joined once at the end (linear)
    forwarded_fields = None  # names with '_' that only a trusted proxy may set (forwarder_headers)
    get = _HEADER_KEYS.get
    for name, value in request.headers:
        key = get(name, _UNSEEN)
        if key is _UNSEEN:
            key = _header_key(name)
        if key is None:
            if name in trusted.forwarder_names:
                if forwarded_fields is None:
                    forwarded_fields = []
                forwarded_fields.append((name, value))
            continue
        if key in environ:
            if absolute and key == "HTTP_HOST":
                continue
            if repeats is None:
                repeats = {}
            values = repeats.get(key)
            if values is None:
                repeats[key] = values = [environ[key]]
            values.append(value)
        else:
            environ[key] = value
    if repeats:
        for key, values in repeats.items():
            environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(values)
    host = environ.get("HTTP_HOST")
    if host:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = _split_host(host, environ["SERVER_PORT"])
    return environ, forwarded_fields
