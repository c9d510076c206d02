"""The 500 page a --reload worker serves while its app fails to import.

Loopback clients (REMOTE_ADDR in 127.0.0.0/8 or ::1, the developer's browser)
see the error and its traceback; anyone else gets a plain 500 without details,
since a dev server is sometimes reachable from elsewhere. Production mode never
serves this page: a worker whose app fails to import exits there (BOOT_ERROR).
"""
import html
import ipaddress

PLAIN = b"Internal Server Error\n"

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Application failed to load</title>
<style>body{font-family:sans-serif;margin:2em}h1{color:#a00;font-size:1.3em}
pre{background:#f6f6f6;border:1px solid #ddd;padding:1em;overflow:auto}</style></head>
<body><h1>The application failed to load</h1>
<p>%(summary)s</p>
<pre>%(details)s</pre>
<p>forkwsgi --reload serves this page to loopback clients until a watched file changes; the server
reloads by itself once the file is fixed.</p>
</body></html>
"""


def is_loopback(address):
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False  # a unix socket peer, or nothing: it may be a proxy for anyone
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def render(error):
    summary = str(error)
    details = error.details() if hasattr(error, "details") else ""
    return (_PAGE % {"summary": html.escape(summary),
                     "details": html.escape(details or "(no traceback)")}).encode("utf-8")


def error_app(error):
    """A WSGI app answering every request with 500 and ``error`` (an AppImportError)."""
    page = render(error)

    def app(environ, start_response):
        if is_loopback(environ.get("REMOTE_ADDR")):
            body, content_type = page, "text/html; charset=utf-8"
        else:
            body, content_type = PLAIN, "text/plain; charset=utf-8"
        start_response("500 Internal Server Error", [("Content-Type", content_type),
                                                     ("Content-Length", str(len(body))),
                                                     ("Cache-Control", "no-store")])
        return [body]

    return app
