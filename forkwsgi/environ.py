"""PEP 3333: the environ of a request, built from a parsed head and the connection's shared keys."""
import io
import os
from urllib.parse import unquote_to_bytes

from .logs import ErrorStream
from .wsgi import FileWrapper

_HEADER_KEYS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


def base_environ(cfg, multiprocess):
    """The keys every request of this worker shares."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.errors": ErrorStream(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": "forkwsgi",
        "SCRIPT_NAME": os.environ.get("SCRIPT_NAME", ""),
    }


def _split_host(host, default_port):
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else default_port
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, default_port


def build_environ(request, base, trusted):
    """The PEP 3333 environ for ``request``; ``base`` holds the connection's shared keys."""
    environ = base.copy()
    target = request.target
    path, _, query = target.partition("?")
    if "#" in query:
        query = query.partition("#")[0]
    if not path.startswith("/"):
        if "://" in path:  # absolute-form
            scheme, _, rest = path.partition("://")
            authority, slash, path = rest.partition("/")
            path = slash + path
            environ["HTTP_HOST"] = authority
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
    forwarded_for = forwarded_proto = None
    for name, value in request.headers:
        key = _HEADER_KEYS.get(name)
        if key is None:
            if "_" in name:
                continue  # X_Forwarded would collide with X-Forwarded: drop, never guess
            key = "HTTP_" + name.upper().replace("-", "_")
            if name == "x-forwarded-for":
                forwarded_for = value
            elif name == "x-forwarded-proto":
                forwarded_proto = value
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            environ[key] = value
    if request.chunked:
        environ["CONTENT_LENGTH"] = str(request.content_length)
    environ["wsgi.input"] = request.body if request.body is not None else io.BytesIO()
    host = environ.get("HTTP_HOST")
    if host:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = _split_host(host, environ["SERVER_PORT"])
    if (forwarded_for or forwarded_proto) and trusted.trusts(environ["REMOTE_ADDR"]):
        if forwarded_for:
            environ["REMOTE_ADDR"] = trusted.client_address(forwarded_for, environ["REMOTE_ADDR"])
            environ["REMOTE_PORT"] = "0"
        if forwarded_proto:
            proto = forwarded_proto.split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
    return environ
