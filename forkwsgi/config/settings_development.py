"""Development and checks: --reload, --check-config, --print-config."""
from forkwsgi.config.setting import Setting
from forkwsgi.config.validators import boolean, files_or_patterns, reload_engine

ROWS = [
    Setting("reload", boolean, False, ("--reload",),
            "Development: restart the workers when a file of the app (any imported module), the config file or "
            "a reload_extra_files entry changes; an app that fails to import serves its traceback to loopback "
            "clients instead of exiting. Not with --preload."),
    Setting("reload_extra_files", files_or_patterns, [], ("--reload-extra-file",),
            "With --reload, also watch this file (templates, data), or the files a glob pattern matches "
            "(templates/**/*.html) when the config loads. Repeat for several.", "FILE",
            "same: a pattern's files are those present at start and at each reload"),
    Setting("reload_engine", reload_engine, "auto", ("--reload-engine",),
            "How --reload watches: 'inotify' (the watchfiles package), 'poll' (stat every second) or 'auto' "
            "(inotify when watchfiles is installed).", "ENGINE"),
    Setting("check_config", boolean, False, ("--check-config",),
            "Load the config and import the app, then exit (0 if fine). With a config written for "
            "gunicorn, first lists how each of its settings is answered here."),
    Setting("print_config", boolean, False, ("--print-config",),
            "Print the effective settings as a config file, each annotated with where it came from, "
            "then exit."),
]
