"""The optional compiled parts (forkwsgi/compiled.py): the head scanner (forkwsgi/http/_speedups.c),
the non-blocking accept (forkwsgi/worker/_accept.c) and the environ builder (forkwsgi/wsgi/_environ.c).
Built where a C compiler is found, skipped with a warning where not; forkwsgi runs the same without
them, on their Python twins.
FORKWSGI_NO_EXTENSIONS=1 skips the build on purpose. Everything else is in pyproject.toml."""
import os

from setuptools import Extension, setup

extensions = []
if os.environ.get("FORKWSGI_NO_EXTENSIONS", "") in ("", "0"):
    extensions.append(Extension("forkwsgi.http._speedups", ["forkwsgi/http/_speedups.c"], optional=True))
    extensions.append(Extension("forkwsgi.worker._accept", ["forkwsgi/worker/_accept.c"], optional=True))
    extensions.append(Extension("forkwsgi.worker._loopio", ["forkwsgi/worker/_loopio.c"], optional=True))
    extensions.append(Extension("forkwsgi.wsgi._environ", ["forkwsgi/wsgi/_environ.c"], optional=True))
    extensions.append(Extension("forkwsgi.wsgi._response", ["forkwsgi/wsgi/_response.c"], optional=True))

setup(ext_modules=extensions)
