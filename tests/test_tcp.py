"""TCPServer (netserv.tcp): binding, socket options, the listening socket, per-request close.

Every test runs on both modules: netserv must behave as socketserver does.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

import support
from netserv.lab import demo
from netserv.handlers import BaseRequestHandler

pytestmark = pytest.mark.parametrize("impl", support.IMPLS)


def test_tcp_server_binds_port_zero_and_records_the_real_address(impl: str) -> None:
    server = support.make("sync", "tcp", impl)
    with support.closing(server):
        host, port = server.server_address
        assert host == "127.0.0.1" and port != 0
        assert server.socket.getsockname() == server.server_address
        assert server.fileno() == server.socket.fileno()
        assert server.socket.type == socket.SOCK_STREAM


def test_tcp_server_bind_failure_raises_and_leaks_no_socket(impl: str) -> None:
    first = support.make("sync", "tcp", impl)
    with support.closing(first):
        cls = support.server_class("sync", "tcp", impl)
        fds_before = support.open_fds()
        with pytest.raises(OSError):
            cls(first.server_address, demo.StreamEchoHandler)
        assert support.open_fds().keys() == fds_before.keys()
        # The first server is untouched by the second's failure.
        with support.serving(first):
            assert support.exchange(first) == b"hello\n"


@pytest.mark.parametrize("option, attribute", [
    (socket.SO_REUSEADDR, "allow_reuse_address"),
    (socket.SO_REUSEPORT, "allow_reuse_port"),
])
@pytest.mark.parametrize("enabled", [False, True])
def test_tcp_server_reuse_attributes_set_the_socket_options(
        impl: str, option: int, attribute: str, enabled: bool) -> None:
    server = support.make("sync", "tcp", impl, **{attribute: enabled})
    with support.closing(server):
        assert bool(server.socket.getsockopt(socket.SOL_SOCKET, option)) is enabled


def test_tcp_server_bind_and_activate_false_leaves_it_to_the_caller(impl: str) -> None:
    cls = support.server_class("sync", "tcp", impl)
    server = cls(("127.0.0.1", 0), demo.StreamEchoHandler, bind_and_activate=False)
    with support.closing(server):
        assert server.socket.getsockname()[1] == 0  # not bound yet
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        server.server_bind()
        server.server_activate()
        assert server.server_address[1] != 0
        server.demo_transport = "tcp"
        with support.serving(server):
            assert support.exchange(server) == b"hello\n"


def test_tcp_server_request_is_the_accepted_socket(impl: str) -> None:
    seen: list[Any] = []

    class Inspect(BaseRequestHandler):
        def handle(self) -> None:
            seen.append((type(self.request), self.request.getpeername() == self.client_address))

    server = support.make("sync", "tcp", impl, handler=Inspect)
    with support.closing(server), support.client(server) as sock:
        server.handle_request()
        assert support.recv_all(sock) == b""
    assert seen == [(socket.socket, True)]


def test_tcp_server_shutdown_request_sends_eof_even_if_the_socket_is_shared(impl: str) -> None:
    """What a forked child relies on: another descriptor of the same connection
    stays open, yet the client reads end-of-file."""
    kept: list[socket.socket] = []

    class KeepsADuplicate(BaseRequestHandler):
        def handle(self) -> None:
            kept.append(self.request.dup())
            self.request.sendall(b"bye\n")

    server = support.make("sync", "tcp", impl, handler=KeepsADuplicate)
    try:
        with support.closing(server), support.client(server) as sock:
            server.handle_request()
            assert support.recv_all(sock) == b"bye\n"  # EOF arrived: no timeout
    finally:
        for duplicate in kept:
            duplicate.close()


def test_tcp_server_request_queue_size_is_the_listen_backlog(impl: str) -> None:
    """A sync server not accepting: connections beyond the backlog are not
    completed by the kernel (seen as a connect timeout)."""
    server = support.make("sync", "tcp", impl, request_queue_size=1)
    clients: list[socket.socket] = []
    try:
        completed = 0
        for _ in range(8):
            sock = socket.socket()
            clients.append(sock)
            sock.settimeout(0.2)
            try:
                sock.connect(server.server_address)
                completed += 1
            except TimeoutError:
                break
        # Linux completes backlog + 1 handshakes; 8 would mean no limit.
        assert completed < 8
    finally:
        for sock in clients:
            sock.close()
        demo.cleanup(server)
