"""Import the WSGI application named as ``module:attr`` or ``module:factory(args)``."""
import ast
import importlib
import importlib.util
import re
import sys
import traceback

_SPEC = re.compile(r"([A-Za-z_][\w.]*)(?::([A-Za-z_][\w.]*)(?:\((.*)\))?)?", re.S)


class AppImportError(Exception):
    """The application could not be loaded; the message is one line for the operator."""


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
        if exc.name and module_name.startswith(exc.name):
            raise AppImportError("cannot import %r: no module named %r" % (spec, exc.name)) from None
        raise AppImportError("cannot import %r: %s" % (spec, _describe(exc))) from exc
    except Exception as exc:
        raise AppImportError("cannot import %r: %s" % (spec, _describe(exc))) from exc
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
            raise AppImportError("application factory %r failed: %s" % (spec, _describe(exc))) from exc
    if not callable(target):
        raise AppImportError("%r is not callable" % spec)
    return target


def _describe(exc):
    """``Type: message (file:line)`` of the innermost frame: one line, no traceback soup."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = " (%s:%s)" % (exc.filename, exc.lineno)
    elif frames:
        where = " (%s:%s)" % (frames[-1].filename, frames[-1].lineno)
    return "%s: %s%s" % (type(exc).__name__, exc, where)
