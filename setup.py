"""The optional compiled head scanner (forkwsgi/http/_speedups.c): built where a C compiler is
found, skipped with a warning where not. forkwsgi runs the same without it (forkwsgi/http/scan.py);
FORKWSGI_NO_EXTENSIONS=1 skips the build on purpose. Everything else is in pyproject.toml."""
import os

from setuptools import Extension, setup

extensions = []
if os.environ.get("FORKWSGI_NO_EXTENSIONS", "") in ("", "0"):
    extensions.append(Extension("forkwsgi.http._speedups", ["forkwsgi/http/_speedups.c"], optional=True))

setup(ext_modules=extensions)
