"""UnixStreamServer and UnixDatagramServer (netserv.unix): servers on a path.

netserv removes its socket file in server_close() (the stdlib leaves it),
but only the file it created.
"""

from __future__ import annotations

import os
import socket

import pytest

import support
from netserv.lab import demo

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX here")

UNIX_TRANSPORTS = ["unix", "unix-dgram"]


@pytest.mark.parametrize("impl", support.IMPLS)
@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_echoes_on_a_path(impl: str, transport: str) -> None:
    server = support.make("sync", transport, impl)
    assert server.address_family == socket.AF_UNIX
    with support.serving(server):
        assert os.path.exists(server.server_address)
        assert support.exchange(server) == b"hello\n"


@pytest.mark.parametrize("impl, removed", [("netserv", True), ("stdlib", False)])
@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_close_removes_its_socket_file(impl: str, removed: bool,
                                                   transport: str) -> None:
    server = support.make("sync", transport, impl)
    path = server.server_address
    try:
        server.server_close()
        assert os.path.exists(path) is not removed
    finally:
        demo.cleanup(server)


@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_close_leaves_an_unrelated_file_alone(transport: str) -> None:
    server = support.make("sync", transport, "netserv")
    path = server.server_address
    try:
        os.unlink(path)
        with open(path, "w") as f:  # someone else's file now has that name
            f.write("not a socket")
        server.server_close()
        with open(path) as f:
            assert f.read() == "not a socket"
    finally:
        demo.cleanup(server)


@pytest.mark.parametrize("impl", support.IMPLS)
@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_bind_twice_raises_and_leaks_nothing(impl: str, transport: str) -> None:
    first = support.make("sync", transport, impl)
    with support.closing(first):
        cls = support.server_class("sync", transport, impl)
        fds_before = support.open_fds()
        with pytest.raises(OSError):
            cls(first.server_address, demo.default_handler("sync", transport))
        assert support.open_fds().keys() == fds_before.keys()
        # The failed server did not remove the first one's socket file.
        assert os.path.exists(first.server_address)
        with support.serving(first):
            assert support.exchange(first) == b"hello\n"


@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_accepts_a_bytes_path(transport: str) -> None:
    with support.short_tempdir() as tmp:
        path = os.path.join(tmp, "s.sock").encode()
        cls = support.server_class("sync", transport, "netserv")
        server = cls(path, demo.default_handler("sync", transport))
        server.demo_transport = transport
        with support.serving(server):
            assert support.exchange(server) == b"hello\n"
        assert not os.path.exists(path)


@pytest.mark.skipif(not os.path.exists("/proc/net/unix"), reason="abstract names are Linux-only")
@pytest.mark.parametrize("impl", support.IMPLS)
def test_unix_server_abstract_address_has_no_file_to_remove(impl: str) -> None:
    name = f"\0netserv-test-{os.getpid()}-{impl}"
    cls = support.server_class("sync", "unix", impl)
    server = cls(name, demo.StreamEchoHandler)
    server.demo_transport = "unix"
    with support.serving(server):
        assert support.exchange(server) == b"hello\n"
