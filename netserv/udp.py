"""UDPServer: BaseServer over datagrams.

Theory of operation
-------------------
A datagram server has no connections and no listen(): every datagram that
arrives on its one socket is a request of its own. ``get_request()`` reads one
datagram and returns ``((data, server_socket), client_address)``: the handler
answers with ``server_socket.sendto(reply, client_address)``. There is nothing
to shut down or close per request, and message boundaries are kept: one
``sendto`` on the client is exactly one request here.

A datagram longer than ``max_packet_size`` is cut to that size by the kernel.
The standard module cannot tell; netserv asks the kernel (``MSG_TRUNC`` from
``recvmsg``) and hands the handler a :class:`TruncatedDatagram`, a ``bytes``
with ``truncated = True``, so a handler can refuse it instead of acting on
half a message. Test with :func:`is_truncated`.
"""

from __future__ import annotations

import socket
from typing import Any

from .settings import MAX_BUFFER_SIZE, Setting
from .tcp import TCPServer

__all__ = ["UDPServer", "TruncatedDatagram", "is_truncated"]

#: Largest datagram read whole; longer ones arrive cut (see TruncatedDatagram).
DEFAULT_MAX_PACKET_SIZE = 8192

# recvmsg() reports MSG_TRUNC on Linux and the BSDs; elsewhere (Windows) fall
# back to recvfrom() and truncation stays undetectable, as in the stdlib.
_CAN_DETECT_TRUNCATION = hasattr(socket.socket, "recvmsg") and hasattr(socket, "MSG_TRUNC")


class TruncatedDatagram(bytes):
    """The first max_packet_size bytes of a datagram that was longer.

    It is a ``bytes`` (it compares, slices and decodes as one), so handlers
    written for the standard module run unchanged.
    """

    truncated = True


def is_truncated(data: bytes) -> bool:
    """True if ``data`` is a datagram the kernel cut to max_packet_size."""
    return isinstance(data, TruncatedDatagram)


class UDPServer(TCPServer):
    """A synchronous datagram server (IPv4 UDP by default).

    Changes from TCPServer:

    - socket_type is SOCK_DGRAM; no listen(), so server_activate() does nothing
    - class variable max_packet_size (8192): the largest datagram read whole
    - the request is ``(data, server_socket)``; data is a TruncatedDatagram
      when the datagram was longer than max_packet_size (netserv only)
    - shutdown_request() and close_request() do nothing: the socket is shared
    """

    allow_reuse_address = False
    allow_reuse_port = False
    socket_type = socket.SOCK_DGRAM
    max_packet_size = DEFAULT_MAX_PACKET_SIZE
    numeric_settings: tuple[Setting, ...] = (
        Setting("max_packet_size", 1, MAX_BUFFER_SIZE, integer=True,
                why="0 reads every datagram as empty; each recv allocates the whole size"),
    )

    # The request is (data, socket), not TCPServer's socket: the standard
    # module derives UDPServer from TCPServer all the same, and so does netserv.
    def get_request(self) -> tuple[tuple[bytes, socket.socket], Any]:  # type: ignore[override]
        """Read one datagram: ((data, server_socket), client_address)."""
        if not _CAN_DETECT_TRUNCATION:  # pragma: no cover - Windows
            data, client_address = self.socket.recvfrom(self.max_packet_size)
            return (data, self.socket), client_address
        data, _ancillary, flags, client_address = self.socket.recvmsg(self.max_packet_size)
        if flags & socket.MSG_TRUNC:
            data = TruncatedDatagram(data)
        return (data, self.socket), client_address

    def server_activate(self) -> None:
        """Nothing to do: datagram sockets do not listen()."""

    def shutdown_request(self, request: Any) -> None:
        """Nothing to shut down: the request holds the shared server socket."""
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Nothing to close."""
