"""Listening sockets: parse bind addresses, bind them, or adopt inherited fds."""
import errno
import os
import socket
import stat

from forkwsgi.config.addresses import parse_address
from forkwsgi.errors import ConfigError


class Listener:
    """A listening socket and how it was named, so it can be logged and cleaned up."""

    def __init__(self, sock, name, path=None, owned=True):
        self.sock = sock
        self.name = name  # HOST:PORT or unix:PATH, then " (fd N)" when inherited; see __repr__
        self.path = path  # unix socket path we created, to unlink on exit
        self.owned = owned  # bound from our own bind setting (here or by the master before a USR2)
        self.tls = False  # the workers serve TLS on it (--certfile): a TCP one is shown as https://

    def fileno(self):
        return self.sock.fileno()

    def stop_admitting(self):
        """Let the kernel complete no new connections, keeping the ones already queued.

        On a full stop the workers drain the accept queue; a connection the
        kernel completed after that would be reset with its request unread.
        A socket filter that drops every packet to the listener stops new
        handshakes (the client's SYNs go unanswered, then meet a refusal once
        the socket closes) while connections already queued stay intact.
        Only for TCP sockets of our own: an inherited one outlives us.
        """
        if not self.owned or self.sock.family == socket.AF_UNIX:
            return
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, _drop_all_program())
        except OSError:
            pass

    def close(self, unlink):
        self.sock.close()
        if unlink and self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def __repr__(self):
        """How logs, `ctl status` and metric labels name it: a URL for TCP, unix:PATH for a unix socket."""
        if self.sock.family == socket.AF_UNIX:
            return self.name
        return ("https://" if self.tls else "http://") + self.name


_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
_drop_all = []  # the program's memory, kept alive once built


def _drop_all_program():
    """A classic BPF program of one instruction, "return 0": keep no bytes, drop the packet."""
    if not _drop_all:
        import ctypes

        class Instruction(ctypes.Structure):
            _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                        ("k", ctypes.c_uint32)]

        class Program(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Instruction))]

        instructions = (Instruction * 1)(Instruction(0x06, 0, 0, 0))  # BPF_RET | BPF_K, 0
        _drop_all[:] = [instructions, bytes(Program(1, instructions))]
    return _drop_all[1]


def _tcp_sockaddr(host, port):
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError("cannot resolve %s: %s" % (host, exc.strerror)) from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _display(family, sockaddr):
    """The name of a bound address, without a scheme: Listener adds http:// or https:// to a TCP one."""
    if family == socket.AF_UNIX:
        return "unix:" + (sockaddr if isinstance(sockaddr, str) else repr(sockaddr))
    if family == socket.AF_INET6:
        return "[%s]:%d" % sockaddr[:2]
    return "%s:%d" % sockaddr[:2]


def _remove_stale_unix_socket(path):
    """Remove ``path`` if it is a unix socket nobody listens on; refuse to touch anything else."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError("bind unix:%s: path exists and is not a socket" % path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError:
        return
    finally:
        probe.close()
    raise ConfigError("bind unix:%s: another server is listening there" % path)


def bind_address(text, cfg):
    """Create, bind and listen one socket for bind string ``text``."""
    kind, *parts = parse_address(text)
    if kind == "fd":
        return adopt_fd(parts[0], cfg)
    if kind == "unix":
        path = parts[0]
        _remove_stale_unix_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(cfg.umask)
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise ConfigError("cannot bind unix:%s: %s" % (path, exc.strerror)) from None
        finally:
            os.umask(old)
        sock.listen(cfg.backlog)
        sock.setblocking(False)
        return Listener(sock, "unix:" + path, path)
    family, sockaddr = _tcp_sockaddr(*parts)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if cfg.reuse_port and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(sockaddr)
        sock.listen(cfg.backlog)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigError("cannot bind %s: %s" % (text, reason)) from None
    sock.setblocking(False)
    return Listener(sock, _display(family, sock.getsockname()))


def adopt_fd(fd, cfg=None):
    """Wrap an inherited listening fd (systemd, fd://N, USR2 re-exec)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError("fd://%d is not a usable socket: %s" % (fd, exc.strerror)) from None
    if sock.type != socket.SOCK_STREAM:
        raise ConfigError("fd://%d is not a stream socket" % fd)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0:
        sock.listen(cfg.backlog if cfg else 2048)
    sock.setblocking(False)
    return Listener(sock, _display(sock.family, sock.getsockname()) + " (fd %d)" % fd, owned=False)


def _sockaddr_key(text):
    """What getsockname() of a socket bound for ``text`` returns (address, port or path)."""
    kind, *parts = parse_address(text)
    if kind == "unix":
        return parts[0]
    if kind == "tcp":
        return _tcp_sockaddr(*parts)[1][:2]
    try:  # fd://N: the address of whatever fd N is, looked at through a duplicate
        with socket.socket(fileno=os.dup(parts[0])) as probe:
            return _bound_key(probe)
    except OSError:
        return None


def _bound_key(sock):
    address = sock.getsockname()
    return address if isinstance(address, str) else address[:2]


def mark_tls(listeners, cfg):
    """Record whether the workers serve TLS on these sockets (at start, and at a reload that may change it)."""
    for listener in listeners:
        listener.tls = bool(cfg.certfile)
    return listeners


def create_listeners(cfg, inherited_fds=(), systemd_fds=()):
    """The listening sockets for ``cfg.bind``, reusing inherited ones where the address matches."""
    if systemd_fds:
        return mark_tls([adopt_fd(fd, cfg) for fd in systemd_fds], cfg)
    inherited = [adopt_fd(fd, cfg) for fd in inherited_fds]
    listeners = []
    try:
        for text in cfg.bind:
            key = _sockaddr_key(text)
            match = next((l for l in inherited if key is not None and _bound_key(l.sock) == key), None)
            if match is None:
                listeners.append(bind_address(text, cfg))
                continue
            inherited.remove(match)
            match.owned = parse_address(text)[0] != "fd"  # ours, handed over by a USR2 or a reload
            if isinstance(key, str):
                match.path = key
            listeners.append(match)
    except Exception:
        for listener in listeners + inherited:
            listener.close(unlink=False)
        raise
    for leftover in inherited:
        leftover.close(unlink=False)
    return mark_tls(listeners, cfg)
