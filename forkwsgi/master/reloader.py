"""``--reload``: restart the workers when a file of the app changes (development only).

Which files
    The master never imports the app (``--reload`` refuses ``--preload``), so the
    workers say what they imported. Before forking, the master makes a private
    drop-box directory, whose path each worker is given (wsgi/devreload.py).
    A worker writes the list of its ``sys.modules`` files there once its app is
    loaded, or has failed to load (then the files named in the traceback are
    listed too, the broken module's path first of all, so fixing it reloads; for
    a module not found, the paths it would have, so creating it reloads).
    It writes a new list whenever ``sys.modules`` has grown: checked after each
    app call and once a second by a small thread (Django imports the views on
    the first request). Each list is one file, ``<pid>.<n>.files``, written under
    a temporary name and renamed, so the master never reads half a list; a line
    is ``type mtime_ns size inode mode<TAB>path``, the stat the worker saw.
    The master's watcher thread reads and deletes the lists and adds their files
    to the watched set, with the config file and ``reload_extra_files``. A file
    it did not know yet starts from the stat the worker saw, so an edit made
    between the import and the master reading the list still counts.

How
    inotify through the optional ``watchfiles`` package (the ``reload`` extra)
    on the directories of the watched files, not recursive; stat polling every
    ``POLL_INTERVAL`` otherwise (``reload_engine`` forces one). Either way a
    change is confirmed by comparing each file's stat with the last one seen
    (type, mtime, size, inode), so events for other files in those directories
    do nothing. A watched file that is removed, replaced by a directory or loses
    its read permission is logged; the server keeps running.

Debounce
    Once a change is seen the watcher waits until nothing more changes for
    ``QUIET`` seconds (at most ``MAX_DELAY`` after the first change), then asks
    for one reload: a burst of saves (an editor, a ``git checkout``) gives one.

The reload
    The watcher thread never acts itself: it puts SIGHUP on the master's
    signal queue (which wakes its loop), and the loop does exactly what HUP does: new
    workers import the app afresh and the old ones retire gracefully, handing
    their idle keep-alive connections over. The bytecode caches of the changed
    ``.py`` files are removed first, since Python validates them by whole-second
    mtime and size only. Each new worker wakes the loop as it boots (its
    heartbeat), so the old ones are told to stop at once.
"""
import atexit
import importlib.util
import os
import shutil
import signal
import stat
import tempfile
import threading
import time

from forkwsgi.logs import log
from forkwsgi.wsgi.devreload import MISSING, content_of, file_state

POLL_INTERVAL = 1.0  # stat polling: seconds between scans while nothing is pending
STEP = 0.1  # seconds between looks while a change is pending
QUIET = 0.3  # a change is acted on once nothing more changed for this long...
MAX_DELAY = 3.0  # ...or this long after the first change, whichever comes first
INOTIFY_FULL_SCAN = 2.0  # with inotify, a full stat scan this often anyway (directories created later)

# ----- master side


def _watchfiles():
    try:
        import watchfiles
    except ImportError:
        return None
    return watchfiles


