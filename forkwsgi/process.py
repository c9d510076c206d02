"""Process-level chores: titles, privilege drop, daemonizing, pid files."""
import grp
import os
import pwd
import sys

from forkwsgi.errors import ConfigError

try:
    from setproctitle import setproctitle as _setproctitle
except ImportError:  # a missing optional C extension must not stop the server
    _setproctitle = None  # type: ignore[assignment]


def set_title(role, cfg):
    if _setproctitle is not None:
        _setproctitle("forkwsgi: %s [%s]" % (role, cfg.app_name))


def resolve_ids(user, group):
    """(uid, gid) for the --user/--group settings; None where unset."""
    uid = gid = None
    if user is not None:
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except KeyError:
            raise ConfigError("no such user %r" % user) from None
        uid, gid = entry.pw_uid, entry.pw_gid
    if group is not None:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError("no such group %r" % group) from None
    return uid, gid


def drop_privileges(uid, gid):
    """Become uid/gid (group first, while we still may)."""
    if gid is not None and gid != os.getgid():
        if os.getuid() == 0:
            os.setgroups([gid])
        os.setgid(gid)
    if uid is not None and uid != os.getuid():
        if os.getuid() == 0:
            os.initgroups(pwd.getpwuid(uid).pw_name, gid if gid is not None else os.getgid())
        os.setuid(uid)


def daemonize(keep_output=False):
    """Classic double fork: detach from the terminal and session, stdio to /dev/null
    (stdin only with ``keep_output``: enable_stdio_inheritance keeps stdout and stderr)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0,) if keep_output else (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


class PidFile:
    """The master's pid file: written atomically, removed only if it is still ours."""

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def write(self, pid):
        temp = "%s.%d.tmp" % (self.path, pid)
        with open(temp, "w") as handle:
            handle.write("%d\n" % pid)
        os.rename(temp, self.path)

    def rename(self, new_path):
        try:
            os.rename(self.path, new_path)
        except OSError:
            pass
        self.path = new_path

    def mark_old(self):
        """USR2: step aside as NAME.oldbin so the new master can write NAME."""
        self.rename(self.path + ".oldbin")

    def unmark_old(self):
        """The new master is gone: take the name back."""
        if self.path.endswith(".oldbin"):
            self.rename(self.path[:-len(".oldbin")])

    def remove(self, pid):
        try:
            with open(self.path) as handle:
                if int(handle.read().strip() or 0) != pid:
                    return
            os.unlink(self.path)
        except (OSError, ValueError):
            pass


def flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
