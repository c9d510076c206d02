"""Validators of setting values: each converts what a config file, an environment variable or
a flag gives (str, int, list...) to the value forkwsgi uses, or raises ValueError saying what
was expected. Hook validators carry ``arity``; refusing ones carry ``refusal``."""
import glob
import importlib
import inspect

from forkwsgi.errors import ConfigError
from forkwsgi.config.addresses import parse_address

def at_least(convert, minimum):
    """A validator converting with ``convert`` (int, float) and refusing values below ``minimum``."""
    def validate(value):
        number = convert(value)
        if number < minimum:
            raise ValueError("must be at least %s" % minimum)
        return number
    return validate


positive_int = at_least(int, 1)
non_negative_int = at_least(int, 0)
non_negative_float = at_least(float, 0)


def limit(zero_means):
    """A positive size limit, where 0 means what gunicorn makes of it (``zero_means``)."""
    def validate(value):
        number = non_negative_int(value)
        return number or zero_means
    return validate


def positive_seconds(value):
    """Seconds above zero: a delay of zero would make the decision it times on a single sample."""
    number = float(value)
    if not 0 < number < float("inf"):
        raise ValueError("must be a number of seconds above 0")
    return number


def optional_count(value):
    """A whole number from 1, or None (unset: the feature is off)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off", "none")):
        return None
    return positive_int(int(value))


def optional_seconds(value):
    """Seconds above zero, or None (unset: the feature is off); a zero or negative value is refused."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off", "none")):
        return None
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("must be a number of seconds above 0 (leave it unset for none)")
    return number


def worker_count(value):
    """A positive int, or "auto": kept as such, and counted (cpus.py) when the master starts or reloads."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("expected a whole number or 'auto'") from None
    return positive_int(number)


def boolean(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def boolean_on_by_default(value):
    """A switch that None leaves on (gunicorn's sendfile: None means "use it")."""
    return True if value is None else boolean(value)


def string_list(value):
    """A list of strings; a string is split on commas (env vars, CLI)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ValueError("expected a list of strings")


def files_or_patterns(value):
    """File paths; glob patterns (gunicorn's reload_extra_files takes them) become the files they
    match when the config loads, and again on each reload."""
    files = []
    for item in string_list(value):
        if any(char in item for char in "*?["):
            files.extend(sorted(glob.glob(item, recursive=True)))
        else:
            files.append(item)
    return files


def bind_list(value):
    """Bind addresses, each checked for form now rather than at bind time."""
    addresses = string_list(value)
    if not addresses:
        raise ValueError("needs at least one address")
    for address in addresses:
        try:
            parse_address(address)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return addresses


def optional_string(value):
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def optional_id(value):
    """A user or group: a name, or a number (int or digits), as gunicorn takes them."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("expected a name or a number")
    return str(value)


def env_list(value):
    """KEY=VALUE strings (raw_env, -e): a string is one item, never split on commas."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError("expected a list of KEY=VALUE strings")
    for item in items:
        if "=" not in item or not item.partition("=")[0]:
            raise ValueError("expected KEY=VALUE, got %r" % item)
    return list(items)


def string_dict(value):
    """{NAME: value} of strings, names upper-cased (secure_scheme_headers)."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise ValueError("expected a dict of strings")
    return {key.strip().upper(): item for key, item in value.items()}


def any_dict(value):
    if not isinstance(value, dict):
        raise ValueError("expected a dict")
    return dict(value)


def upper_list(value):
    return [item.upper() for item in string_list(value)]


def anything(value):
    """Ignored settings: any value is taken (and warned about when it differs from the default)."""
    return value


def proxy_protocol_mode(value):
    """None (off), 'v1', 'v2' or 'auto'; true means auto and false off, as in gunicorn."""
    if value is None or value is False:
        return None
    if value is True:
        return "auto"
    modes = {"off": None, "false": None, "0": None, "no": None, "none": None, "": None,
             "true": "auto", "1": "auto", "yes": "auto", "on": "auto", "auto": "auto", "v1": "v1", "v2": "v2"}
    text = str(value).strip().lower()
    if text not in modes:
        raise ValueError("expected off, v1, v2 or auto")
    return modes[text]


SYNC_CLASSES = ("sync", "egg:gunicorn#sync", "gunicorn.workers.sync.SyncWorker")
GTHREAD_CLASSES = ("gthread", "egg:gunicorn#gthread", "gunicorn.workers.gthread.ThreadWorker")


def worker_class(value):
    """gunicorn's sync and gthread map to forkwsgi's workers (threads from --threads); others are refused."""
    name = value if isinstance(value, str) else "%s.%s" % (getattr(value, "__module__", ""),
                                                          getattr(value, "__qualname__", value))
    name = name.strip()
    if name in SYNC_CLASSES:
        return "sync"
    if name in GTHREAD_CLASSES:
        return "gthread"
    lower = name.lower()
    if any(word in lower for word in ("uvicorn", "asgi", "hypercorn", "tornado")):
        raise ValueError("an ASGI or Tornado worker cannot serve here: forkwsgi runs WSGI apps only; "
                         "serve ASGI apps with uvicorn, hypercorn or granian")
    raise ValueError("forkwsgi has no %r worker: use worker_class = 'sync' (or 'gthread') with threads = N "
                     "for apps that wait on I/O; each worker's event loop already multiplexes connections"
                     % name)


def only_default(default, instead):
    """A gunicorn setting forkwsgi cannot honour: its default is taken silently, anything else refused."""
    def validate(value):
        if value != default and not (value in (None, "", [], {}) and default in (None, "", [], {})):
            raise ValueError(instead)
        return value
    validate.refusal = instead
    return validate


def refused_hook(instead):
    """A gunicorn hook forkwsgi never calls: defining it is refused, naming what to use."""
    def validate(value):
        if value is not None:
            raise ValueError(instead)
        return None
    validate.arity = None
    validate.refusal = instead
    return validate


def octal(value):
    if isinstance(value, int):
        return value
    return int(str(value), 8) if not str(value).startswith("0x") else int(str(value), 16)


def log_level(value):
    level = str(value).lower()
    if level not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError("expected debug, info, warning, error or critical")
    return level


def log_format(value):
    text = str(value).strip().lower()
    if text not in ("text", "json"):
        raise ValueError("expected text or json")
    return text


def reload_engine(value):
    engine = str(value).strip().lower()
    if engine not in ("auto", "inotify", "poll"):
        raise ValueError("expected auto, inotify or poll")
    return engine


def optional_address(value):
    """None, or one HOST:PORT / [IPV6]:PORT / unix:PATH address (no fd://)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("expected an address")
    try:
        kind = parse_address(value)[0]
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if kind == "fd":
        raise ValueError("expected HOST:PORT or unix:PATH")
    return value.strip()


def optional_host_port(value):
    """None, or HOST:PORT (statsd)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected HOST:PORT")
    return text


def _import_callable(path):
    """A hook named as 'module.function' (gunicorn allows strings)."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError("expected a function or 'module.function'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError("cannot import %r: %s" % (path, exc)) from None


def hook(arity, *other_arities):
    def validate(value):
        if value is None:
            return None
        if isinstance(value, str):
            value = _import_callable(value)
        if not callable(value):
            raise ValueError("expected a function")
        for count in (arity,) + other_arities:
            try:
                inspect.signature(value).bind(*range(count))
                return value
            except TypeError:
                continue
            except ValueError:
                return value  # builtins without a signature: trust them
        raise ValueError("must accept %s positional argument(s)"
                         % " or ".join(str(n) for n in (arity,) + other_arities))
    validate.arity = arity
    return validate
