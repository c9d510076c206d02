"""``manage.py forkwsgi [forkwsgi flags] [MODULE:APP]``: serve the project with forkwsgi.

The app defaults to ``settings.WSGI_APPLICATION``. manage.py has already set
Django up in this process, so the command re-executes ``python -m forkwsgi``
instead of serving from here: the master stays free of the project's modules,
as --reload needs (workers import everything afresh on each reload).
DJANGO_SETTINGS_MODULE and the rest of the environment pass through; the
directory of manage.py is put on PYTHONPATH, as it is on sys.path here.
Django's own ``--settings`` and ``--pythonpath``, which every management
command takes, pass on the same way instead of reaching forkwsgi's flags.
"""
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


def default_app():
    """``a.b.application`` (settings.WSGI_APPLICATION) as forkwsgi's ``a.b:application``."""
    dotted = getattr(settings, "WSGI_APPLICATION", None)
    if not dotted or "." not in dotted:
        raise CommandError("settings.WSGI_APPLICATION is not set: name the app, e.g. mysite.wsgi:application")
    module, _, attr = dotted.rpartition(".")
    return "%s:%s" % (module, attr)


def split_django_options(args):
    """(--settings, --pythonpath, the other arguments): Django's options parsed as manage.py parses them.

    manage.py has applied them to this process already; the forkwsgi process
    gets them through its environment, and its own parser never sees them.
    """
    parser = CommandParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--settings")
    parser.add_argument("--pythonpath")
    try:
        options, rest = parser.parse_known_args(args)
    except CommandError as exc:  # --settings with no value: one line, as Django's commands say it
        raise SystemExit("manage.py forkwsgi: %s" % exc) from None
    return options.settings, options.pythonpath, rest


def has_app_argument(args):
    from forkwsgi.config.cmdline import build_parser
    from forkwsgi.errors import ConfigError
    try:
        return bool(vars(build_parser().parse_args(args)).get("app"))
    except ConfigError:
        return True  # a bad flag: let forkwsgi itself report it


class Command(BaseCommand):
    help = "Serve this project with forkwsgi (its own flags; `forkwsgi --help`). The app defaults to WSGI_APPLICATION."

    def run_from_argv(self, argv):
        settings_module, python_path, args = split_django_options(argv[2:])
        if not ({"-h", "--help", "-v", "--version"} & set(args)) and not has_app_argument(args):
            args.append(default_app())
        environ = dict(os.environ)
        if settings_module:
            environ["DJANGO_SETTINGS_MODULE"] = settings_module
        project_dir = os.path.dirname(os.path.abspath(argv[0]))
        paths = [os.path.abspath(python_path) if python_path else None, project_dir, environ.get("PYTHONPATH")]
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, paths))  # --pythonpath first, as in sys.path
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", "forkwsgi"] + args, environ)

    def handle(self, *args, **options):  # only reached through call_command
        raise CommandError("run it from the command line: python manage.py forkwsgi [flags]")
