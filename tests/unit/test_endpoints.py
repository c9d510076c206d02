"""The one binder of the master's listening sockets (master/sockets.py), as the app's listeners and the
observer's endpoints use it, each with its own wording and unix socket permissions."""
import os
import socket
import stat
from types import SimpleNamespace

import pytest

from forkwsgi.errors import ConfigError
from forkwsgi.master.sockets import bind_address, bind_endpoint
from forkwsgi.observe.endpoints import Endpoints


def listener_cfg(**values):
    return SimpleNamespace(**dict(dict(backlog=16, umask=0o022, reuse_port=False), **values))


def stale_socket(path):
    """A unix socket file nobody listens on (its server died)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()


def live_socket(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def test_an_endpoint_replaces_a_stale_socket_and_gets_its_mode(tmp_path):
    path = tmp_path / "ctl.sock"
    stale_socket(path)
    sock, bound = bind_endpoint("unix:%s" % path, "control socket", 0o660)
    try:
        assert bound == str(path) and stat.S_IMODE(os.stat(path).st_mode) == 0o660
        assert sock.getblocking() is False
    finally:
        sock.close()


def test_an_endpoint_refuses_a_live_socket_and_a_file_in_its_own_words(tmp_path):
    live = live_socket(tmp_path / "live.sock")
    try:
        with pytest.raises(ConfigError, match="control socket .* is in use by another running server"):
            bind_endpoint("unix:%s" % (tmp_path / "live.sock"), "control socket")
    finally:
        live.close()
    (tmp_path / "file").write_text("data")
    with pytest.raises(ConfigError, match="metrics address .* exists and is not a socket; refusing to replace it"):
        bind_endpoint("unix:%s" % (tmp_path / "file"), "metrics address")
    assert (tmp_path / "file").read_text() == "data"


def test_an_app_listener_replaces_a_stale_socket_and_refuses_a_live_one_in_its_own_words(tmp_path):
    path = tmp_path / "app.sock"
    stale_socket(path)
    listener = bind_address("unix:%s" % path, listener_cfg())
    try:
        assert listener.path == str(path) and str(listener) == "unix:%s" % path
        with pytest.raises(ConfigError, match="another server is listening there"):
            bind_address("unix:%s" % path, listener_cfg())
    finally:
        listener.close(unlink=True)
    (tmp_path / "file").write_text("data")
    with pytest.raises(ConfigError, match="path exists and is not a socket"):
        bind_address("unix:%s" % (tmp_path / "file"), listener_cfg())


def test_a_busy_tcp_port_is_refused_by_both(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    address = "127.0.0.1:%d" % busy.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match="cannot bind %s: address already in use" % address):
            bind_address(address, listener_cfg())
        with pytest.raises(ConfigError, match="metrics address %s: cannot bind: " % address):
            bind_endpoint(address, "metrics address")
    finally:
        busy.close()


def test_the_observer_binds_with_the_binder_it_is_given(tmp_path):
    asked = []

    def binder(address, what, mode):
        asked.append((address, what, mode))
        return bind_endpoint(address, what, mode)
    cfg = SimpleNamespace(metrics_bind="127.0.0.1:0", control_socket=str(tmp_path / "ctl.sock"),
                          control_socket_mode=0o600)
    endpoints = Endpoints(lambda: "", lambda line: {})
    endpoints.open(cfg, {}, binder)
    try:
        assert asked == [("127.0.0.1:0", "metrics address", 0o600),
                         ("unix://%s" % (tmp_path / "ctl.sock"), "control socket", 0o600)]
        assert endpoints.control_path == str(tmp_path / "ctl.sock") and os.path.exists(endpoints.control_path)
    finally:
        endpoints.close(unlink=True)
    assert not os.path.exists(tmp_path / "ctl.sock")
