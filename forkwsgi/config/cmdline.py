"""The command line, generated from the settings table, and the whole configuration it leads to.

``load_config`` lives here, not in cli.py, so that ``forkwsgi ctl`` (which reads the config to
find the control socket) and the server's own command line share it without importing each other.
"""
import argparse
import os
import sys

from forkwsgi.errors import ConfigError
from forkwsgi.config.loader import build_config
from forkwsgi.config.settings import SETTINGS, validate
from forkwsgi.config.validators import boolean, boolean_on_by_default

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


class _PrintVersion(argparse.Action):
    """-v/--version: print the version line as it is and exit (argparse's own action wraps it at
    the terminal's width, and a script reading the version wants one line)."""

    def __init__(self, option_strings, version, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show the version and which parts run compiled, then exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)
        self.version = version

    def __call__(self, parser, namespace, values, option_string=None):
        parser._print_message(self.version + "\n", sys.stdout)
        parser.exit()


def build_parser(version=None):
    """The argument parser of every setting with flags; with ``version``, -v/--version prints it."""
    parser = _Parser(prog="forkwsgi", argument_default=argparse.SUPPRESS,
                     description="Serve a WSGI application with pre-forked, event-looped workers.",
                     epilog="Every setting can also be set in the config file (-c) or as FORKWSGI_<NAME>. "
                            "Precedence: command line > environment > config file > defaults.")
    parser.add_argument("app", nargs="?", metavar="MODULE:APP", help="the WSGI application, e.g. myproject.wsgi:app")
    if version is not None:
        parser.add_argument("-v", "--version", action=_PrintVersion, version="forkwsgi %s" % version)
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


def load_config(argv, environ, version=None):
    """(Config, actions) from the command line, the environment and the config file they name;
    raw_env and pythonpath are applied to this process."""
    parser = build_parser(version)
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