class Reloader:
    """The master's watcher: a thread that asks for a reload when a watched file changes.

    ``put_signal(signum)`` queues a signal for the master's loop (and wakes it); ``ids`` are the
    (uid, gid) the workers switch to, who must be able to write their file lists.
    """

    def __init__(self, cfg, ids, put_signal):
        self.cfg = cfg
        self.put_signal = put_signal
        self.directory = tempfile.mkdtemp(prefix="forkwsgi-reload-")
        uid, gid = ids
        if uid is not None or gid is not None:  # workers drop privileges before they report
            os.chown(self.directory, -1 if uid is None else uid, -1 if gid is None else gid)
        self.owner = os.getpid()
        self.states = {}  # path -> last state seen
        self.static = frozenset()
        self.update(cfg)
        self.pending = {}  # path -> what happened, since the first change of the burst
        self.first_change = self.last_change = 0.0
        self.stopping = threading.Event()
        self.thread = None
        self.watchfiles = None
        self.engine = "poll"
        self._dirs, self._dirs_for = set(), -1

    def update(self, cfg):
        """The config file and the extra files to watch (after a reload re-read the config)."""
        self.cfg = cfg
        paths = list(cfg.reload_extra_files)
        if cfg.config:
            paths.append(cfg.config)
        self.static = frozenset(os.path.abspath(path) for path in paths)

    def start(self):
        engine = self.cfg.reload_engine
        if engine != "poll":
            self.watchfiles = _watchfiles()
            if self.watchfiles is None and engine == "inotify":
                log.warning("reload: reload_engine is inotify but watchfiles is not installed; polling instead")
        if self.watchfiles is not None:
            self.engine = "inotify"
            log.info("Reloading on file changes: inotify (watchfiles %s)", getattr(self.watchfiles, "__version__", "?"))
        else:
            self.engine = "poll"
            log.info("Reloading on file changes: stat polling every %.0fs%s", POLL_INTERVAL,
                     "" if engine == "poll" else " (pip install 'forkwsgi[reload]' for inotify)")
        self._add_static()
        atexit.register(self.stop)
        self.thread = threading.Thread(target=self._run, name="forkwsgi-reloader", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if os.getpid() != self.owner:
            return
        self.stopping.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(2.0)
        shutil.rmtree(self.directory, ignore_errors=True)

    # ----- the thread

    def _run(self):
        while not self.stopping.is_set():
            try:
                if self.engine == "inotify":
                    self._run_inotify()
                else:
                    self._run_poll()
            except Exception:
                log.exception("reload: the %s watcher failed; polling from now on", self.engine)
                self.engine = "poll"
                self.stopping.wait(STEP)

    def _run_poll(self):
        while not self.stopping.wait(STEP if self.pending else POLL_INTERVAL):
            self._collect()
            self._scan(self.states)
            self._maybe_reload()

    def _run_inotify(self):
        while not self.stopping.is_set():
            self._collect()
            self._scan(self.states)  # whatever changed while the watch was being (re)built
            directories = self._directories()
            if not directories:
                self.stopping.wait(STEP)
                continue
            scanned_at = time.monotonic()
            for changes in self.watchfiles.watch(
                    *sorted(directories), watch_filter=None, debounce=1000, step=50, stop_event=self.stopping,
                    rust_timeout=int(STEP * 1000), yield_on_timeout=True, raise_interrupt=False, recursive=False,
                    ignore_permission_denied=True):
                self._collect()
                now = time.monotonic()
                if changes or now - scanned_at >= INOTIFY_FULL_SCAN:
                    self._scan(self.states)
                    scanned_at = now
                self._maybe_reload()
                if self._directories() != directories:
                    break  # new files elsewhere: watch their directories too

    def _directories(self):
        """The existing directories of the watched files (recomputed when the watched set grows)."""
        if self._dirs_for != len(self.states):
            self._dirs_for = len(self.states)
            self._dirs = {os.path.dirname(path) for path in self.states}
        return {directory for directory in self._dirs if os.path.isdir(directory)}

    # ----- what to watch

    def _add_static(self):
        for path in self.static:
            if path not in self.states:
                self.states[path] = state = file_state(path)
                if content_of(state) == MISSING:
                    log.warning("reload: %s does not exist (yet); watching for it", path)

    def _collect(self):
        """Read (and delete) the lists of files the workers wrote; watch the files new to us."""
        self._add_static()
        try:
            names = [name for name in os.listdir(self.directory) if name.endswith(".files")]
        except OSError as exc:
            log.warning("reload: cannot read the workers' file lists: %s", exc)
            return
        for name in names:
            full = os.path.join(self.directory, name)
            try:
                with open(full, encoding="utf-8", errors="surrogateescape") as handle:
                    lines = handle.read().splitlines()
                os.unlink(full)
            except OSError as exc:
                log.warning("reload: cannot read %s: %s", full, exc)
                continue
            for line in lines:
                numbers, _, path = line.partition("\t")
                if not path or path in self.states:
                    continue
                try:
                    self.states[path] = MISSING if numbers == "missing" else tuple(map(int, numbers.split()))
                except ValueError:
                    continue

    # ----- changes

    def _scan(self, paths):
        now = time.monotonic()
        for path in list(paths):
            old = self.states.get(path)
            new = file_state(path)
            if old is None or new == old:
                continue
            self.states[path] = new
            if len(new) == 5 and len(old) == 5 and new[4] != old[4]:
                if not new[4] & 0o444:
                    log.warning("reload: watched file %s is not readable (mode %o)", path, new[4])
                elif not old[4] & 0o444:
                    log.info("reload: watched file %s is readable again", path)
            if content_of(new) == content_of(old):
                continue
            if new == MISSING:
                log.warning("reload: watched file %s was removed", path)
                what = "removed"
            elif new[0] == "error":
                log.warning("reload: cannot stat watched file %s: %s", path, new[1])
                what = "unreadable"
            elif not stat.S_ISREG(new[0]):
                log.warning("reload: watched file %s is now %s, not a file", path,
                            "a directory" if stat.S_ISDIR(new[0]) else "something else")
                what = "not a file"
            else:
                what = "changed" if len(old) == 5 and stat.S_ISREG(old[0]) else "created"
            self.pending.setdefault(path, what)
            if not self.first_change:
                self.first_change = now
            self.last_change = now

    def _maybe_reload(self):
        if not self.pending:
            return
        now = time.monotonic()
        if now - self.last_change < QUIET and now - self.first_change < MAX_DELAY:
            return
        pending, self.pending = self.pending, {}
        self.first_change = self.last_change = 0.0
        for path in pending:
            if path.endswith(".py"):
                try:
                    os.unlink(importlib.util.cache_from_source(path))
                except (OSError, ValueError, NotImplementedError):
                    pass
        names = sorted(pending)
        shown = ", ".join("%s (%s)" % (name, pending[name]) for name in names[:5])
        more = " and %d more" % (len(names) - 5) if len(names) > 5 else ""
        log.info("Reload triggered by %d file(s): %s%s", len(names), shown, more)
        self.request_reload()

    def request_reload(self):
        """What HUP does, from this thread: queue the signal for the master's loop (which wakes it)."""
        self.put_signal(signal.SIGHUP)


def start_reloader(cfg, ids, put_signal):
    return Reloader(cfg, ids, put_signal).start()
