"""Effective configuration: defaults < config file < environment < command line."""
import math
import os
import shlex
import types

from forkwsgi.config.hookapi import adapt_hook
from forkwsgi.errors import ConfigError
from forkwsgi.config.settings import BY_NAME, INTERNAL_ENV, SETTINGS, audit, ignored_warning, validate
from forkwsgi.config.validators import octal


class Config:
    """The effective settings, as attributes; ``sources`` says where each came from.

    Hooks are kept adapted (hookapi.py): called with forkwsgi's objects, they
    give the config file's functions the objects gunicorn documents.
    """

    def __init__(self, values, sources):
        self.__dict__.update(values)
        for setting in SETTINGS:
            if setting.is_hook:
                self.__dict__[setting.name] = adapt_hook(setting.name, values.get(setting.name), self)
        self.sources = sources

    def items(self):
        return [(setting.name, getattr(self, setting.name)) for setting in SETTINGS]

    @property
    def app_name(self):
        return self.proc_name or self.wsgi_app or "forkwsgi"

    def call_hook(self, name, *args):
        function = getattr(self, name)
        if function is not None:
            function(*args)

    def ignored_warnings(self):
        """One line for each gunicorn setting that is set here but has no effect."""
        lines = (ignored_warning(setting, getattr(self, setting.name)) for setting in SETTINGS)
        return [line for line in lines if line]

    def render(self):
        """The effective settings as a config file that ``-c`` loads back to the same values.

        ``config`` (the file is not allowed to name itself) and hooks (functions
        cannot be written back as literals) are comments.
        """
        lines = ["# forkwsgi effective configuration: load it with -c FILE"]
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            source = self.sources.get(setting.name, "default")
            if setting.is_hook:
                note = "" if value is None else "; a hook is not copied: define it in the config file"
                lines.append("# %s = %s  (%s%s)" % (setting.name, _describe_hook(value), source, note))
            elif setting.name == "config":
                lines.append("# config = %s  (%s; not a setting inside a config file)" % (_literal(value), source))
            elif setting.validate is octal:  # a mode reads as one: 0o600, not 384
                lines.append("%s = %s  # %s" % (setting.name, oct(value), source))
            else:
                lines.append("%s = %s  # %s" % (setting.name, _literal(value), source))
        return "\n".join(lines) + "\n"


def _literal(value):
    """Python source for a setting value: a literal that evaluates back to ``value``."""
    if isinstance(value, float) and not math.isfinite(value):
        return "float(%r)" % str(value)
    if isinstance(value, (list, tuple)):
        text = ", ".join(_literal(item) for item in value)
        return "[%s]" % text if isinstance(value, list) else "(%s%s)" % (text, "," if len(value) == 1 else "")
    return repr(value)


def _describe_hook(function):
    """One comment-safe line naming a hook: ``name (file:line)``."""
    if function is None:
        return "None"
    function = getattr(function, "__wrapped__", function)
    name = getattr(function, "__qualname__", None) or type(function).__name__
    code = getattr(function, "__code__", None)
    if code is not None:
        name = "%s (%s:%d)" % (name, code.co_filename, code.co_firstlineno)
    return " ".join(str(name).split())


def _execute_config_file(path):
    """(name, value) of each setting a Python config file defines, unvalidated."""
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError as exc:
        raise ConfigError("cannot read config file %s: %s" % (path, exc.strerror)) from None
    namespace = {"__file__": os.path.abspath(path), "__name__": "__config__"}
    try:
        exec(compile(source, path, "exec"), namespace)
    except Exception as exc:
        raise ConfigError("error in config file %s: %s: %s" % (path, type(exc).__name__, exc)) from None
    found = []
    for name, value in namespace.items():
        if name.startswith("_") or isinstance(value, (types.ModuleType, type)):
            continue
        if name == "config":
            raise ConfigError("%s: 'config' cannot be set inside a config file" % path)
        found.append((name, value))
    return found


def read_config_file(path):
    """Execute a Python config file and return its settings, validated."""
    values = {}
    for name, value in _execute_config_file(path):
        if name not in BY_NAME:
            raise ConfigError("%s: unknown setting %r (prefix helper names with _)" % (path, name))
        values[name] = validate(name, value, path)
    return values


def audit_config_file(path):
    """[(name, verdict, note)] for each setting of a config file (perhaps written for gunicorn):
    verdict is mapped, ignored, refused or unknown (settings.audit)."""
    return [(name,) + audit(name, value) for name, value in _execute_config_file(path)]


def read_environment(environ, parse_args):
    """Settings from gunicorn's variables (WEB_CONCURRENCY, GUNICORN_CMD_ARGS), then from
    FORKWSGI_CMD_ARGS, then from FORKWSGI_<NAME> variables: forkwsgi's own win."""
    values = {}
    if environ.get("WEB_CONCURRENCY"):
        values["workers"] = validate("workers", environ["WEB_CONCURRENCY"], "environment WEB_CONCURRENCY")
    for variable in ("GUNICORN_CMD_ARGS", "FORKWSGI_CMD_ARGS"):
        extra = environ.get(variable)
        if extra:
            values.update(parse_args(shlex.split(extra), variable))
    for key, raw in environ.items():
        if not key.startswith("FORKWSGI_") or key in INTERNAL_ENV:
            continue
        name = key[len("FORKWSGI_"):].lower()
        setting = BY_NAME.get(name)
        if setting is None or setting.is_hook:
            raise ConfigError("environment: %s is not a forkwsgi setting" % key)
        values[name] = validate(name, raw, "environment " + key)
    return values


def build_config(cli_values, environ, parse_args):
    """Merge the layers. ``parse_args(argv, origin)`` turns argument lists into setting values."""
    env_values = read_environment(environ, parse_args)
    path = cli_values.get("config") or env_values.get("config")
    file_values = read_config_file(path) if path else {}
    values = {setting.name: setting.default for setting in SETTINGS}
    sources = {}
    for origin, layer in (("config file", file_values), ("environment", env_values), ("command line", cli_values)):
        for name, value in layer.items():
            values[name] = value
            sources[name] = origin
    if values["chdir"] is None:
        values["chdir"] = os.getcwd()
    if values["spool_dir"] is None and values["tmp_upload_dir"]:
        values["spool_dir"] = values["tmp_upload_dir"]  # gunicorn's name for it
    return Config(values, sources)
