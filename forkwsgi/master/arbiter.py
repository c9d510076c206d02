"""The master process: owns the sockets, forks and supervises workers, obeys signals.

Signal handlers only append to a queue; the self-pipe (signal.set_wakeup_fd)
wakes the loop, and all real work happens there.
"""
import gc
import os
import select
import signal
import sys
import time

from forkwsgi import __version__
from forkwsgi.observe import otel
from forkwsgi.master import systemd
from forkwsgi.config.appload import AppImportError, load_app
from forkwsgi.master.autoscale import SAMPLE_INTERVAL, Autoscaler, check_max_workers
from forkwsgi.shared.backlog import tcp_listen_queue
from forkwsgi.shared.board import Board
from forkwsgi.config.cpus import resolve_workers
from forkwsgi.shared.handoff import HandoffChannel
from forkwsgi.shared.heartbeat import Heartbeat
from forkwsgi.logs import log, reopen_error_log, setup_error_log
from forkwsgi.observe.observer import Observer
from forkwsgi.process import PidFile, flush_std, resolve_ids, set_title
from forkwsgi.master.reloader import start_reloader
from forkwsgi.config.settings import ConfigError
from forkwsgi.master.sockets import create_listeners, mark_tls
from forkwsgi.config.tls import build_context
from forkwsgi.errors import BOOT_ERROR
from forkwsgi.shared.setup import WorkerSetup
from forkwsgi.worker.loop import run_worker

MAX_BOOT_FAILURES = 5
KILL_GRACE = 1.0  # seconds a worker told to exit now (SIGABRT on timeout, SIGQUIT before boot) gets before SIGKILL
MAX_SLEEP = 1.0  # the loop looks at its workers at least this often
HANDLED_SIGNALS = ("HUP", "QUIT", "INT", "TERM", "TTIN", "TTOU", "USR1", "USR2", "WINCH", "CHLD")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# Starts FORKWSGI_FDS (the listeners a USR2 hands to the new master) when they came from socket activation:
# the new master serves them as they are, whatever `bind` says (LISTEN_PID could not name it).
ACTIVATED_MARK = "activated:"
MAX_QUEUED = 16  # queue entries of other signals; a flood beyond this is dropped, a stop signal never


def _exit_before_boot(signum, frame):
    """A worker's TERM/INT/QUIT handler between fork and its own: it holds no connection yet, so it just exits."""
    os._exit(0)


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


def fork_with_gc_off():
    """os.fork() with the collector off across it (no collection between the freeze and the fork),
    back on in both processes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return os.fork()
    finally:
        if enabled:
            gc.enable()


def _passed_fds():
    """(fds, came from socket activation) of the listeners the master we replace handed over (USR2)."""
    passed = os.environ.pop("FORKWSGI_FDS", "")
    activated = passed.startswith(ACTIVATED_MARK)
    if activated:
        passed = passed[len(ACTIVATED_MARK):]
    return [int(fd) for fd in passed.split(",") if fd], activated


class WorkerProcess:
    """The master's record of one worker."""

    def __init__(self, age, generation):
        self.age = age
        self.generation = generation
        self.heartbeat = Heartbeat()
        self.pid = 0
        self.retiring = False
        self.aborted_at = 0.0  # when it got SIGABRT for a timeout
        self.quit_at = 0.0  # when it got SIGQUIT, retired before it booted
        self.killed = False
        self.seen_booted = False
        self.stats = None  # its shared.stats.WorkerStats page, when the observer made one

    def __repr__(self):
        return "<worker %d>" % self.pid


