"""nginx in front of a test server: a reverse proxy with upstream keep-alive, run as a subprocess.

``Nginx(upstream_port)`` writes a config into a temp dir (pid file, error log, access log and
every temp path live there, so no root paths are needed), runs nginx in the foreground on a free
port and waits until it accepts. Tests call ``require_nginx()`` first: it skips with a clear
reason when nginx is not installed.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

from .ports import free_port
from .processes import wait_for

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
{temp_paths}
    upstream backend {{
        server 127.0.0.1:{upstream};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            client_max_body_size 0;
        }}
    }}
}}
"""

# Each temp path directive exists only when its module is compiled in (nginx-light drops some),
# and nginx creates every compiled-in one at start-up: point them all into the temp dir.
TEMP_PATHS = [("client_body_temp_path", None), ("proxy_temp_path", "proxy"),
              ("fastcgi_temp_path", "fastcgi"), ("uwsgi_temp_path", "uwsgi"), ("scgi_temp_path", "scgi")]


def nginx_binary():
    """The nginx executable, or None. /usr/sbin is often missing from a non-root PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def require_nginx():
    """The nginx executable; skips the calling test when there is none."""
    binary = nginx_binary()
    if binary is None:
        import pytest  # here, not at the top: the load tests import this module without pytest
        pytest.skip("nginx is not installed (not on PATH nor in /usr/sbin); .ci/run installs nginx-light")
    return binary


def build_info(binary):
    """(version tuple, configure arguments) from ``nginx -V``."""
    out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10)
    text = out.stdout + out.stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", text)
    version = tuple(int(part) for part in match.groups()) if match else (0, 0, 0)
    return version, text


class Nginx:
    """One nginx process proxying 127.0.0.1:port to 127.0.0.1:upstream_port."""

    def __init__(self, upstream_port, binary=None):
        self.binary = binary or require_nginx()
        self.upstream_port = upstream_port
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="forkwsgi-nginx-")
        self.error_log_path = os.path.join(self.dir, "error.log")
        version, info = build_info(self.binary)
        temp_paths = []
        for directive, module in TEMP_PATHS:
            if module is None or "--without-http_%s_module" % module not in info:
                temp_paths.append("    %s %s/%s;" % (directive, self.dir, directive))
        self.config_path = os.path.join(self.dir, "nginx.conf")
        with open(self.config_path, "w") as handle:
            handle.write(CONFIG.format(dir=self.dir, temp_paths="\n".join(temp_paths),
                                       upstream=upstream_port, port=self.port))
        argv = [self.binary, "-p", self.dir, "-c", self.config_path]
        if version >= (1, 19, 5):  # -e: the start-up error log, before the config is read
            argv += ["-e", self.error_log_path]
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr)

    def wait_ready(self, timeout=10.0):
        def accepts():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited early (%s):\n%s" % (self.proc.returncode, self.logs()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        assert wait_for(accepts, timeout), "nginx never accepted:\n" + self.logs()
        return self

    def error_log(self):
        try:
            with open(self.error_log_path, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def logs(self):
        with open(self.stderr_path, "rb") as handle:
            return self.error_log() + handle.read().decode("utf-8", "replace")

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish, then exit
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._stderr.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.wait_ready()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()
