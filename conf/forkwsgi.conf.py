# Example forkwsgi config file: `forkwsgi -c conf/forkwsgi.conf.py`.
# Module-level names are settings (see README "Settings"); functions named after
# hooks are server hooks. Prefix helper names with _ . Command-line flags and
# FORKWSGI_* variables override what is set here.
wsgi_app = "examples.hello:app"
bind = ["127.0.0.1:8000"]          # add "unix:/run/forkwsgi/app.sock", "[::]:8000", ...
workers = "auto"                  # the container's CPU limit (cgroup quota), else the CPUs we may use
worker_connections = 1000
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 0
max_requests_jitter = 0

accesslog = "-"
errorlog = "-"
loglevel = "info"

forwarded_allow_ips = ["127.0.0.1", "::1"]


def when_ready(arbiter):
    arbiter.cfg  # the effective settings, e.g. to announce readiness elsewhere


def post_fork(arbiter, worker):
    pass  # e.g. re-seed random generators or reconnect clients opened before fork
