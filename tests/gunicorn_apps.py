"""The app both gunicorn and forkwsgi serve in the drop-in tests: it answers what it sees."""
import json
import os
import sys
import time

SEEN_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "REMOTE_ADDR",
             "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "HTTP_HOST", "HTTP_X_TRACE",
             "HTTP_REMOTE_USER", "CONTENT_TYPE")


def app(environ, start_response):
    """/seen: the environ keys above and the process environment variables the test names (?env=A,B);
    /print: print to stdout and stderr; /sleep?S: sleep S seconds; /status/N: answer N with a short body;
    anything else: hello."""
    path = environ["PATH_INFO"]
    if path.endswith("/seen"):
        names = [n for n in environ.get("QUERY_STRING", "").partition("env=")[2].split(",") if n]
        body = json.dumps({"environ": {k: environ.get(k) for k in SEEN_KEYS},
                           "env": {n: os.environ.get(n) for n in names},
                           "module_dir": os.path.dirname(os.path.abspath(__file__)),
                           "on_path": [p for p in sys.path if p.startswith("/tmp")][:1]},
                          sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/print":
        print("the app printed this", flush=True)
        sys.stderr.write("and wrote this to stderr\n")
        sys.stderr.flush()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "7")])
        return [b"printed"]
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or 0.5))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"slept"]
    if path.startswith("/status/"):
        code = int(path.rpartition("/")[2])
        body = b"" if code in (204, 304) else b"status %d" % code
        start_response("%d Whatever" % code, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5"), ("X-App", "yes")])
    return [b"hello"]
