"""Configuration: what the server is told to do, before anything is forked.

Owns the one settings table (settings.py assembles the settings_* rows; setting.py and
validators.py define them), the command line generated from it (cmdline.py), the layered
loading of defaults, config file, environment and flags (loader.py), gunicorn's hook objects
(hookapi.py), app loading (appload.py), -w auto (cpus.py), the TLS context (tls.py) and bind
addresses (addresses.py).

May import only forkwsgi.errors, forkwsgi.logs and forkwsgi.process (and forkwsgi.http where
needed); never the master, the worker, wsgi, observe or shared.
"""
