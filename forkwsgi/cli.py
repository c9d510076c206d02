"""``forkwsgi``: the command that serves an app (``forkwsgi ctl`` talks to one that runs).

The flags come from the settings table (config/cmdline.py); this module decides what the
command does with the configuration: print it, check it, or start the master.
"""
import os
import sys

from forkwsgi import __version__
from forkwsgi.compiled import describe
from forkwsgi import ctl
from forkwsgi.config.appload import AppImportError, check_app_module, load_app
from forkwsgi.config.cmdline import build_parser, load_config
from forkwsgi.config.loader import audit_config_file
from forkwsgi.errors import ConfigError
from forkwsgi.logs import log, setup_error_log
from forkwsgi.master.arbiter import Arbiter
from forkwsgi.process import daemonize


def print_audit(path):
    """--check-config on a config file: how each of its settings is answered; False if one is refused."""
    refused = False
    for name, verdict, note in audit_config_file(path):
        refused = refused or verdict in ("refused", "unknown")
        print("%-8s %s%s" % (verdict, name, ": " + note if note else ""))
    return not refused


def _audit_from_argv(argv):
    """When loading failed under --check-config: list the config file's settings anyway."""
    try:
        known = build_parser().parse_known_args(argv)[0]
    except ConfigError:
        return None
    path = getattr(known, "config", None) or os.environ.get("FORKWSGI_CONFIG")
    if not path:
        return None
    try:
        return print_audit(path)
    except ConfigError:
        return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["ctl"]:  # forkwsgi ctl ...: talk to a running master's control socket
        return ctl.main(argv[1:])
    try:
        cfg, actions = load_config(argv, os.environ, "%s (%s)" % (__version__, describe()))
    except ConfigError as exc:
        if "--check-config" in argv:
            _audit_from_argv(argv)  # every setting's answer, not only the first refused
        print("forkwsgi: error: %s" % exc, file=sys.stderr)
        return 2
    if actions.get("print_config"):
        sys.stdout.write(cfg.render())
        return 0
    if not cfg.wsgi_app:
        print("forkwsgi: error: no application given (forkwsgi [options] module:app)", file=sys.stderr)
        return 2
    if cfg.reload and cfg.preload_app:
        print("forkwsgi: error: --reload cannot be used with --preload (the master must not import the app)",
              file=sys.stderr)
        return 2
    if actions.get("check_config"):
        if cfg.config:
            print_audit(cfg.config)
        for line in cfg.ignored_warnings():
            print("forkwsgi: warning: %s" % line, file=sys.stderr)
        try:
            load_app(cfg.wsgi_app, cfg.chdir)
        except AppImportError as exc:
            exc.report(lambda text: print(text, file=sys.stderr), "forkwsgi: error: ")
            return 1
        print("forkwsgi: config OK (%s)" % cfg.wsgi_app)
        return 0
    try:
        os.chdir(cfg.chdir)
        check_app_module(cfg.wsgi_app, cfg.chdir)
    except OSError as exc:
        print("forkwsgi: error: cannot chdir to %s: %s" % (cfg.chdir, exc.strerror), file=sys.stderr)
        return 2
    except AppImportError as exc:
        print("forkwsgi: error: %s" % exc, file=sys.stderr)
        return 1
    if cfg.daemon and "FORKWSGI_FDS" not in os.environ:
        daemonize(keep_output=cfg.enable_stdio_inheritance)
    try:
        setup_error_log(cfg)
    except ConfigError as exc:
        print("forkwsgi: error: %s" % exc, file=sys.stderr)
        return 2
    for line in cfg.ignored_warnings():
        log.warning("%s", line)
    arbiter = Arbiter(cfg, lambda: load_config(argv, os.environ)[0], argv)
    arbiter.run()
    return 0
