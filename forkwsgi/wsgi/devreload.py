"""The worker's side of ``--reload``: load the app without ever failing, and tell the master its files.

A worker writes the list of its imported files into the master's drop box
(master/reloader.py explains the format and what the master does with it),
once the app is loaded or has failed to load, and again whenever
``sys.modules`` grows. An app that fails to import is served as a 500 page
(devpage.py) until a watched file changes.
"""
import os
import stat
import sys
import threading
import time
import traceback

from forkwsgi.config.appload import AppImportError, load_app
from forkwsgi.logs import log
from forkwsgi.wsgi.devpage import error_app

REPORT_EVERY = 1.0  # a worker's thread looks for newly imported modules this often
MISSING = ("missing",)


def file_state(path):
    """What a change is judged by: (type, mtime_ns, size, inode, permission bits), or MISSING, or an error."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        return ("error", exc.strerror or str(exc))
    return (stat.S_IFMT(st.st_mode), st.st_mtime_ns, st.st_size, st.st_ino, stat.S_IMODE(st.st_mode))


def content_of(state):
    """The part of a state whose change means a reload (permission bits alone do not)."""
    return state[:4] if len(state) == 5 else state




def module_files():
    """Absolute paths of the files of every imported module."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path:
            files.add(os.path.abspath(path))
    return files


def error_files(exc):
    """Files named in an exception chain's tracebacks (and a SyntaxError's file): the broken module among them.

    For a module not found, the paths it would have on sys.path are included (they do not exist yet).
    """
    files, seen, pending = [], set(), [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, SyntaxError) and error.filename:
            files.append(error.filename)
        if isinstance(error, ModuleNotFoundError) and error.name:  # where it would be, once created
            relative = error.name.replace(".", os.sep)
            for entry in sys.path:
                if entry and os.path.isdir(entry):
                    files += [os.path.join(entry, relative + ".py"), os.path.join(entry, relative, "__init__.py")]
        files.extend(frame.filename for frame in traceback.extract_tb(error.__traceback__))
        pending += [error.__cause__, error.__context__]
    return {os.path.abspath(name) for name in files if name and not name.startswith("<")}


class Reporter:
    """Writes this worker's imported files into the master's drop box."""

    def __init__(self, directory, extra=()):
        self.directory = directory
        self.extra = set(extra)
        self.count = -1  # len(sys.modules) at the last report
        self.seq = 0
        self.lock = threading.Lock()

    def report_if_grown(self):
        if len(sys.modules) != self.count:
            self.report()

    def report(self):
        with self.lock:
            self.count = len(sys.modules)
            self.seq += 1
            lines = []
            for path in sorted(module_files() | self.extra):
                state = file_state(path)
                if "\n" in path or "\t" in path:
                    continue
                if len(state) == 5:
                    lines.append("%d %d %d %d %d\t%s\n" % (state + (path,)))
                elif state == MISSING and path in self.extra:  # a module the app looked for: watch for it
                    lines.append("missing\t%s\n" % path)
            name = "%d.%d" % (os.getpid(), self.seq)
            temporary = os.path.join(self.directory, "." + name + ".tmp")
            try:
                with open(temporary, "w", encoding="utf-8", errors="surrogateescape") as handle:
                    handle.writelines(lines)
                os.replace(temporary, os.path.join(self.directory, name + ".files"))
            except OSError as exc:
                log.warning("reload: cannot tell the master which files to watch: %s", exc)

    def run_forever(self):
        while True:
            time.sleep(REPORT_EVERY)
            try:
                self.report_if_grown()
            except Exception:  # never let the helper thread take anything down
                log.debug("reload: report failed", exc_info=True)


def load_app_reloading(cfg, report_dir):
    """The worker's app in --reload mode: never raises for an app that fails to import.

    The failure is logged in full (summary, then traceback) and the worker serves
    it as a 500 page (details to loopback clients only) until a watched file
    changes. Either way the imported files are reported to the master.
    """
    extra = ()
    try:
        app = load_app(cfg.wsgi_app, cfg.chdir)
    except AppImportError as exc:
        exc.report(log.error)
        log.error("--reload: serving this error (details to loopback clients only) until a watched file changes")
        extra = error_files(exc)
        app = error_app(exc)
    if report_dir is None:
        return app
    reporter = Reporter(report_dir, extra)
    reporter.report()
    threading.Thread(target=reporter.run_forever, name="forkwsgi-reload-report", daemon=True).start()

    def reporting_app(environ, start_response):
        try:
            return app(environ, start_response)
        finally:
            reporter.report_if_grown()  # before the response leaves: a lazy import is watched from now on

    return reporting_app
