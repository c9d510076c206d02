"""forkwsgi: a pre-forking, event-looped WSGI server."""
__version__ = "0.1.0"
