"""The master process: owns the sockets, forks and supervises workers, obeys signals.

As in unicorn's master, the loop is one short dispatch: signal handlers (and
the control socket, and the --reload watcher) only queue a signal
(signals.py); the loop pops it and calls the one handler for it, else sleeps
until something is due and then looks at its workers. The jobs live in their
own modules, each given what it needs:

    signals.py      the signal queue and the wake-up pipe
    workers.py      the table of workers: fork, signal, time out, reap
    spawn.py        one worker's fork, up to run_worker in the child
    generations.py  which generation to run, reloads converging on the newest
    reconfigure.py  HUP: the config read again, the sockets moved to its `bind`
    upgrade.py      USR2: a new master handed our sockets
    sockets.py      binding and adopting listening sockets
    autoscale.py    --max-workers: how many workers the load wants
"""
import gc
import os
import signal
import sys
import time

from forkwsgi import __version__
from forkwsgi.compiled import describe
from forkwsgi.config.appload import AppImportError, load_app
from forkwsgi.config.cpus import resolve_workers
from forkwsgi.config.tls import build_context
from forkwsgi.errors import BOOT_ERROR, ConfigError
from forkwsgi.logs import log, reopen_error_log, setup_error_log
from forkwsgi.master import systemd
from forkwsgi.master.autoscale import AutoscaleDriver, check_max_workers
from forkwsgi.master.generations import Generations
from forkwsgi.master.reconfigure import checked_config, rebind
from forkwsgi.master.reloader import start_reloader
from forkwsgi.master.signals import SignalQueue, WakeupPipe
from forkwsgi.master.sockets import bind_endpoint, close_listeners, mark_tls
from forkwsgi.master.spawn import Spawner
from forkwsgi.master.upgrade import Upgrade, open_listeners
from forkwsgi.master.workers import WorkerTable, failed_to_boot
from forkwsgi.observe import otel
from forkwsgi.observe.observer import Observer
from forkwsgi.process import PidFile, flush_std, resolve_ids, set_title
from forkwsgi.shared.board import Board
from forkwsgi.shared.handoff import HandoffChannel
from forkwsgi.shared.setup import WorkerSetup

MAX_SLEEP = 1.0  # the loop looks at its workers at least this often
# The dispatch: the Arbiter's handler of each queued signal. CHLD has none: the reap before it was the work.
HANDLERS = {signal.SIGHUP: "reload", signal.SIGTERM: "on_term", signal.SIGINT: "on_int", signal.SIGQUIT: "on_int",
            signal.SIGTTIN: "on_ttin", signal.SIGTTOU: "on_ttou", signal.SIGWINCH: "on_winch",
            signal.SIGUSR1: "on_usr1", signal.SIGUSR2: "on_usr2", signal.SIGCHLD: None}


