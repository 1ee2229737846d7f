"""UDPServer (netserv.udp): one datagram is one request, truncation made visible."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import netserv
from netserv.handlers import DatagramRequestHandler

import support

#: A small max_packet_size, so that an "oversized" datagram stays small.
SMALL_PACKET = 100


def inspect_handler(impl: str) -> type:
    """A DatagramRequestHandler of ``impl`` that records what the request looked like."""
    return type("Inspect", (support.module(impl).DatagramRequestHandler,),
                {"handle": _inspect})


def _inspect(self: DatagramRequestHandler) -> None:
    """Reply with nothing; record what the request looked like."""
    data, sock = self.request
    self.server.seen.append({
        "request_type": type(self.request), "data_is_bytes": isinstance(data, bytes),
        "is_server_socket": sock is self.server.socket, "data": bytes(data),
        "packet_is_data": self.packet is data,
        "truncated_attr": getattr(self, "truncated", "absent"),
        "is_truncated": netserv.is_truncated(data),
    })


def inspect_one(impl: str, transport: str, payload: bytes, **attributes: Any) -> dict[str, Any]:
    server = support.make("sync", transport, impl, handler=inspect_handler(impl),
                          **attributes)
    server.seen = []
    with support.closing(server), support.client(server) as sock:
        sock.send(payload)
        server.handle_request()
        assert sock.recv(65536) == b""  # the (empty) reply datagram
    (seen,) = server.seen
    return seen


@pytest.mark.parametrize("impl", support.IMPLS)
@pytest.mark.parametrize("transport", ["udp", "unix-dgram"])
def test_udp_server_request_is_data_and_server_socket(impl: str, transport: str) -> None:
    seen = inspect_one(impl, transport, b"ping")
    assert seen["request_type"] is tuple
    assert seen["data_is_bytes"] and seen["is_server_socket"] and seen["packet_is_data"]
    assert seen["data"] == b"ping"


@pytest.mark.parametrize("impl", support.IMPLS)
def test_udp_server_has_no_listen_and_a_datagram_socket(impl: str) -> None:
    server = support.make("sync", "udp", impl)
    with support.closing(server):
        assert server.socket.type == socket.SOCK_DGRAM
        assert server.max_packet_size == 8192
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0


@pytest.mark.parametrize("impl, truncated", [("netserv", True), ("stdlib", "absent")])
@pytest.mark.parametrize("transport", ["udp", "unix-dgram"])
def test_udp_server_oversized_datagram_is_marked_truncated(
        impl: str, truncated: Any, transport: str) -> None:
    """netserv flags the cut; the stdlib hands over the first bytes silently."""
    payload = bytes(range(256)) * 2
    seen = inspect_one(impl, transport, payload, max_packet_size=SMALL_PACKET)
    assert seen["data"] == payload[:SMALL_PACKET]
    assert seen["truncated_attr"] == truncated
    assert seen["is_truncated"] is (impl == "netserv")


@pytest.mark.parametrize("size", [SMALL_PACKET - 1, SMALL_PACKET])
def test_udp_server_datagram_that_fits_is_not_truncated(size: int) -> None:
    seen = inspect_one("netserv", "udp", b"x" * size, max_packet_size=SMALL_PACKET)
    assert seen["data"] == b"x" * size
    assert seen["truncated_attr"] is False and seen["is_truncated"] is False


def test_truncated_datagram_is_bytes() -> None:
    data = netserv.TruncatedDatagram(b"abc")
    assert data == b"abc" and data.decode() == "abc" and isinstance(data, bytes)
    assert netserv.is_truncated(data) and not netserv.is_truncated(b"abc")


@pytest.mark.parametrize("impl", support.IMPLS)
def test_udp_server_keeps_message_boundaries(impl: str) -> None:
    class Count(support.module(impl).BaseRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(str(len(data)).encode(), self.client_address)

    server = support.make("sync", "udp", impl, handler=Count)
    with support.closing(server), support.client(server) as sock:
        for payload in (b"a", b"bb", b"ccc"):
            sock.send(payload)
        replies = []
        for _ in range(3):
            server.handle_request()
            replies.append(sock.recv(100))
    assert replies == [b"1", b"2", b"3"]
