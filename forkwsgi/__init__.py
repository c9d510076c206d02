"""forkwsgi: a pre-forking, event-looped WSGI server."""
from forkwsgi.compiled import install_source_first

__version__ = "0.1.0"
install_source_first()  # the worker's core as source where pure Python is asked for, or its build is stale