def preload_app(cfg):
    """--preload: import the app in the master, and keep the workers' collectors off its objects.

    A full collection writes into the header of every object it tracks, so in each worker it
    would copy every page of the preloaded app. As CPython's gc docs advise, the collector is
    off while the app is imported (no freed holes for workers to fill), and gc.freeze() then
    moves what the import made to the permanent generation, which collections never visit.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return load_app(cfg.wsgi_app, cfg.chdir)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class Arbiter:
    """The master: ``cfg``, ``pid``, ``workers`` and ``listeners`` are what hooks and the observer read."""

    def __init__(self, cfg, reload_config, argv):
        self.cfg = cfg
        self.reload_config = reload_config
        self.argv = list(argv)
        self.start_dir = os.getcwd()
        self.pid = os.getpid()
        self.table = WorkerTable()
        self.generations = Generations(self.table)
        self.upgrade = Upgrade(self.pid)
        self.listeners = []
        self.app = None
        self.wakeup = None
        self.signals = SignalQueue()
        self.systemd = False
        self.pidfile = None
        self.ids = (None, None)
        self.handoff = None
        self.reloader = None  # --reload: the file watcher (reloader.py)
        self.board = None
        self.shutdown_at = 0.0
        self.observer = None  # /metrics, the control socket, statsd (observe/); None when all are off
        self.scaling = AutoscaleDriver()  # --max-workers (autoscale.py)
        self.spawner = None  # forks workers, once start() has made what they share

    @property
    def workers(self):
        """pid -> WorkerProcess of the live workers."""
        return self.table.by_pid

    @property
    def generation(self):
        return self.generations.generation

    def wanted(self):
        return self.scaling.wanted(self.cfg)

    def most_workers(self):
        return self.scaling.most_workers(self.cfg)

    # ----- start

    def start(self):
        cfg = self.cfg
        cfg.workers = resolve_workers(cfg.workers)
        check_max_workers(cfg)
        self.scaling.configure(cfg)
        self.hook("nworkers_changed", cfg.workers, None)  # from none, as gunicorn tells it first
        self.hook("on_starting")
        self.ids = resolve_ids(cfg.user, cfg.group)
        # Queued from before the listeners open: the port accepts from then on (README: Signals)
        self.wakeup = WakeupPipe()
        self.signals.install(self.wakeup)
        self.listeners, self.systemd = open_listeners(cfg)
        # refuses a bad or busy metrics address / control socket
        self.observer = Observer.create(self, self.signals.put, bind_endpoint)
        if cfg.pidfile:
            self.pidfile = self.upgrade.pidfile = PidFile(cfg.pidfile)
            self.pidfile.write(self.pid)
        build_context(cfg)  # a bad certificate fails the start, not every worker
        otel.check(cfg)  # --otel without its extra: refused here, not by every worker
        if cfg.preload_app:
            self.app = preload_app(cfg)
        self.board = Board()
        self.handoff = HandoffChannel(self.board)
        self.spawner = Spawner(self.table, self.wakeup, self.observer, self.hook)
        set_title("master", cfg)
        log.info("Starting forkwsgi %s (pid %d; %s)", __version__, self.pid, describe())
        for listener in self.listeners:
            log.info("Listening at: %s", listener)
        if cfg.reload:  # before the first fork: the workers inherit where to report their files
            self.reloader = start_reloader(cfg, self.ids, self.signals.put)
        self.manage_workers()
        self.hook("when_ready")
        systemd.notify("READY=1\nMAINPID=%d\nSTATUS=serving" % self.pid)

    # ----- the loop

    def run(self):
        try:
            self.start()
        except (ConfigError, AppImportError) as exc:
            if isinstance(exc, AppImportError):
                exc.report(log.error)
            else:
                log.error("%s", exc)
            self.exit(1, quiet=True)
        while True:
            try:
                self.reap()
                if self.signals:
                    self.handle(*self.signals.pop())
                else:
                    self.tick()
            except SystemExit:
                raise
            except Exception:
                log.exception("unhandled error in the master loop; stopping")
                self.stop(graceful=False)
                self.exit(1)

    def handle(self, signum, count):
        """One queued signal to its handler in HANDLERS."""
        if HANDLERS[signum] is None:
            return
        handler = getattr(self, HANDLERS[signum])
        name = signal.Signals(signum).name[3:].lower()
        if signum in (signal.SIGTTIN, signal.SIGTTOU):
            log.info("Handling signal: %s%s", name, " (x%d)" % count if count > 1 else "")
            handler(count)
            return
        merged = count - 1 + self.signals.take_reloads() if signum == signal.SIGHUP else 0
        log.info("Handling signal: %s%s", name, " (and %d more queued: one reload)" % merged if merged else "")
        handler()

    def tick(self):
        """Nothing queued: sleep until something is due (or a signal or a booted worker wakes us), then look."""
        self.wakeup.wait(self.sleep_time(), self.observer)
        self.reap()
        self.table.enforce_timeouts(self.cfg.timeout)
        self.manage_workers()
        self.autoscale()
        if self.shutdown_at and time.monotonic() >= self.shutdown_at:
            self.stop(graceful=True)
            self.exit(0)

    def sleep_time(self):
        """Seconds until something is due: a heartbeat deadline, a SIGKILL grace, a respawn; at most MAX_SLEEP.

        Waking at the deadline itself, rather than polling, kills a hung worker
        within a few milliseconds of --timeout.
        """
        now = time.monotonic()
        due = [now + MAX_SLEEP, self.table.next_due(self.cfg.timeout), self.scaling.due()]
        if self.generations.next_spawn_at > now:
            due.append(self.generations.next_spawn_at)
        if self.shutdown_at:
            due.append(self.shutdown_at)
        return min(MAX_SLEEP, max(0.005, min(at for at in due if at is not None) - now + 0.005))

    # ----- signals

    def on_term(self):
        delay = self.cfg.shutdown_delay
        if delay and not self.shutdown_at:
            # Load balancers (a Kubernetes Service, an ingress) still send new connections for a
            # while after TERM: serve them, fail health checks and close pooled connections, then stop.
            self.shutdown_at = time.monotonic() + delay
            self.board.start_draining()
            log.info("TERM: serving for %gs more (--shutdown-delay), health checks now fail, then a graceful stop",
                     delay)
            systemd.notify("STATUS=draining for %gs before stopping" % delay)
            return
        if self.shutdown_at:
            log.info("second TERM: stopping now")
        self.halt(0)

    def on_int(self):
        self.stop(graceful=False)
        self.exit(0)

    def on_ttin(self, count=1):
        self.resize(self.cfg.workers + count)

    def on_ttou(self, count=1):
        if self.cfg.workers > 1:  # never the last worker (WINCH stops them all)
            self.resize(max(self.cfg.workers - count, 1))

    def on_winch(self):
        log.info("WINCH: stopping all workers gracefully; the master stays (HUP brings them back)")
        self.resize(0)

    def resize(self, workers):
        """-w moved by TTIN, TTOU or WINCH: tell the hook, then converge."""
        old, self.cfg.workers = self.cfg.workers, workers
        self.hook("nworkers_changed", workers, old)
        self.manage_workers()

    def on_usr1(self):
        reopen_error_log()
        log.info("reopened log files")
        self.table.send_all(signal.SIGUSR1)

    def on_usr2(self):
        extra_env = self.observer.inherit_env() if self.observer is not None else {}
        self.upgrade.start(self.listeners, self.systemd, extra_env, lambda: self.hook("pre_exec"),
                           self.start_dir, self.argv)

    # ----- workers

    def manage_workers(self):
        """Converge on wanted() workers of the newest generation; stop the rest gracefully."""
        wanted = self.wanted()
        if self.board is not None:
            self.board.handoff_open = wanted > 0  # stopping workers hand connections only to live ones
            self.board.lone = wanted == 1
        self.generations.converge(wanted, lambda: self.spawner.spawn(self.generation, self.worker_setup))

    def autoscale(self):
        """Add or retire one worker when the autoscaler says so (never while stopping or reloading)."""
        if not self.shutdown_at and self.scaling.step(self.cfg, self.table.running(self.generation),
                                                      self.generations.settled(), self.listeners):
            self.manage_workers()

    def worker_setup(self, worker):
        """What a new worker is given (in the child, just after fork)."""
        return WorkerSetup(self, self.cfg, self.listeners, worker.heartbeat, self.app, self.most_workers() > 1,
                           self.ids, self.handoff, self.board, worker.stats,
                           self.reloader.directory if self.reloader is not None else None, worker.age)

    def hook(self, name, *args):
        """Call a server hook (the arbiter passed first, as gunicorn does)."""
        self.cfg.call_hook(name, self, *args)

    def reap(self):
        for worker, code in self.table.reap(self.upgrade.reaped):
            if failed_to_boot(worker, code) and self.generations.boot_failed():
                self.halt(BOOT_ERROR)
            if self.observer is not None:
                self.observer.worker_exited(worker, code)  # its last counters join the retired totals
            worker.heartbeat.close()
            if self.handoff is not None:
                self.handoff.forget(worker.pid)  # a worker killed outright said it had a thread to spare
            self.hook("child_exit", worker)

    # ----- reload

    def reload(self):
        generations = self.generations
        generations.reload_started()
        try:
            cfg = checked_config(self.reload_config)
        except ConfigError as exc:
            log.error("reload failed, keeping the running config: %s", exc)
            generations.announce_ready()  # nothing changes: ready again, unless an earlier reload still boots
            return
        old = self.cfg
        cfg.call_hook("on_reload", self)  # the new config's hook, before it applies
        if cfg.bind != old.bind and not self.systemd:
            listeners = rebind(cfg, self.listeners)
            if listeners is None:
                generations.announce_ready()
                return
            self.listeners = listeners
        self.cfg = cfg
        self.scaling.configure(cfg)
        mark_tls(self.listeners, cfg)  # --certfile may have been turned on or off
        if cfg.workers != old.workers:
            self.hook("nworkers_changed", cfg.workers, old.workers)
        setup_error_log(cfg)
        if self.reloader is not None:
            self.reloader.update(cfg)
        set_title("master", cfg)
        generations.begin()
        self.manage_workers()  # READY=1 once the new generation has booted (announce_ready)

    # ----- stop

    def stop(self, graceful=True):
        """Stop workers (TERM: finish in-flight and queued requests; QUIT: now), then SIGKILL stragglers."""
        systemd.notify("STOPPING=1")
        keep_paths = self.upgrade.pair_runs() or self.systemd
        close_listeners(self.listeners, admit_none=graceful and not keep_paths, unlink=not keep_paths)
        self.listeners = []
        if self.board is not None:
            self.board.handoff_open = False  # a full stop: workers close connections instead of moving them
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        self.table.send_all(sig)
        deadline = time.monotonic() + self.cfg.graceful_timeout + 1.0  # workers keep their own deadline
        while self.table and time.monotonic() < deadline:
            self.wakeup.wait(0.1, self.observer)
            self.reap()
            while self.signals:
                if self.signals.pop()[0] in (signal.SIGINT, signal.SIGQUIT) and sig == signal.SIGTERM:
                    sig = signal.SIGQUIT
                    log.info("fast stop requested during graceful stop")
                    self.table.send_all(sig)
        if self.table:
            log.warning("killing %d worker(s) still running after %ds", len(self.table), self.cfg.graceful_timeout)
            self.table.kill_stragglers()

    def halt(self, code):
        self.stop(graceful=True)
        self.exit(code)

    def exit(self, code, quiet=False):
        if self.pidfile is not None:
            self.pidfile.remove(self.pid)
        if self.observer is not None:  # a new master from USR2 (or the one we replace) keeps the socket files
            self.observer.close(unlink=not self.upgrade.pair_runs())
        try:
            self.hook("on_exit")
        except Exception:
            log.exception("on_exit hook failed")
        if not quiet:
            log.info("Shutting down: master %d (exit %d)", self.pid, code)
        flush_std()
        sys.exit(code)
