"""Command line: generated from the settings table."""
import argparse
import os
import sys

from forkwsgi import __version__
from forkwsgi.config.appload import AppImportError, check_app_module, load_app
from forkwsgi.master.arbiter import Arbiter
from forkwsgi.config.loader import audit_config_file, build_config
from forkwsgi.logs import log, setup_error_log
from forkwsgi.process import daemonize
from forkwsgi.config.settings import SETTINGS, ConfigError, boolean, boolean_on_by_default, validate


APPENDED = ("bind", "reload_extra_files", "raw_env", "dirty_apps", "raw_paste_global_conf")
ACTIONS = ("check_config", "print_config")
# Flags whose value may be left out, as in gunicorn (--proxy-protocol means auto), with the words
# they take: a bare flag followed by anything else (the app) does not swallow it.
OPTIONAL_VALUE = {"proxy_protocol": "auto"}
OPTIONAL_WORDS = {"--proxy-protocol": ("off", "false", "true", "0", "1", "no", "yes", "none", "on",
                                       "auto", "v1", "v2")}


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
    for setting in SETTINGS:
        if not setting.flags:
            continue
        kwargs = {"dest": setting.name, "help": setting.help}
        switch = setting.validate in (boolean, boolean_on_by_default)
        if switch and setting.flags[-1].startswith("--no-"):
            kwargs.update(action="store_true")  # gunicorn's --no-control-socket: the flag is the value
        elif switch:  # --preload / --no-preload: the CLI can undo a config file
            kwargs.update(action=argparse.BooleanOptionalAction)
        elif setting.name in OPTIONAL_VALUE:
            kwargs.update(nargs="?", const=OPTIONAL_VALUE[setting.name], metavar=setting.metavar)
        elif setting.name in APPENDED:
            kwargs.update(action="append", metavar=setting.metavar)
        else:
            kwargs.update(metavar=setting.metavar)
        parser.add_argument(*setting.flags, **kwargs)
    return parser


def _bare_flags_explicit(argv):
    """``--proxy-protocol`` with no mode word after it becomes ``--proxy-protocol=auto``."""
    argv = list(argv)
    for index, arg in enumerate(argv):
        words = OPTIONAL_WORDS.get(arg)
        if words is not None and (index + 1 == len(argv) or argv[index + 1].lower() not in words):
            argv[index] = "%s=%s" % (arg, OPTIONAL_VALUE[arg[2:].replace("-", "_")])
    return argv


def parse_settings(parser, argv, origin):
    """(setting values, actions) from an argument list; values validated, unknown flags refused."""
    namespace = vars(parser.parse_args(_bare_flags_explicit(argv)))
    actions = {key: namespace.pop(key) for key in ACTIONS if key in namespace}
    app = namespace.pop("app", None)
    if app:
        namespace["wsgi_app"] = app
    values = {name: validate(name, value, origin) for name, value in namespace.items()}
    return values, actions


def load_config(argv, environ):
    parser = build_parser()
    cli_values, actions = parse_settings(parser, argv, "command line")
    cfg = build_config(cli_values, environ, lambda args, origin: parse_settings(parser, args, origin)[0])
    for name in ACTIONS:  # gunicorn also takes them as settings of the config file
        actions[name] = actions.get(name) or getattr(cfg, name)
    apply_process_settings(cfg)
    return cfg, actions


def apply_process_settings(cfg):
    """raw_env and pythonpath act on this process before the app loads (and again on reload),
    so the workers forked from it inherit them."""
    for item in cfg.raw_env:
        key, _, value = item.partition("=")
        os.environ[key] = value
    if cfg.pythonpath:
        for path in reversed([item.strip() for item in cfg.pythonpath.split(",") if item.strip()]):
            path = os.path.abspath(os.path.join(cfg.chdir, path))
            if path not in sys.path:
                sys.path.insert(0, path)


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
        from forkwsgi.ctl import main as ctl_main
        return ctl_main(argv[1:])
    try:
        cfg, actions = load_config(argv, os.environ)
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
