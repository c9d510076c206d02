"""Everything between fork and a worker's first accept, in the order it must happen.

Signals first (a TERM during a slow app import is kept, not lost); the TLS
context before privileges drop (keys are often root's); the app after them
(it must not run as root); the components last, each given what it needs.
"""
import os
import random
import signal
import time

from forkwsgi.config.appload import load_app
from forkwsgi.http.parser import SPOOL_SIZE, Limits
from forkwsgi.observe import otel
from forkwsgi.observe.accesslog import AccessLog
from forkwsgi.process import drop_privileges, set_title
from forkwsgi.shared.board import PAGE_SIZE
from forkwsgi.shared.stats import MemoryGuard
from forkwsgi.worker.channels import Channels
from forkwsgi.worker.connection import ConnectionKit
from forkwsgi.worker.executor import InlineExecutor, ThreadPoolExecutor
from forkwsgi.worker.handler import Site
from forkwsgi.worker.handover import Handover
from forkwsgi.worker.heap import keep_freed_heap
from forkwsgi.worker.intake import Intake
from forkwsgi.worker.outbuf import SpillBudget
from forkwsgi.worker.poller import Poller
from forkwsgi.worker.scheduler import Scheduler
from forkwsgi.worker.shedding import Shedder
from forkwsgi.worker.stopping import StopState
from forkwsgi.worker.timers import Timers
from forkwsgi.worker.tls import ServerContext
from forkwsgi.wsgi.devreload import load_app_reloading
from forkwsgi.wsgi.environ import base_environ
from forkwsgi.wsgi.forwarded import TrustedPeers
from forkwsgi.wsgi.queuetime import clock_offset


def boot(worker, setup):
    """Make ``worker`` (loop.Worker) ready to serve. Raises AppImportError if the app won't load,
    ConfigError if the TLS certificate won't."""
    cfg = setup.cfg
    set_title("worker", cfg)
    _install_signals(worker)
    keep_freed_heap()
    handoff = setup.handoff if setup.handoff is not None and cfg.handoff else None
    board_page = setup.board.page if setup.board is not None else bytearray(PAGE_SIZE)
    worker.stop = stop = StopState(cfg.graceful_timeout, board_page, cfg.keepalive > 0, handoff)
    worker.tls = ServerContext(cfg)
    worker.tls.load()  # before dropping privileges: keys are often root's
    drop_privileges(*setup.ids)
    if cfg.accesslog:
        worker.access_log = AccessLog(cfg.accesslog, cfg.access_log_format, cfg.log_format)
    if worker.app is None and getattr(cfg, "reload", False):
        worker.app = load_app_reloading(cfg, setup.reload_reports)  # an import error: a 500 page, not BOOT_ERROR
    elif worker.app is None:
        worker.app = load_app(cfg.wsgi_app, cfg.chdir)
    worker.app = otel.instrument(worker.app, cfg)  # --otel: after the fork, so its exporter thread runs here
    cfg.call_hook("post_worker_init", worker)
    assemble(worker, setup, cfg, stop, handoff)
    setup.heartbeat.mark_booted()


def _install_signals(worker):
    worker.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, worker.queue_signal)
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, worker.fast_exit)
    signal.signal(signal.SIGABRT, worker.abort)
    for sig in (signal.SIGHUP, signal.SIGWINCH, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def assemble(worker, setup, cfg, stop, handoff):
    """The worker's components, wired: each gets what it uses, nothing more."""
    threads = cfg.threads
    stats = setup.stats
    heartbeat = setup.heartbeat
    if stats is not None:
        stats.setup_threads(threads)
    worker.heartbeat, worker.stats = heartbeat, stats
    connections = worker.connections
    worker.poller = poller = Poller()
    poller.add(worker.wake_r)
    limits = Limits(cfg.limit_request_line, cfg.limit_request_fields, cfg.limit_request_field_size,
                    cfg.limit_request_body, cfg.spool_dir,
                    stream_over=SPOOL_SIZE)  # a bigger body streams to the app: never spooled
    kit = ConnectionKit(cfg, limits, SpillBudget(cfg.output_spill_budget), heartbeat.beat)
    trusted = TrustedPeers(cfg.forwarded_allow_ips, cfg.secure_scheme_headers, cfg.forwarder_headers)
    worker.site = site = Site(worker.app, cfg, worker, stop, trusted, stats, worker.access_log)
    site.clock_offset = clock_offset()
    worker.channels = channels = Channels(connections, poller, site.dates, kit)
    busy = heartbeat.busy if cfg.max_workers else None  # busy-ness for the master's autoscaler
    shedder = Shedder(cfg.max_queue_time, site, stats, channels.answer_and_close) if cfg.max_queue_time else None
    max_requests = cfg.max_requests + random.randint(0, cfg.max_requests_jitter) if cfg.max_requests else 0
    memory_guard = MemoryGuard(cfg.max_worker_memory, stats=stats) if cfg.max_worker_memory else None
    worker.handover = handover = Handover(connections, poller, stop, setup.handoff, stats, lambda conn: None) \
        if setup.handoff is not None else None
    worker.scheduler = scheduler = Scheduler(cfg, connections, poller, channels, site, stop, handover,
                                             worker.retire_soon, setup.multiprocess, shedder, memory_guard,
                                             max_requests)
    channels.scheduler = scheduler
    if handover is not None:
        handover.forget = scheduler.forget
    scheduler.beat = heartbeat.beat
    if threads > 1:
        executor = ThreadPoolExecutor(threads, busy)
        poller.add(executor.done_r)
    else:
        watching = (handoff is not None and setup.multiprocess) or shedder is not None
        executor = InlineExecutor(cfg.handoff_delay, worker.lock, scheduler.request_done,
                                  scheduler.watch_turn if watching else None, busy,
                                  stop.in_app_call if shedder is not None else None, channels.release_held,
                                  kit.held)
    worker.executor = scheduler.executor = executor
    worker.timers = Timers(cfg, stop, channels, handover.hand_off if handover is not None else lambda conn: False)
    proxy_peers = TrustedPeers(cfg.proxy_allow_ips) if cfg.proxy_protocol else None
    worker.intake = intake = Intake(setup.listeners, poller, kit, scheduler.admit, connections, executor, stop,
                                    setup.handoff, scheduler.waiting, cfg.worker_connections, worker.tls,
                                    proxy_peers, stats, stop.board_page)
    scheduler.accept_waiting = intake.accept_waiting
    if handoff is not None:
        handoff.reserve_fd()
    executor.start()
    base = base_environ(cfg, setup.multiprocess)
    base["wsgi.multithread"] = threads > 1
    intake.start(base, time.monotonic())
