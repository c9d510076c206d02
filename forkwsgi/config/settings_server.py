"""Serving: the app, its sockets, the workers, and the master process itself (user, pidfile, environment)."""
from forkwsgi.config.setting import Setting
from forkwsgi.config.validators import (bind_list, boolean, env_list, non_negative_float, octal,
                                        optional_count, optional_id, optional_string, positive_int,
                                        positive_seconds, worker_class, worker_count)

ROWS = [
    Setting("config", optional_string, None, ("-c", "--config"),
            "Python config file of module-level settings and hooks.", "FILE"),
    Setting("wsgi_app", optional_string, None, (), "The application as module:name or module:factory(). "
            "Given as the positional argument on the command line."),
    Setting("bind", bind_list, ["127.0.0.1:8000"], ("-b", "--bind"),
            "Address to listen on: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N. Repeat for several.",
            "ADDRESS"),
    Setting("backlog", positive_int, 2048, ("--backlog",), "Listen queue length of each socket.", "INT"),
    Setting("reuse_port", boolean, False, ("--reuse-port",), "Set SO_REUSEPORT on TCP listening sockets."),
    Setting("umask", octal, 0, ("-m", "--umask"), "umask applied when creating unix sockets (octal).",
            "OCTAL",
            "same: a string is read as octal (022), an int as is"),
    Setting("workers", worker_count, 1, ("-w", "--workers"),
            "Number of worker processes, or 'auto': the container's CPU quota (cgroup v2 cpu.max or v1 "
            "cpu.cfs_quota_us, rounded up), else the CPUs this process may run on.", "INT|auto"),
    Setting("max_workers", optional_count, None, ("--max-workers",),
            "Let the workers follow the load: -w is then the least, and the master starts one more (up to "
            "this many) when every worker has been busy, or connections have waited in the accept queue, for "
            "scale_up_after; and retires one (gracefully: its connections move to siblings) once a worker "
            "has been idle for scale_down_after. Off when unset; not below -w.", "INT", gunicorn=None),
    Setting("scale_up_after", positive_seconds, 1.0, ("--scale-up-after",),
            "With max_workers: seconds of every worker busy (or a non-empty accept queue) before a worker "
            "is added.", "SECONDS", gunicorn=None),
    Setting("scale_down_after", positive_seconds, 30.0, ("--scale-down-after",),
            "With max_workers: seconds a worker must stay idle before one is retired (then one a second "
            "while one still is), down to -w.", "SECONDS", gunicorn=None),
    Setting("worker_connections", positive_int, 1000, ("--worker-connections",),
            "Most open client connections one worker multiplexes.", "INT",
            "same: every worker class, not only async ones"),
    Setting("threads", positive_int, 1, ("--threads",),
            "App threads per worker. 1 runs the app in the event loop's thread; more run app calls on a "
            "pool while the loop keeps serving I/O (for apps that wait on databases and APIs).", "INT"),
    Setting("worker_class", worker_class, "sync", ("-k", "--worker-class"),
            "gunicorn's worker class: 'sync' or 'gthread' (with threads = N) map to forkwsgi's workers; "
            "every worker runs an event loop, and threads > 1 adds an app thread pool. ASGI, gevent, "
            "eventlet and tornado workers are refused.", "CLASS",
            "same: sync and gthread; others refused (ASGI: use uvicorn, hypercorn or granian)"),
    Setting("handoff", boolean, True, ("--handoff",),
            "Move a connection whose request waits behind a busy worker to an idle sibling, and move idle "
            "keep-alive connections off a worker that retires (reload, max-requests, fewer workers).",
            gunicorn=None),
    Setting("handoff_delay", non_negative_float, 0.003, ("--handoff-delay",),
            "Seconds a request that has arrived may wait for its busy worker before its connection moves "
            "to an idle sibling.", "SECONDS", gunicorn=None),
    Setting("preload_app", boolean, False, ("--preload",),
            "Import the application in the master before forking workers; its objects are then frozen "
            "(gc.freeze) so the workers share their memory."),
    Setting("chdir", optional_string, None, ("--chdir",), "Change to this directory before loading the app.",
            "DIR"),
    Setting("proc_name", optional_string, None, ("-n", "--name"),
            "Name shown in process titles; defaults to the app.", "NAME"),
    Setting("pidfile", optional_string, None, ("-p", "--pid"), "Write the master's pid to this file.",
            "FILE"),
    Setting("user", optional_id, None, ("-u", "--user"), "Run workers as this user (name or uid).",
            "USER"),
    Setting("group", optional_id, None, ("-g", "--group"), "Run workers as this group (name or gid).",
            "GROUP"),
    Setting("daemon", boolean, False, ("-D", "--daemon"), "Detach from the terminal and run in the background."),
    Setting("raw_env", env_list, [], ("-e", "--env"),
            "Set an environment variable KEY=VALUE in the master before the app loads. Repeat for several.",
            "KEY=VALUE"),
    Setting("pythonpath", optional_string, None, ("--pythonpath",),
            "Comma-separated directories put first on sys.path before the app loads.", "DIRS"),
]
