"""Timeouts and size limits: how long and how much a client, a request or a response may take."""
from forkwsgi.config.setting import Setting
from forkwsgi.config.validators import (boolean_on_by_default, limit, non_negative_float, non_negative_int,
                                        optional_seconds, optional_string, positive_int)

ROWS = [
    Setting("timeout", non_negative_int, 30, ("-t", "--timeout"),
            "Seconds a request may run in the app before it is answered 504 and its worker replaced (with "
            "--threads, after its other threads finish); 0 disables.",
            "INT"),
    Setting("graceful_timeout", non_negative_int, 30, ("--graceful-timeout",),
            "Seconds workers get to finish in-flight and queued requests on graceful stop.", "INT"),
    Setting("keepalive", non_negative_float, 5.0, ("--keepalive", "--keep-alive"),
            "Seconds an idle keep-alive connection is kept open; 0 turns keep-alive off.", "SECONDS",
            "same: default 5 s where gunicorn's is 2 (see Coming from gunicorn)"),
    Setting("header_timeout", non_negative_float, 10.0, ("--header-timeout",),
            "Seconds a client has to send a complete request head once it starts (slowloris guard).",
            "SECONDS", gunicorn=None),
    Setting("body_timeout", non_negative_float, 30.0, ("--body-timeout",),
            "Seconds a request body may stall without a byte arriving.", "SECONDS", gunicorn=None),
    Setting("send_timeout", non_negative_float, 30.0, ("--send-timeout",),
            "Seconds a response may wait for the client to take a byte before the connection is dropped "
            "(a body suspended past output_buffer_max too; an app using write() waits at most this long for "
            "the client to take half of it).", "SECONDS", gunicorn=None),
    Setting("shutdown_delay", non_negative_float, 0.0, ("--shutdown-delay",),
            "On TERM, keep accepting and serving for this many seconds (health checks fail, responses say "
            "Connection: close) before the graceful stop: load balancers stop sending first.",
            "SECONDS", gunicorn=None),
    Setting("max_requests", non_negative_int, 0, ("--max-requests",),
            "Restart a worker gracefully after this many requests (contains leaks); 0 disables.",
            "INT"),
    Setting("max_queue_time", optional_seconds, None, ("--max-queue-time",),
            "Answer 503 (with Retry-After and Connection: close), without calling the app, a request that has "
            "waited this many seconds since it was first seen (or since a trusted front end's X-Request-Start) "
            "without reaching the app: at its deadline, not when a worker frees. Health probes are never shed. "
            "Off when unset.", "SECONDS", gunicorn=None),
    Setting("max_requests_jitter", non_negative_int, 0, ("--max-requests-jitter",),
            "Add a random 0..N to max_requests per worker so they do not all restart at once.",
            "INT"),
    Setting("limit_request_line", limit(1 << 20), 4094, ("--limit-request-line",),
            "Longest request line in bytes (414 beyond); 0 means 1 MiB.", "INT",
            "same: 0 (gunicorn's 'unlimited') is 1 MiB; above 8190 is honoured, not capped"),
    Setting("limit_request_fields", limit(32768), 100, ("--limit-request-fields",),
            "Most header fields in a request (431 beyond); 0 means 32768.", "INT"),
    Setting("limit_request_field_size", limit(8190), 8190,
            ("--limit-request-field-size", "--limit-request-field_size"),
            "Longest header field line in bytes (431 beyond); 0 means 8190.", "INT"),
    Setting("limit_request_body", non_negative_int, 1 << 30, ("--limit-request-body",),
            "Largest request body in bytes (413 beyond); 0 means no limit. The default, 1 GiB (Apache "
            "httpd's LimitRequestBody default since 2.4.54), lets large uploads through (nginx's 1 MB "
            "is too small for an app server) while one request cannot fill the spool without end.",
            "INT", gunicorn=None),
    Setting("output_buffer_memory", non_negative_int, 1 << 20, ("--output-buffer-memory",),
            "Bytes of a response the client has not taken yet that a connection keeps in memory; "
            "beyond this they spill to a file in spool_dir.", "BYTES", gunicorn=None),
    Setting("output_buffer_max", positive_int, 64 << 20, ("--output-buffer-max",),
            "Most bytes of unsent response a connection buffers (memory and spill file); beyond this "
            "the app's body is suspended until the client has taken half (write() waits instead).",
            "BYTES", gunicorn=None),
    Setting("output_spill_budget", non_negative_int, 256 << 20, ("--output-spill-budget",),
            "Most bytes of response output one worker keeps spilled in spool_dir, all its connections "
            "together; past it, output waits in memory up to output_buffer_memory, then the app's "
            "writes wait for the client. 0 never spills. The default, 256 MiB, is four connections at "
            "output_buffer_max: clients that never read cannot fill the disk (RAM on a tmpfs /tmp); "
            "workers times this must fit in spool_dir.", "BYTES", gunicorn=None),
    Setting("spool_dir", optional_string, None, ("--spool-dir",),
            "Directory for chunked request bodies over 1 MiB and spilled response output; default: the "
            "system temp directory.", "DIR", gunicorn=None),
    Setting("tmp_upload_dir", optional_string, None, (),
            "gunicorn's name for spool_dir (used when spool_dir is unset).", "DIR"),
    Setting("sendfile", boolean_on_by_default, True, ("--sendfile",),
            "Send wsgi.file_wrapper files with os.sendfile; --no-sendfile reads and writes them instead."),
]
