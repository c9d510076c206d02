"""Server hooks, as gunicorn names them: functions of the config file only."""
from forkwsgi.config.setting import Setting
from forkwsgi.config.validators import hook, refused_hook

ROWS = [
    Setting("on_starting", hook(1), None, (), "on_starting(server): before the master binds."),
    Setting("on_reload", hook(1), None, (), "on_reload(server): on HUP, before new workers."),
    Setting("when_ready", hook(1), None, (), "when_ready(server): after the first workers are forked."),
    Setting("pre_fork", hook(2), None, (), "pre_fork(server, worker): in the master, before fork."),
    Setting("post_fork", hook(2), None, (), "post_fork(server, worker): in the worker, after fork."),
    Setting("post_worker_init", hook(1), None, (), "post_worker_init(worker): after the app is loaded."),
    Setting("worker_int", hook(1), None, (), "worker_int(worker): worker got INT or QUIT."),
    Setting("worker_abort", hook(1), None, (), "worker_abort(worker): worker timed out (SIGABRT)."),
    Setting("ssl_context", hook(2), None, (),
            "ssl_context(config, default_ssl_context_factory): return the SSLContext to serve TLS with; "
            "calling the factory gives the default context (which is also usable as is)."),
    Setting("pre_exec", hook(1), None, (), "pre_exec(server): in the new master before USR2 re-exec."),
    Setting("pre_request", hook(2), None, (),
            "pre_request(worker, req): before the app is called; req has gunicorn's method, path, query, "
            "uri, version, headers, remote_addr, and is also the request's environ mapping."),
    Setting("post_request", hook(4, 3, 2), None, (),
            "post_request(worker, req, environ, resp): after the response is sent; resp has status, "
            "status_code, headers, sent. (worker, req) and (worker, req, environ) also do, and forkwsgi's "
            "earlier (worker, environ, status, length), recognised by its parameter named status."),
    Setting("child_exit", hook(2), None, (), "child_exit(server, worker): in the master, a worker was reaped."),
    Setting("worker_exit", hook(2), None, (), "worker_exit(server, worker): in the worker, as it exits."),
    Setting("nworkers_changed", hook(3), None, (),
            "nworkers_changed(server, new_value, old_value): the number of workers changed (TTIN, TTOU, "
            "WINCH, a reload); also once at start, from None."),
    Setting("on_exit", hook(1), None, (), "on_exit(server): the master is about to exit."),
    Setting("on_dirty_starting", refused_hook("dirty arbiters are not supported"), None, (),
            "gunicorn's dirty arbiter hook.", None, "refused: no dirty arbiters; use a task queue"),
    Setting("dirty_post_fork", refused_hook("dirty arbiters are not supported"), None, (),
            "gunicorn's dirty arbiter hook.", None, "refused: no dirty arbiters; use a task queue"),
    Setting("dirty_worker_init", refused_hook("dirty arbiters are not supported"), None, (),
            "gunicorn's dirty arbiter hook.", None, "refused: no dirty arbiters; use a task queue"),
    Setting("dirty_worker_exit", refused_hook("dirty arbiters are not supported"), None, (),
            "gunicorn's dirty arbiter hook.", None, "refused: no dirty arbiters; use a task queue"),
]
