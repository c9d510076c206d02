"""The one table of settings.

Each setting is declared once, as a row (setting.py) in the settings_* module of its section:
name, validator (validators.py), default, CLI flags, env var and help. The CLI parser, the
config-file loader, FORKWSGI_* variables, ``--print-config`` and the README's settings list
are all generated from the table assembled here, in this order.
"""
from forkwsgi.errors import ConfigError
from forkwsgi.config import (settings_development, settings_gunicorn, settings_hooks, settings_limits,
                             settings_logging, settings_observability, settings_proxies, settings_server)
from forkwsgi.config.validators import octal

SETTINGS = [
    *settings_server.ROWS,
    *settings_limits.ROWS,
    *settings_proxies.ROWS,
    *settings_logging.ROWS,
    *settings_development.ROWS,
    *settings_observability.ROWS,
    *settings_gunicorn.ROWS,
    *settings_hooks.ROWS,
]

BY_NAME = {setting.name: setting for setting in SETTINGS}
# Variables forkwsgi itself sets for a re-executed master, and the two that pick the compiled head
# scanner (http/scan.py, setup.py): never settings.
INTERNAL_ENV = frozenset(("FORKWSGI_FDS", "FORKWSGI_CMD_ARGS", "FORKWSGI_PARENT_PID", "FORKWSGI_OBSERVE_FDS",
                          "FORKWSGI_PURE_PYTHON", "FORKWSGI_NO_EXTENSIONS"))  # http/scan.py, setup.py


def validate(name, value, origin):
    """Validate one setting's value; errors name the setting and where it came from."""
    setting = BY_NAME.get(name)
    if setting is None:
        raise ConfigError("%s: unknown setting %r" % (origin, name))
    try:
        return setting.validate(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError("%s: bad value %r for %s: %s" % (origin, value, name, exc)) from None


def ignored_warning(setting, value):
    """The warning line for a gunicorn setting taken without effect, or None when it has one
    (or is left at its default)."""
    verdict = setting.gunicorn or ""
    if not verdict.startswith("ignored") or value == setting.default:
        return None
    return "setting %s = %r has no effect in forkwsgi: %s" % (setting.name, value, verdict.partition(": ")[2])


def audit(name, value):
    """(verdict, note) for one name of a config file written for gunicorn: 'mapped', 'ignored'
    (no effect here; also a refused setting left at its harmless default), 'refused' (with what
    to use instead), or 'unknown'."""
    setting = BY_NAME.get(name)
    if setting is None:
        return "unknown", "not a gunicorn or forkwsgi setting"
    try:
        setting.validate(value)
    except (TypeError, ValueError) as exc:
        return "refused", str(exc)
    kind, _, note = (setting.gunicorn or "same: forkwsgi only").partition(": ")
    if kind == "refused":
        return "ignored", "its default only; other values are refused (%s)" % note
    return ("ignored" if kind == "ignored" else "mapped"), note


def render_markdown():
    """The README's settings table, generated so it cannot drift from the code."""
    rows = ["| setting | command line | environment | default | meaning | gunicorn |",
            "|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        flags = ", ".join("`%s`" % flag for flag in setting.flags) or ("config file" if setting.is_hook else
                                                                      "config file, environment")
        if setting.name == "wsgi_app":
            flags = "positional"
        env = "" if setting.is_hook else "`%s`" % setting.env
        default = "" if setting.default is None else "`%r`" % (setting.default,)
        if setting.validate is octal:  # a mode reads as one: 0o600, not 384
            default = "`0o%o`" % setting.default
        rows.append("| `%s` | %s | %s | %s | %s | %s |" % (
            setting.name, flags, env, default, setting.help.replace("|", "\\|"),
            (setting.gunicorn or "-").replace("|", "\\|")))
    return "\n".join(rows) + "\n"


def update_readme(path):
    """Rewrite the generated settings table between the README's markers."""
    start, end = "<!-- settings:start -->\n", "<!-- settings:end -->"
    with open(path) as handle:
        text = handle.read()
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as handle:
        handle.write(head + start + render_markdown() + end + tail)


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["--update-readme"]:
        update_readme(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    else:
        print(render_markdown(), end="")
