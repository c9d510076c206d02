"""The error log and the access log."""
from forkwsgi.config.setting import Setting
from forkwsgi.config.validators import any_dict, boolean, log_format, log_level, optional_string

ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

ROWS = [
    Setting("errorlog", optional_string, "-", ("--error-logfile", "--log-file"),
            "Error log file; '-' is stderr.", "FILE"),
    Setting("loglevel", log_level, "info", ("--log-level",), "Error log level.", "LEVEL"),
    Setting("accesslog", optional_string, None, ("--access-logfile",),
            "Access log file; '-' is stdout. Off when unset.", "FILE"),
    Setting("log_health", boolean, False, ("--log-health",),
            "Write health-path requests to the access log too.", gunicorn=None),
    Setting("access_log_format", optional_string, ACCESS_LOG_FORMAT, ("--access-logformat",),
            "Access log line format, with gunicorn's atoms (h l u t r m U q H s b B f a T D M L p "
            "{header}i {header}o {var}e) and Q, the queue time in microseconds.", "FORMAT"),
    Setting("log_format", log_format, "text", ("--log-format",),
            "text, or json: the error log and the access log are one JSON object a line, with named "
            "fields; what the client sent is escaped (access_log_format is not used then).",
            "FORMAT", gunicorn=None),
    Setting("capture_output", boolean, False, ("--capture-output",),
            "Send the app's stdout and stderr to the error log file."),
    Setting("enable_stdio_inheritance", boolean, False, ("-R", "--enable-stdio-inheritance"),
            "With --daemon, keep stdout and stderr instead of sending them to /dev/null."),
    Setting("logconfig", optional_string, None, ("--log-config",),
            "A logging.config.fileConfig file (ini) applied after the built-in logging; its loggers "
            "'gunicorn.error' and 'gunicorn.access' (or 'forkwsgi') receive the error and access logs.",
            "FILE"),
    Setting("logconfig_dict", any_dict, {}, (),
            "A logging.config.dictConfig dict, applied like logconfig."),
    Setting("logconfig_json", optional_string, None, ("--log-config-json",),
            "A JSON file of a dictConfig dict, applied like logconfig.", "FILE"),
    Setting("syslog", boolean, False, ("--log-syslog",),
            "Also send the error log (and the access log) to syslog at syslog_addr."),
    Setting("syslog_addr", optional_string, "udp://localhost:514", ("--log-syslog-to",),
            "Syslog address: udp://HOST:PORT, tcp://HOST:PORT or unix://PATH.", "ADDRESS"),
    Setting("syslog_prefix", optional_string, None, ("--log-syslog-prefix",),
            "Program name in syslog lines; defaults to the process name.", "PREFIX"),
    Setting("syslog_facility", optional_string, "user", ("--log-syslog-facility",),
            "Syslog facility name (user, daemon, local0...).", "FACILITY"),
    Setting("disable_redirect_access_to_syslog", boolean, False, ("--disable-redirect-access-to-syslog",),
            "With syslog, keep access lines out of syslog."),
]
