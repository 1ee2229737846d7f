"""UnixStreamServer and UnixDatagramServer (netserv.unix): servers on a path.

Like the stdlib, server_close() leaves the socket file by default; with
cleanup_socket it removes it, but only in the process that bound it and only
if it is still the file it created.
"""

from __future__ import annotations

import os
import socket
import stat
import threading

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


@pytest.mark.parametrize("impl", support.IMPLS)
@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_close_then_unlink_works_as_with_the_standard_module(
        impl: str, transport: str) -> None:
    """The usual clean-up of a program written for socketserver: by default
    server_close() leaves the file, so the program's own unlink() finds it."""
    server = support.make("sync", transport, impl)
    path = server.server_address
    try:
        server.server_close()
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        os.unlink(path)  # raises FileNotFoundError if server_close() removed it
    finally:
        demo.cleanup(server)


@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_cleanup_socket_removes_its_socket_file(transport: str) -> None:
    server = support.make("sync", transport, "netserv", cleanup_socket=True)
    path = server.server_address
    try:
        with support.serving(server):
            assert support.exchange(server) == b"hello\n"
        assert not os.path.exists(path)
    finally:
        demo.cleanup(server)


@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_cleanup_socket_leaves_an_unrelated_file_alone(transport: str) -> None:
    server = support.make("sync", transport, "netserv", cleanup_socket=True)
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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
@pytest.mark.parametrize("cleanup_socket", [False, True])
@pytest.mark.parametrize("transport", UNIX_TRANSPORTS)
def test_unix_server_closed_in_a_forked_child_still_serves_in_the_parent(
        transport: str, cleanup_socket: bool) -> None:
    """A child that inherits the server and closes it (as any forked worker
    that cleans up does) leaves the parent's socket file in place, even when
    the server removes its file on close."""
    server = support.make("sync", transport, "netserv", cleanup_socket=cleanup_socket)
    path = server.server_address
    try:
        pid = os.fork()  # before any thread of this test exists
        if pid == 0:  # the child: close its copy and leave at once
            code = 0
            try:
                server.server_close()
            except BaseException:
                code = 1
            os._exit(code)
        _pid, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.path.exists(path)
        loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
        loop.start()
        try:  # a new client finds the server at its path
            assert support.exchange(server) == b"hello\n"
        finally:
            server.shutdown()
            loop.join()
        server.server_close()  # the binding process removes the file, if asked to
        assert os.path.exists(path) is not cleanup_socket
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
        cls = type(cls.__name__, (cls,), {"cleanup_socket": True})
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
