"""USR2: a new master from the installed code, handed this one's listening sockets.

Both masters serve side by side until the operator stops the old one (WINCH,
then QUIT or TERM). While the pair runs, neither removes the socket files the
other still serves, and the new one cannot itself upgrade (its parent still
runs). A new master that dies leaves the old one serving.
"""
import os
import sys

from forkwsgi.logs import log
from forkwsgi.master import systemd
from forkwsgi.master.sockets import create_listeners
from forkwsgi.process import flush_std

# Starts FORKWSGI_FDS (the listeners a USR2 hands to the new master) when they came from socket activation:
# the new master serves them as they are, whatever `bind` says (LISTEN_PID could not name it).
ACTIVATED_MARK = "activated:"


def passed_fds():
    """(fds, came from socket activation) of the listeners the master we replace handed over (USR2)."""
    passed = os.environ.pop("FORKWSGI_FDS", "")
    activated = passed.startswith(ACTIVATED_MARK)
    if activated:
        passed = passed[len(ACTIVATED_MARK):]
    return [int(fd) for fd in passed.split(",") if fd], activated


def open_listeners(cfg):
    """(listeners, from socket activation) at start: those the master we replace handed over (USR2),
    else systemd's, else bound from `bind`."""
    inherited, activated = passed_fds()
    if activated:
        systemd_fds, inherited = inherited, []  # socket activation's listeners, passed on by a USR2
    else:
        systemd_fds = [] if inherited else systemd.listen_fds()
    return create_listeners(cfg, inherited, systemd_fds), bool(systemd_fds)


class Upgrade:
    """This master's side of a USR2 pair: the new master it started, or the old one that started it."""

    def __init__(self, pid, pidfile=None):
        self.pid = pid
        self.pidfile = pidfile
        self.new_master = 0  # pid of the new master we started, while it runs
        self.old_master = int(os.environ.pop("FORKWSGI_PARENT_PID", "0") or 0)  # the master that started us

    def old_master_runs(self):
        return bool(self.old_master) and os.getppid() == self.old_master

    def pair_runs(self):
        """Whether another master of this USR2 pair still runs (and serves our sockets)."""
        return bool(self.new_master) or self.old_master_runs()

    def start(self, listeners, activated, extra_env, pre_exec, start_dir, argv):
        """Fork and exec the new master; in the parent, return at once."""
        if self.new_master:
            log.warning("USR2 ignored: an upgrade (pid %d) is already running", self.new_master)
            return
        if self.old_master_runs():
            log.warning("USR2 ignored: the master that started this one (pid %d) still runs", self.old_master)
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
            self.new_master = pid
            log.info("started new master %d; stop this one (WINCH, then QUIT or TERM) once it serves", pid)
            return
        environ = dict(os.environ)
        environ["FORKWSGI_FDS"] = (ACTIVATED_MARK if activated else "") + ",".join(
            str(l.fileno()) for l in listeners)
        environ["FORKWSGI_PARENT_PID"] = str(self.pid)
        environ.update(extra_env)
        for listener in listeners:
            os.set_inheritable(listener.fileno(), True)
        try:
            pre_exec()
            os.chdir(start_dir)
            os.execve(sys.executable, [sys.executable, "-m", "forkwsgi"] + list(argv), environ)
        except BaseException:
            log.exception("re-exec failed")
            flush_std()
            os._exit(1)

    def reaped(self, pid, code):
        """Whether ``pid`` was the new master (it died: we keep serving, under our own name again)."""
        if not pid or pid != self.new_master:
            return False
        log.error("new master %d exited (code %d); this master keeps serving", pid, code)
        self.new_master = 0
        if self.pidfile is not None:
            self.pidfile.unmark_old()
        return True