class Arbiter:
    def __init__(self, cfg, reload_config, argv):
        self.cfg = cfg
        self.reload_config = reload_config
        self.argv = list(argv)
        self.start_dir = os.getcwd()
        self.pid = os.getpid()
        self.workers = {}
        self.listeners = []
        self.app = None
        self.generation = 0  # the newest generation: the one manage_workers converges on
        self.serving_generation = None  # the newest generation that fully booted (None: none yet)
        self.age = 0
        self.signals = []
        self.reexec_pid = 0
        self.parent_pid = int(os.environ.pop("FORKWSGI_PARENT_PID", "0") or 0)
        self.boot_failures = 0
        self.next_spawn_at = 0.0
        self.ever_booted = False
        self.systemd = False
        self.pidfile = None
        self.ids = (None, None)
        self.wake_r = self.wake_w = -1
        self.handoff = None
        self.reloader = None  # --reload: the file watcher (reloader.py)
        self.board = None
        self.shutdown_at = 0.0
        self.observer = None  # /metrics, the control socket, statsd (observe.py); None when all are off
        self.reload_unannounced = False  # systemd was told RELOADING=1 and awaits READY=1
        self.autoscaler = None  # --max-workers (autoscale.py)
        self.scaled = {"up": 0, "down": 0}  # workers added and retired by the autoscaler

    # ----- start

    def start(self):
        cfg = self.cfg
        cfg.workers = resolve_workers(cfg.workers)
        check_max_workers(cfg)
        self.setup_autoscaler(cfg)
        cfg.call_hook("nworkers_changed", self, cfg.workers, None)  # from none, as gunicorn tells it first
        cfg.call_hook("on_starting", self)
        self.ids = resolve_ids(cfg.user, cfg.group)
        inherited, activated = _passed_fds()
        if activated:
            systemd_fds, inherited = inherited, []  # socket activation's listeners, passed on by a USR2
        else:
            systemd_fds = [] if inherited else systemd.listen_fds()
        self.systemd = bool(systemd_fds)
        self.listeners = create_listeners(cfg, inherited, systemd_fds)
        self.observer = Observer.create(self)  # refuses a bad or busy metrics address / control socket
        if cfg.pidfile:
            self.pidfile = PidFile(cfg.pidfile)
            self.pidfile.write(self.pid)
        build_context(cfg)  # a bad certificate fails the start, not every worker
        otel.check(cfg)  # --otel without its extra: refused here, not by every worker
        if cfg.preload_app:
            self.app = preload_app(cfg)
        self.board = Board()
        self.handoff = HandoffChannel(self.board)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for name in HANDLED_SIGNALS:
            signal.signal(getattr(signal, "SIG" + name), self._queue_signal)
        set_title("master", cfg)
        log.info("Starting forkwsgi %s (pid %d)", __version__, self.pid)
        for listener in self.listeners:
            log.info("Listening at: %s", listener)
        if cfg.reload:  # before the first fork: the workers inherit where to report their files
            self.reloader = start_reloader(self)
        self.manage_workers()
        cfg.call_hook("when_ready", self)
        systemd.notify("READY=1\nMAINPID=%d\nSTATUS=serving" % self.pid)

    def _queue_signal(self, signum, frame):
        self.enqueue(signum)

    def enqueue(self, signum, count=1):
        """Queue a signal for the loop: from a handler, the control socket (``count`` for add/remove N)
        or the reloader's thread. Entries are [signum, count].

        A stop signal is never dropped, so TERM from systemd or kill(1) always stops the master; only
        a copy of it already queued makes it redundant. A signal like the last one queued joins that
        entry (TTIN/TTOU add up their counts, HUPs are one reload). Anything else is dropped once
        MAX_QUEUED entries wait, so a signal flood cannot grow the queue without bound.
        """
        queue = self.signals
        if signum in STOP_SIGNALS:
            if not any(entry[0] == signum for entry in queue):
                queue.append([signum, 1])
            return
        if queue and queue[-1][0] == signum:
            queue[-1][1] += count
        elif len(queue) < MAX_QUEUED:
            queue.append([signum, count])

    def _coalesce_reloads(self):
        """Drop the HUPs queued right behind the one being handled: one reload serves them all."""
        merged = 0
        while self.signals and self.signals[0][0] in (signal.SIGHUP, signal.SIGCHLD):
            signum, count = self.signals.pop(0)
            merged += count if signum == signal.SIGHUP else 0
        return merged

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
                if not self.signals:
                    self.sleep(self.sleep_time())
                    self.reap()
                    self.murder_workers()
                    self.manage_workers()
                    self.autoscale()
                    if self.shutdown_at and time.monotonic() >= self.shutdown_at:
                        self.stop(graceful=True)
                        self.exit(0)
                    continue
                signum, count = self.signals.pop(0)
                if signum == signal.SIGCHLD:
                    continue
                name = signal.Signals(signum).name[3:].lower()
                if signum in (signal.SIGTTIN, signal.SIGTTOU):
                    log.info("Handling signal: %s%s", name, " (x%d)" % count if count > 1 else "")
                    getattr(self, "on_" + name)(count)
                    continue
                merged = count - 1 + self._coalesce_reloads() if signum == signal.SIGHUP else 0
                log.info("Handling signal: %s%s", name, " (and %d more queued: one reload)" % merged if merged else "")
                getattr(self, "on_" + name)()
            except SystemExit:
                raise
            except Exception:
                log.exception("unhandled error in the master loop; stopping")
                self.stop(graceful=False)
                self.exit(1)

    def sleep_time(self):
        """Seconds until something is due: a heartbeat deadline, a SIGKILL grace, a respawn; at most MAX_SLEEP.

        Waking at the deadline itself, rather than polling, kills a hung worker
        within a few milliseconds of --timeout.
        """
        now = time.monotonic()
        due = now + MAX_SLEEP
        for worker in self.workers.values():
            if worker.killed:
                continue
            if worker.aborted_at or worker.quit_at:
                due = min(due, (worker.aborted_at or worker.quit_at) + KILL_GRACE)
            elif self.cfg.timeout:
                due = min(due, worker.heartbeat.last_beat + self.cfg.timeout)
        if self.next_spawn_at > now:
            due = min(due, self.next_spawn_at)
        if self.shutdown_at:
            due = min(due, self.shutdown_at)
        if self.autoscaler is not None:
            due = min(due, self.autoscaler.due)
        return min(MAX_SLEEP, max(0.005, due - now + 0.005))

    def sleep(self, timeout):
        try:
            observer = self.observer
            if observer is None:
                ready, _, _ = select.select([self.wake_r], [], [], timeout)
            else:  # the metrics and control sockets are served from this same select, never blocking
                ready, writable, _ = select.select([self.wake_r] + observer.readers(), observer.writers(), [],
                                                   timeout)
                observer.handle(ready, writable)
                ready = [fd for fd in ready if fd == self.wake_r]
            if ready:
                while os.read(self.wake_r, 512):
                    pass
        except (BlockingIOError, InterruptedError):
            pass

    # ----- signals

    def on_term(self):
        delay = self.cfg.shutdown_delay
        if delay and not self.shutdown_at:
            # Load balancers (a Kubernetes Service, an ingress) still send new connections for a
            # while after TERM: serve them, fail health checks and close pooled connections, then stop.
            self.shutdown_at = time.monotonic() + delay
            self.board.draining = True
            log.info("TERM: serving for %gs more (--shutdown-delay), health checks now fail, then a graceful stop",
                     delay)
            systemd.notify("STATUS=draining for %gs before stopping" % delay)
            return
        if self.shutdown_at:
            log.info("second TERM: stopping now")
        self.stop(graceful=True)
        self.exit(0)

    def on_int(self):
        self.stop(graceful=False)
        self.exit(0)

    on_quit = on_int

    def on_hup(self):
        self.reload()

    def on_ttin(self, count=1):
        self.cfg.workers += count
        self.cfg.call_hook("nworkers_changed", self, self.cfg.workers, self.cfg.workers - count)
        self.manage_workers()

    def on_ttou(self, count=1):
        count = min(count, self.cfg.workers - 1)  # never the last worker (WINCH stops them all)
        if count > 0:
            self.cfg.workers -= count
            self.cfg.call_hook("nworkers_changed", self, self.cfg.workers, self.cfg.workers + count)
            self.manage_workers()

    def on_winch(self):
        log.info("WINCH: stopping all workers gracefully; the master stays (HUP brings them back)")
        old_workers, self.cfg.workers = self.cfg.workers, 0
        self.cfg.call_hook("nworkers_changed", self, 0, old_workers)
        self.manage_workers()

    def on_usr1(self):
        reopen_error_log()
        log.info("reopened log files")
        self.kill_workers(signal.SIGUSR1)

    def on_usr2(self):
        self.reexec()

    # ----- workers

    def spawn_worker(self):
        self.age += 1
        worker = WorkerProcess(self.age, self.generation)
        if self.observer is not None:
            self.observer.prepare(worker)  # its shared counters page, made before fork
        self.cfg.call_hook("pre_fork", self, worker)
        pid = fork_with_gc_off()
        if pid:
            worker.pid = pid
            self.workers[pid] = worker
            if self.observer is not None:
                self.observer.spawned(worker)
            log.info("Booting worker with pid: %d", pid)
            return worker
        # in the child
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):  # until the worker installs its own
            signal.signal(sig, _exit_before_boot)
        os.close(self.wake_r)
        os.close(self.wake_w)
        for other in self.workers.values():
            other.heartbeat.close()
        if self.observer is not None:
            self.observer.in_child(worker)
        worker.pid = os.getpid()
        try:
            self.cfg.call_hook("post_fork", self, worker)
        except Exception:
            log.exception("post_fork hook failed")
            flush_std()
            os._exit(BOOT_ERROR)
        run_worker(WorkerSetup(self, self.cfg, self.listeners, worker.heartbeat, self.app, self.most_workers() > 1,
                               self.ids, self.handoff, self.board, worker.stats,
                               self.reloader.directory if self.reloader is not None else None))

    # ----- workers that follow the load (--max-workers)

    def setup_autoscaler(self, cfg):
        """At start and at each reload: an autoscaler while --max-workers is set, keeping what it added."""
        if not cfg.max_workers:
            self.autoscaler = None
        elif self.autoscaler is None:
            self.autoscaler = Autoscaler(cfg.scale_up_after, cfg.scale_down_after)
        else:
            self.autoscaler.up_after, self.autoscaler.down_after = cfg.scale_up_after, cfg.scale_down_after

    def most_workers(self):
        """The most workers that may run: --max-workers, or -w (moved by TTIN/TTOU) when above it or unset."""
        return max(self.cfg.workers, self.cfg.max_workers or 0)

    def wanted(self):
        """Workers to run now: -w (the least; 0 after WINCH), plus those the autoscaler added."""
        workers = self.cfg.workers
        if self.autoscaler is None or not workers:
            return workers
        return min(workers + self.autoscaler.extra, self.most_workers())

    def autoscale(self):
        """Sample the workers' busy-ness (heartbeat pages) and the accept queues; add or retire one
        worker when the autoscaler says so. Nothing while stopping or reloading."""
        scaler = self.autoscaler
        now = time.monotonic()
        if scaler is None or now < scaler.due or not self.cfg.workers or self.shutdown_at:
            return
        scaler.extra = self.wanted() - self.cfg.workers  # TTIN/TTOU may have moved the bounds
        current = [w for w in self.workers.values() if w.generation == self.generation and not w.retiring]
        if any(not w.heartbeat.booted for w in current) or any(w.generation != self.generation
                                                               for w in self.workers.values()):
            scaler.due = now + SAMPLE_INTERVAL  # booting or reloading: judge the workers once they serve
            return
        busy = {w.pid: w.heartbeat.busy_since > 0.0 for w in current}
        queues = [tcp_listen_queue(listener.sock) for listener in self.listeners]
        backlog = sum(queue[0] for queue in queues if queue is not None)
        step = scaler.sample(now, busy, backlog, len(current), self.most_workers() - self.wanted())
        if step:
            self.scaled["up" if step > 0 else "down"] += 1
            log.info("%s: %d worker(s) wanted (-w %d, --max-workers %d)",
                     "load: every worker busy or connections queued, adding a worker" if step > 0
                     else "load: a worker idle for --scale-down-after, retiring one", self.wanted(),
                     self.cfg.workers, self.most_workers())
            self.manage_workers()

    def manage_workers(self):
        """Converge on wanted() current-generation workers; retire the rest gracefully."""
        wanted = self.wanted()
        if self.board is not None:
            self.board.handoff_open = wanted > 0  # retiring workers hand connections only to live ones
        current = [w for w in self.workers.values() if w.generation == self.generation and not w.retiring]
        missing = wanted - len(current)
        # Workers quit before they booted are waited for (they die at once, or are killed within
        # KILL_GRACE), so the abandoned and the new generation never run side by side.
        quitting = any(w.quit_at for w in self.workers.values())
        if missing > 0 and time.monotonic() >= self.next_spawn_at and not quitting:
            for _ in range(missing):
                self.spawn_worker()
        elif missing < 0:
            for worker in sorted(current, key=lambda w: w.age)[:-missing]:
                self.retire(worker)
        booted = 0
        for worker in current:
            if worker.heartbeat.booted:
                booted += 1
                if not worker.seen_booted:
                    worker.seen_booted = True
                    log.info("Worker %d booted (generation %d)", worker.pid, worker.generation)
        if booted:
            self.ever_booted = True
            self.boot_failures = 0
        if booted >= wanted:
            self.serving_generation = self.generation
            self.announce_ready()
            for worker in list(self.workers.values()):
                if worker.generation != self.generation and not worker.retiring:
                    self.retire(worker)

    def retire(self, worker):
        """Stop a worker no longer wanted: gracefully (TERM) once booted, as it may hold connections;
        at once (QUIT) before, as it holds none yet."""
        worker.retiring = True
        if worker.heartbeat.booted:
            self.kill_worker(worker.pid, signal.SIGTERM)
        else:
            worker.quit_at = time.monotonic()
            self.kill_worker(worker.pid, signal.SIGQUIT)

    def kill_worker(self, pid, sig):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def kill_workers(self, sig):
        for pid in list(self.workers):
            self.kill_worker(pid, sig)

    def murder_workers(self):
        """SIGABRT workers silent for longer than the timeout; SIGKILL those told to exit now that did not."""
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.killed:
                continue
            told_at = worker.aborted_at or worker.quit_at
            if told_at:
                if now - told_at >= KILL_GRACE:
                    log.error("worker %d still running %.1fs after SIG%s; sending SIGKILL", worker.pid,
                              now - told_at, "ABRT" if worker.aborted_at else "QUIT")
                    worker.killed = True
                    self.kill_worker(worker.pid, signal.SIGKILL)
            elif self.cfg.timeout and now - worker.heartbeat.last_beat > self.cfg.timeout:
                log.critical("WORKER TIMEOUT (pid:%d): silent for over %ds, aborting it",
                             worker.pid, self.cfg.timeout)
                worker.aborted_at = now
                self.kill_worker(worker.pid, signal.SIGABRT)
                self.kill_worker(worker.pid, signal.SIGCONT)  # a stopped worker must run its abort handler

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            code = os.waitstatus_to_exitcode(status)
            if pid == self.reexec_pid:
                log.error("new master %d exited (code %d); this master keeps serving", pid, code)
                self.reexec_pid = 0
                if self.pidfile is not None:
                    self.pidfile.unmark_old()
                set_title("master", self.cfg)
                continue
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            if code == BOOT_ERROR and not worker.retiring:  # a retired worker's failure no longer matters
                self.on_boot_failure(worker)
            elif code < 0:
                name = signal.Signals(-code).name
                hint = " (out of memory?)" if code == -signal.SIGKILL and not worker.killed else ""
                log.error("worker %d was killed by %s%s", pid, name, hint)
            elif code != 0 and not worker.aborted_at:
                log.error("worker %d exited with code %d", pid, code)
            else:
                log.info("worker %d exited", pid)
            if self.observer is not None:
                self.observer.worker_exited(worker, code)  # its last counters join the retired totals
            worker.heartbeat.close()
            if self.handoff is not None:
                self.handoff.forget(pid)  # a worker killed outright said it had a thread to spare
            self.cfg.call_hook("child_exit", self, worker)

    def on_boot_failure(self, worker):
        """Back off exponentially; give up after repeated failures rather than fork-bomb."""
        self.boot_failures += 1
        if not self.ever_booted:
            log.error("worker failed to boot; shutting down")
            self.halt(BOOT_ERROR)
        if self.boot_failures >= MAX_BOOT_FAILURES:
            previous = [w for w in self.workers.values() if w.generation != self.generation and not w.retiring]
            if previous:
                log.error("new workers failed to boot %d times; keeping the %d previous workers",
                          self.boot_failures, len(previous))
                for other in list(self.workers.values()):
                    if other.generation == self.generation and not other.retiring:
                        self.retire(other)  # the failing generation's workers still booting
                for other in previous:  # the previous workers become the generation to keep
                    other.generation = self.generation
                self.serving_generation = self.generation
                self.boot_failures = 0
                self.announce_ready()
                return
            log.error("workers failed to boot %d times in a row; shutting down", self.boot_failures)
            self.halt(BOOT_ERROR)
        delay = min(0.1 * 2 ** (self.boot_failures - 1), 5.0)
        log.warning("worker failed to boot; retrying in %.1fs", delay)
        self.next_spawn_at = time.monotonic() + delay

    # ----- reload and upgrade

    def announce_ready(self):
        """After a reload, tell systemd READY=1 once the newest generation serves (or the failed one was given up),
        not before: `systemctl reload` returns then, and what follows it meets the new code."""
        if self.reload_unannounced and self.serving_generation == self.generation:
            self.reload_unannounced = False
            systemd.notify("READY=1")

    def reload(self):
        # notify-reload: RELOADING=1 with the time it began (CLOCK_MONOTONIC, in microseconds); READY=1 follows
        systemd.notify("RELOADING=1\nMONOTONIC_USEC=%d" % (time.monotonic_ns() // 1000))
        self.reload_unannounced = True
        try:
            cfg = self.reload_config()
            cfg.workers = resolve_workers(cfg.workers)
            check_max_workers(cfg)
            build_context(cfg)  # a renewed certificate that does not load keeps the workers serving
            otel.check(cfg)
        except ConfigError as exc:
            log.error("reload failed, keeping the running config: %s", exc)
            self.announce_ready()  # nothing changes: ready again, unless an earlier reload still boots
            return
        old = self.cfg
        cfg.call_hook("on_reload", self)
        if cfg.bind != old.bind and not self.systemd:
            # Sockets whose address stays are reused (as after USR2), so a reload never refuses a connection.
            try:
                listeners = create_listeners(cfg, [os.dup(l.fileno()) for l in self.listeners])
            except ConfigError as exc:
                log.error("reload failed, keeping the running sockets: %s", exc)
                self.announce_ready()
                return
            kept_paths = {l.path for l in listeners if l.path}
            for listener in self.listeners:
                listener.close(unlink=listener.path not in kept_paths)
            self.listeners = listeners
            for listener in listeners:
                log.info("Listening at: %s", listener)
        self.cfg = cfg
        self.setup_autoscaler(cfg)
        mark_tls(self.listeners, cfg)  # --certfile may have been turned on or off
        if cfg.workers != old.workers:
            cfg.call_hook("nworkers_changed", self, cfg.workers, old.workers)
        setup_error_log(cfg)
        if self.reloader is not None:
            self.reloader.update(cfg)
        set_title("master", cfg)
        self.generation += 1
        self.boot_failures = 0
        self.next_spawn_at = 0.0
        self.retire_unfinished_generations()
        self.manage_workers()  # READY=1 once the new generation has booted (announce_ready)

    def retire_unfinished_generations(self):
        """A reload supersedes an earlier reload's generation that has not finished booting.

        Only the serving generation (the newest that fully booted) keeps serving
        until the new one has booted; a generation in between never serves as a
        whole and is retired now. Before any generation fully booted, workers that
        did boot are the only ones answering, so they stay until the new ones are up.
        """
        superseded = []
        for worker in list(self.workers.values()):
            if worker.retiring or worker.generation in (self.generation, self.serving_generation):
                continue
            if self.serving_generation is None and worker.heartbeat.booted:
                continue
            superseded.append(worker)
            self.retire(worker)
        if superseded:
            log.info("reload supersedes %d worker(s) of an earlier reload still booting: %s",
                     len(superseded), " ".join(str(w.pid) for w in superseded))

    def reexec(self):
        """USR2: start a new master from the installed code, handing it our listening sockets."""
        if self.reexec_pid:
            log.warning("USR2 ignored: an upgrade (pid %d) is already running", self.reexec_pid)
            return
        if self.parent_pid and os.getppid() == self.parent_pid:
            log.warning("USR2 ignored: the master that started this one (pid %d) still runs", self.parent_pid)
            return
        if self.pidfile is not None:  # before the fork, so the new master never races us for the name
            self.pidfile.mark_old()
        try:
            pid = os.fork()
        except OSError as exc:
            log.error("USR2: cannot fork the new master: %s", exc)
            if self.pidfile is not None:
                self.pidfile.unmark_old()
            return
        if pid:
            self.reexec_pid = pid
            log.info("started new master %d; stop this one (WINCH, then QUIT or TERM) once it serves", pid)
            return
        environ = dict(os.environ)
        environ["FORKWSGI_FDS"] = (ACTIVATED_MARK if self.systemd else "") + ",".join(
            str(l.fileno()) for l in self.listeners)
        environ["FORKWSGI_PARENT_PID"] = str(self.pid)
        if self.observer is not None:
            environ.update(self.observer.inherit_env())
        for listener in self.listeners:
            os.set_inheritable(listener.fileno(), True)
        try:
            self.cfg.call_hook("pre_exec", self)
            os.chdir(self.start_dir)
            os.execve(sys.executable, [sys.executable, "-m", "forkwsgi"] + self.argv, environ)
        except BaseException:
            log.exception("re-exec failed")
            flush_std()
            os._exit(1)

    # ----- stop

    def stop(self, graceful=True):
        """Stop workers (TERM: finish in-flight and queued requests; QUIT: now), then SIGKILL stragglers."""
        systemd.notify("STOPPING=1")
        keep_paths = bool(self.reexec_pid) or self.systemd or (
            self.parent_pid and os.getppid() == self.parent_pid)
        for listener in self.listeners:
            if graceful and not keep_paths:
                listener.stop_admitting()  # the workers drain what is queued; nothing new is let in
            listener.close(unlink=not keep_paths)
        self.listeners = []
        if self.board is not None:
            self.board.handoff_open = False  # a full stop: workers close connections instead of moving them
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        self.kill_workers(sig)
        deadline = time.monotonic() + self.cfg.graceful_timeout + 1.0  # workers keep their own deadline
        while self.workers and time.monotonic() < deadline:
            self.sleep(0.1)
            self.reap()
            while self.signals:
                if self.signals.pop(0)[0] in (signal.SIGINT, signal.SIGQUIT) and sig == signal.SIGTERM:
                    sig = signal.SIGQUIT
                    log.info("fast stop requested during graceful stop")
                    self.kill_workers(sig)
        if self.workers:
            log.warning("killing %d worker(s) still running after %ds", len(self.workers),
                        self.cfg.graceful_timeout)
            self.kill_workers(signal.SIGKILL)
            for pid in list(self.workers):
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                self.workers.pop(pid).heartbeat.close()

    def halt(self, code):
        self.stop(graceful=True)
        self.exit(code)

    def exit(self, code, quiet=False):
        if self.pidfile is not None:
            self.pidfile.remove(self.pid)
        if self.observer is not None:  # a new master from USR2 (or the one we replace) keeps the socket files
            self.observer.close(unlink=not self.reexec_pid and not (
                self.parent_pid and os.getppid() == self.parent_pid))
        try:
            self.cfg.call_hook("on_exit", self)
        except Exception:
            log.exception("on_exit hook failed")
        if not quiet:
            log.info("Shutting down: master %d (exit %d)", self.pid, code)
        flush_std()
        sys.exit(code)
