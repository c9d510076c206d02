"""HUP's first half: read the configuration again and move the listening sockets to its `bind`.

Both refuse rather than half-apply: a config that does not load (or a
certificate that does not) keeps the running one, and a `bind` that cannot be
bound keeps the running sockets; the workers serve on either way.
"""
import os

from forkwsgi.config.cpus import resolve_workers
from forkwsgi.config.tls import build_context
from forkwsgi.errors import ConfigError
from forkwsgi.logs import log
from forkwsgi.master.autoscale import check_max_workers
from forkwsgi.master.sockets import create_listeners
from forkwsgi.observe import otel


def checked_config(read_config):
    """The configuration ``read_config()`` returns, checked as at start; raises ConfigError."""
    cfg = read_config()
    cfg.workers = resolve_workers(cfg.workers)
    check_max_workers(cfg)
    build_context(cfg)  # a renewed certificate that does not load keeps the workers serving
    otel.check(cfg)
    return cfg


def rebind(cfg, listeners):
    """The listeners for a changed `bind`. Sockets whose address stays are reused (as after USR2), so a reload
    never refuses a connection; the others are closed. None, and ``listeners`` untouched, when one of the new
    addresses cannot be bound."""
    try:
        new = create_listeners(cfg, [os.dup(l.fileno()) for l in listeners])
    except ConfigError as exc:
        log.error("reload failed, keeping the running sockets: %s", exc)
        return None
    kept_paths = {l.path for l in new if l.path}
    for listener in listeners:
        listener.close(unlink=listener.path not in kept_paths)
    for listener in new:
        log.info("Listening at: %s", listener)
    return new
