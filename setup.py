"""The optional compiled parts (forkwsgi/compiled.py): five small C modules with Python twins (the head
scanner, the accept, the loop's socket calls, the environ builder, the response writer), and the
worker's core compiled by mypyc from its own Python source (CORE_MODULES in forkwsgi/compiled.py).
Built where a C compiler is found, skipped with a warning where not; forkwsgi runs the same without
them, as Python.
FORKWSGI_NO_EXTENSIONS=1 skips the whole build on purpose. Everything else is in pyproject.toml."""
import os
import runpy
import warnings

from setuptools import Extension, setup


def _asked(variable):
    """Whether an environment switch (FORKWSGI_NO_EXTENSIONS, FORKWSGI_NO_MYPYC) is set."""
    return os.environ.get(variable, "") not in ("", "0")


def core_extensions():
    """The worker's core (forkwsgi/compiled.py: CORE_MODULES) compiled by mypyc from its own source, where mypyc
    (a build requirement, pyproject.toml) and a C compiler are at hand; nothing, with a warning, where
    not: the same modules then run as Python. FORKWSGI_NO_MYPYC=1 skips it on purpose."""
    if _asked("FORKWSGI_NO_MYPYC"):
        return []
    names = runpy.run_path(os.path.join("forkwsgi", "compiled.py"))
    try:
        from mypyc.build import mypycify
        # Only the core's own errors count: the modules it imports are read, not judged, and packages
        # not installed yet (setproctitle, the optional OpenTelemetry) are typed as Any.
        options = ["--ignore-missing-imports", "--follow-imports=silent"]
        built = mypycify(options + [name.replace(".", "/") + ".py" for name in names["CORE_MODULES"]],
                         group_name=names["CORE_GROUP"], opt_level="3")
    except ImportError as exc:
        warnings.warn("forkwsgi: the worker's core is not compiled (%s); it runs as Python" % (exc,))
        return []
    except (Exception, SystemExit) as exc:  # mypy's errors are printed above; mypyc's own are in exc
        warnings.warn("forkwsgi: mypyc refused the worker's core (%s: %s); it runs as Python"
                      % (type(exc).__name__, exc))
        return []
    for extension in built:
        extension.optional = True  # no C compiler: the .py files run
    return built


extensions = []
if not _asked("FORKWSGI_NO_EXTENSIONS"):
    extensions.append(Extension("forkwsgi.http._speedups", ["forkwsgi/http/_speedups.c"], optional=True))
    extensions.append(Extension("forkwsgi.worker._accept", ["forkwsgi/worker/_accept.c"], optional=True))
    extensions.append(Extension("forkwsgi.worker._loopio", ["forkwsgi/worker/_loopio.c"], optional=True))
    extensions.append(Extension("forkwsgi.wsgi._environ", ["forkwsgi/wsgi/_environ.c"], optional=True))
    extensions.append(Extension("forkwsgi.wsgi._response", ["forkwsgi/wsgi/_response.c"], optional=True))
    extensions += core_extensions()

setup(ext_modules=extensions)
