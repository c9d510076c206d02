"""Listening sockets: bind them, or adopt inherited fds; close them at a stop.

bind_socket is the one binder of every listening socket the server opens:
the app's (bind_address, for `bind`) and the observer's (bind_endpoint, for
--metrics-bind and --control-socket, passed to observe/ by the arbiter). Each
caller keeps its own wording of errors and its own unix socket permissions.
"""
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
        A socket filter that drops each new SYN to the listener stops new
        handshakes (the client's SYNs go unanswered, then meet a refusal once
        the socket closes) while connections already queued stay intact. It
        drops only SYNs: a handshake already answered must still complete (a
        client whose final ACK met a drop-all filter thinks it is connected,
        sends its request and is reset when the listeners close), and a
        connection the kernel completes just after the filter is set copies
        it (sk_clone_lock) and must not go deaf to its client.
        Only for TCP sockets of our own: an inherited one outlives us.
        """
        if not self.owned or self.sock.family == socket.AF_UNIX:
            return
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, _drop_syn_program())
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
_drop_syn = []  # the program's memory, kept alive once built


def _drop_syn_program():
    """A classic BPF program that drops a bare SYN (a new handshake) and keeps every other packet.

    A TCP socket's filter sees the packet from its TCP header on: byte 13 holds the flags."""
    if not _drop_syn:
        import ctypes

        class Instruction(ctypes.Structure):
            _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                        ("k", ctypes.c_uint32)]

        class Program(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Instruction))]

        instructions = (Instruction * 5)(
            Instruction(0x30, 0, 0, 13),          # BPF_LD | BPF_B | BPF_ABS: A = the TCP flags
            Instruction(0x54, 0, 0, 0x12),        # BPF_ALU | BPF_AND | BPF_K: A &= SYN | ACK
            Instruction(0x15, 0, 1, 0x02),        # BPF_JMP | BPF_JEQ | BPF_K: a SYN without ACK?
            Instruction(0x06, 0, 0, 0),           # BPF_RET | BPF_K: yes, drop it
            Instruction(0x06, 0, 0, 0xFFFFFFFF))  # BPF_RET | BPF_K: no, keep all of it
        _drop_syn[:] = [instructions, bytes(Program(5, instructions))]
    return _drop_syn[1]


def _tcp_sockaddr(host, port, name, refuse):
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise refuse("resolve", name, exc) from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _display(family, sockaddr):
    """The name of a bound address, without a scheme: Listener adds http:// or https:// to a TCP one."""
    if family == socket.AF_UNIX:
        return "unix:" + (sockaddr if isinstance(sockaddr, str) else repr(sockaddr))
    if family == socket.AF_INET6:
        return "[%s]:%d" % sockaddr[:2]
    return "%s:%d" % sockaddr[:2]


def _remove_stale_unix_socket(path, refuse, follow_symlinks):
    """Remove ``path`` if it is a unix socket nobody listens on; refuse to touch anything else.

    A probe that fails otherwise than by refusal is ``refuse("probe", ...)``'s to judge: an
    exception to raise, or None to go on (the bind then fails if the path is taken).
    """
    try:
        mode = os.stat(path, follow_symlinks=follow_symlinks).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise refuse("not a socket", path, None)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)  # a live server whose backlog is full does not hold the start forever
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        _unlink_quietly(path)  # stale: left by a server that died
        return
    except OSError as exc:
        problem = refuse("probe", path, exc)
        if problem is not None:
            raise problem from None
        return
    finally:
        probe.close()
    raise refuse("in use", path, None)


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def bind_socket(address, refuse, backlog, umask=None, mode=None, reuse_port=False, follow_symlinks=True):
    """(listening non-blocking socket, unix path or None) for ``address`` (HOST:PORT, [IPV6]:PORT, unix:PATH).

    The one binder of the master's listening sockets: the app's (bind_address) and the observer's
    (bind_endpoint). A unix path holding a stale socket is replaced; one a live server answers, or
    that is not a socket, is refused. ``refuse(problem, name, error)`` makes each caller's exception
    (its own wording); ``umask`` and ``mode`` set a unix socket's permissions.
    """
    kind, *parts = parse_address(address)
    if kind == "unix":
        path = parts[0]
        _remove_stale_unix_socket(path, refuse, follow_symlinks)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(umask) if umask is not None else None
        try:
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise refuse("bind unix", path, exc) from None
        finally:
            if old is not None:
                os.umask(old)
        if mode is not None:
            os.chmod(path, mode)
    else:
        family, sockaddr = _tcp_sockaddr(parts[0], parts[1], address, refuse)
        path = None
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            sock.close()
            raise refuse("bind tcp", address, exc) from None
    try:
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise refuse("bind " + kind, path or address, exc) from None
    sock.setblocking(False)
    return sock, path


