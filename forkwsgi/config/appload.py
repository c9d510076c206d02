"""Import the WSGI application named as ``module:attr`` or ``module:factory(args)``."""
import ast
import importlib
import importlib.util
import os
import re
import sys
import traceback

_SPEC = re.compile(r"([A-Za-z_][\w.]*)(?::([A-Za-z_][\w.]*)(?:\((.*)\))?)?", re.S)


_IMPORT_MACHINERY = os.path.dirname(importlib.__file__) + os.sep
_THIS_FILE = os.path.abspath(__file__)


class AppImportError(Exception):
    """The application could not be loaded; the message is one line for the operator.

    ``traceback`` is the formatted traceback of the exception that caused it
    (import-machinery frames removed), or None where there is nothing more to
    say than the message (a missing module, a missing attribute). Log the
    message first, then ``details()``.
    """

    def __init__(self, message, traceback=None):
        super().__init__(message)
        self.traceback = traceback

    def details(self):
        """The traceback text for the developer ("" when there is none); no trailing newline."""
        return (self.traceback or "").rstrip("\n")

    def report(self, write, prefix=""):
        """Give the operator the message, then the traceback, through ``write`` (a log method, print)."""
        write(prefix + str(self))
        if self.details():
            write(self.details())


def _is_machinery(filename):
    """Frames of the import system and of this loader: noise in an app's traceback."""
    return (filename.startswith("<frozen importlib") or filename.startswith(_IMPORT_MACHINERY)
            or os.path.abspath(filename) == _THIS_FILE)


def _format_traceback(exc):
    """The traceback of ``exc`` and its causes, without the import machinery's frames."""
    seen = set()

    def strip(te):
        while te is not None and id(te) not in seen:
            seen.add(id(te))
            kept = [frame for frame in te.stack if not _is_machinery(frame.filename)]
            te.stack = traceback.StackSummary.from_list(kept)
            strip(te.__cause__)
            te = te.__context__

    te = traceback.TracebackException.from_exception(exc)
    strip(te)
    return "".join(te.format())


def _parse_spec(spec, chdir):
    """(module, attr, factory args) of ``spec``, with ``chdir`` first on sys.path."""
    if not spec:
        raise AppImportError("no application given: pass module:app")
    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        raise AppImportError("invalid application %r: expected module:name or module:factory()" % spec)
    if chdir and chdir not in sys.path:
        sys.path.insert(0, chdir)
    return match.groups()


def check_app_module(spec, chdir=None):
    """Fail fast, in the master, when the app's top-level module does not exist at all.

    Only looks the module up (importlib.util.find_spec): nothing is executed, so
    without --preload the app is still imported in the workers alone.
    """
    top = _parse_spec(spec, chdir)[0].split(".")[0]
    if importlib.util.find_spec(top) is None:
        raise AppImportError("cannot import %r: no module named %r" % (spec, top))


def load_app(spec, chdir=None):
    """Return the WSGI callable ``spec`` names, importing its module."""
    module_name, attr, args = _parse_spec(spec, chdir)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppImportError("cannot import %r: no module named %r" % (spec, exc.name)) from None
        raise AppImportError("cannot import %r: %s" % (spec, _describe(exc)), _format_traceback(exc)) from exc
    except Exception as exc:
        raise AppImportError("cannot import %r: %s" % (spec, _describe(exc)), _format_traceback(exc)) from exc
    target = module
    for part in (attr or "application").split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppImportError("module %r has no attribute %r" % (module_name, attr or "application")) from None
    if args is not None:
        try:
            parsed = ast.parse("f(%s)" % args, mode="eval").body
            positional = [ast.literal_eval(node) for node in parsed.args]
            keywords = {kw.arg: ast.literal_eval(kw.value) for kw in parsed.keywords}
        except (SyntaxError, ValueError):
            raise AppImportError("factory arguments in %r must be Python literals" % spec) from None
        try:
            target = target(*positional, **keywords)
        except Exception as exc:
            raise AppImportError("application factory %r failed: %s" % (spec, _describe(exc)),
                                 _format_traceback(exc)) from exc
    if not callable(target):
        raise AppImportError("%r is not callable" % spec)
    return target


def _describe(exc):
    """``Type: message (file:line)`` of the innermost frame of the app's own code: one line.

    Frames of the import machinery are skipped, so a module missing deep inside
    a framework (a typo in Django's INSTALLED_APPS) names the line that imported it.
    """
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not _is_machinery(frame.filename)]
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = " (%s:%s)" % (exc.filename, exc.lineno)
    elif frames:
        where = " (%s:%s)" % (frames[-1].filename, frames[-1].lineno)
    message = " ".join(str(exc).split())  # one line, even for a multi-line message
    return "%s: %s%s" % (type(exc).__name__, message, where)
