"""Command line: generated from the settings table."""
import argparse
import os
import sys

from . import __version__
from .appload import AppImportError, check_app_module, load_app
from .arbiter import Arbiter
from .config import build_config
from .logs import setup_error_log
from .process import daemonize
from .settings import SETTINGS, ConfigError, boolean, validate


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def build_parser():
    parser = _Parser(prog="forkwsgi", argument_default=argparse.SUPPRESS,
                     description="Serve a WSGI application with pre-forked, event-looped workers.",
                     epilog="Every setting can also be set in the config file (-c) or as FORKWSGI_<NAME>. "
                            "Precedence: command line > environment > config file > defaults.")
    parser.add_argument("app", nargs="?", metavar="MODULE:APP", help="the WSGI application, e.g. myproject.wsgi:app")
    parser.add_argument("-v", "--version", action="version", version="forkwsgi %s" % __version__)
    parser.add_argument("--check-config", action="store_true", help="validate the config and the app, then exit")
    parser.add_argument("--print-config", action="store_true", help="print the effective settings and exit")
    for setting in SETTINGS:
        if not setting.flags:
            continue
        kwargs = {"dest": setting.name, "help": setting.help}
        if setting.validate is boolean:  # --preload / --no-preload: the CLI can undo a config file
            kwargs.update(action=argparse.BooleanOptionalAction)
        elif setting.name in ("bind", "reload_extra_files"):
            kwargs.update(action="append", metavar=setting.metavar)
        else:
            kwargs.update(metavar=setting.metavar)
        parser.add_argument(*setting.flags, **kwargs)
    return parser


def parse_settings(parser, argv, origin):
    """(setting values, actions) from an argument list; values validated, unknown flags refused."""
    namespace = vars(parser.parse_args(argv))
    actions = {key: namespace.pop(key) for key in ("check_config", "print_config") if key in namespace}
    app = namespace.pop("app", None)
    if app:
        namespace["wsgi_app"] = app
    values = {name: validate(name, value, origin) for name, value in namespace.items()}
    return values, actions


def load_config(argv, environ):
    parser = build_parser()
    cli_values, actions = parse_settings(parser, argv, "command line")
    cfg = build_config(cli_values, environ, lambda args, origin: parse_settings(parser, args, origin)[0])
    return cfg, actions


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["ctl"]:  # forkwsgi ctl ...: talk to a running master's control socket
        from .ctl import main as ctl_main
        return ctl_main(argv[1:])
    try:
        cfg, actions = load_config(argv, os.environ)
    except ConfigError as exc:
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
        try:
            load_app(cfg.wsgi_app, cfg.chdir)
        except AppImportError as exc:
            print("forkwsgi: error: %s" % exc, file=sys.stderr)
            if exc.details():
                print(exc.details(), file=sys.stderr)
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
        daemonize()
    setup_error_log(cfg)
    arbiter = Arbiter(cfg, lambda: load_config(argv, os.environ)[0], argv)
    arbiter.run()
    return 0
