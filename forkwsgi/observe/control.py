"""What the control socket answers: one command line in, one JSON-able dict out.

Commands that change the server (reload, add, remove, stop, graceful-stop)
only queue the signal the master would get from kill(1), so they take the same
path as signals and never act from inside the select loop that answered them.
``status`` is a read-only report of the master, its workers and its listeners.
The framing (a line in, a JSON line out, size limits) is endpoints.py's.
"""
import os
import signal
import time

from forkwsgi import __version__
from forkwsgi.shared import stats as _stats
from forkwsgi.shared.backlog import tcp_listen_queue

CONTROL_SIGNALS = {"reload": (signal.SIGHUP, "reloading (HUP)"), "stop": (signal.SIGQUIT, "stopping now (QUIT)"),
                   "graceful-stop": (signal.SIGTERM, "stopping gracefully (TERM)")}
CONTROL_HELP = "status, reload, add N, remove N, stop, graceful-stop"


def answer(observer, raw):
    """One command line -> a JSON-able answer. Signals are queued for the master loop, never acted on here."""
    try:
        words = raw.decode("utf-8").split()
    except UnicodeDecodeError:
        return {"ok": False, "error": "command is not UTF-8"}
    if not words:
        return {"ok": False, "error": "empty command (expected %s)" % CONTROL_HELP}
    command, args = words[0].lower(), words[1:]
    arbiter = observer.arbiter
    if command == "status" and not args:
        return dict(status(observer), ok=True)
    if command in CONTROL_SIGNALS and not args:
        signum, text = CONTROL_SIGNALS[command]
        observer.put_signal(signum)
        return {"ok": True, "message": text}
    if command in ("add", "remove"):
        count = args[0] if len(args) == 1 else "1" if not args else ""
        if not count.isdigit() or not 1 <= int(count) <= 64:
            return {"ok": False, "error": "%s takes one count from 1 to 64" % command}
        count = int(count)
        if command == "remove":
            count = min(count, arbiter.cfg.workers - 1)
            if count <= 0:
                return {"ok": False, "error": "cannot remove the last worker (use stop)"}
        observer.put_signal(signal.SIGTTIN if command == "add" else signal.SIGTTOU, count)  # one entry, not N
        return {"ok": True, "message": "%s %d worker(s): %d wanted" % (
            "adding" if command == "add" else "removing", count,
            arbiter.cfg.workers + (count if command == "add" else -count))}
    return {"ok": False, "error": "unknown command %r (expected %s)" % (" ".join(words)[:80], CONTROL_HELP)}


def status(observer):
    """The `status` report: master, each live worker (with its requests in the app now), listeners, totals."""
    arbiter = observer.arbiter
    now_wall, now = time.time(), time.monotonic()
    workers = []
    for worker, slot, running, state in observer.live_workers():
        booted_at = _booted_at(worker)
        workers.append({
            "pid": worker.pid, "slot": slot, "age": worker.age, "generation": worker.generation,
            "state": state, "uptime": round(now - booted_at, 3) if booted_at else None,
            "requests": worker.stats.requests_served(), "rss": _stats.process_rss(worker.pid),
            "uss": _stats.worker_uss(worker.stats, worker.pid),
            "connections": worker.stats.gauge(_stats.CONNECTIONS),
            "current": [{"method": method, "path": path, "seconds": round(max(now_wall - started, 0.0), 3)}
                        for method, path, started in running]})
    listeners = []
    for listener in list(arbiter.listeners):
        queue = tcp_listen_queue(listener.sock)
        listeners.append({"name": str(listener), "backlog": queue[0] if queue else None,
                          "backlog_max": queue[1] if queue else None})
    total = observer.totals()
    return {"master": {"pid": arbiter.pid, "rss": _stats.process_rss(os.getpid()),
                       "uptime": round(now_wall - observer.started, 3), "workers_wanted": arbiter.wanted(),
                       "workers_min": arbiter.cfg.workers, "workers_max": arbiter.most_workers(),
                       "scaled": dict(arbiter.scaling.scaled), "generation": arbiter.generation, "version": __version__},
            "workers": workers, "listeners": listeners,
            "requests": sum(total[_stats.DURATION:_stats.DURATION_SUM_US]),
            "restarts": dict(observer.restarts)}


def _booted_at(worker):
    """When the worker finished booting (monotonic, from its heartbeat page); 0.0 when not known."""
    try:
        return worker.heartbeat.booted_at
    except (ValueError, AttributeError):  # closed: the worker is gone
        return 0.0