def _refuse_listener(problem, name, exc):
    """The errors of the app's listeners, as `bind` names them."""
    if problem == "probe":
        return None  # not proof of a live server: the bind decides
    if problem == "resolve":
        return ConfigError("cannot resolve %s: %s" % (parse_address(name)[1], exc.strerror))
    if problem == "not a socket":
        return ConfigError("bind unix:%s: path exists and is not a socket" % name)
    if problem == "in use":
        return ConfigError("bind unix:%s: another server is listening there" % name)
    if problem == "bind unix":
        return ConfigError("cannot bind unix:%s: %s" % (name, exc.strerror))
    reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
    return ConfigError("cannot bind %s: %s" % (name, reason))


def bind_address(text, cfg):
    """Create, bind and listen one socket for bind string ``text``."""
    kind, *parts = parse_address(text)
    if kind == "fd":
        return adopt_fd(parts[0], cfg)
    sock, path = bind_socket(text, _refuse_listener, cfg.backlog, umask=cfg.umask, reuse_port=cfg.reuse_port)
    if path:
        return Listener(sock, "unix:" + path, path)
    return Listener(sock, _display(sock.family, sock.getsockname()))


def bind_endpoint(address, what, mode=0o600):
    """(socket, unix path or None) for an observer's listener (the metrics address, the control socket).

    Passed to the observer by the arbiter, so observe/ binds with this module's binder without
    importing the master. ``what`` names the setting in errors; a unix socket gets ``mode``.
    """
    def refuse(problem, name, exc):
        if problem == "resolve":
            return ConfigError("%s %s: %s" % (what, name, exc))
        if problem == "not a socket":
            return ConfigError("%s %s exists and is not a socket; refusing to replace it" % (what, name))
        if problem == "in use":
            return ConfigError("%s %s is in use by another running server (another forkwsgi?); "
                               "refusing to start" % (what, name))
        if problem == "probe":
            return ConfigError("%s %s: %s" % (what, name, exc.strerror))
        return ConfigError("%s %s: cannot bind: %s" % (what, name, exc.strerror))
    return bind_socket(address, refuse, 64, umask=0o177, mode=mode, follow_symlinks=False)


def adopt_fd(fd, cfg):
    """Wrap an inherited listening fd (systemd, fd://N, USR2 re-exec)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError("fd://%d is not a usable socket: %s" % (fd, exc.strerror)) from None
    if sock.type != socket.SOCK_STREAM:
        raise ConfigError("fd://%d is not a stream socket" % fd)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0:
        sock.listen(cfg.backlog)
    sock.setblocking(False)
    return Listener(sock, _display(sock.family, sock.getsockname()) + " (fd %d)" % fd, owned=False)


def _sockaddr_key(text):
    """What getsockname() of a socket bound for ``text`` returns (address, port or path)."""
    kind, *parts = parse_address(text)
    if kind == "unix":
        return parts[0]
    if kind == "tcp":
        return _tcp_sockaddr(parts[0], parts[1], text, _refuse_listener)[1][:2]
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


def close_listeners(listeners, admit_none, unlink):
    """At a stop: close the listeners, first letting the kernel complete no new connection when ``admit_none``
    (the workers drain what is queued), and removing their socket files when ``unlink``."""
    for listener in listeners:
        if admit_none:
            listener.stop_admitting()
        listener.close(unlink=unlink)
