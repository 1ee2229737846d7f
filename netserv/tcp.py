"""TCPServer: BaseServer over a connected byte stream.

Theory of operation
-------------------
A stream server owns a *listening* socket. The constructor creates it, then
``server_bind()`` binds it to ``server_address`` and ``server_activate()``
calls ``listen(request_queue_size)``. From then on the kernel completes TCP
handshakes by itself and queues the new connections (the backlog) until
``get_request()`` accepts one. The accepted socket *is* the request: the
handler reads and writes it, and ``shutdown_request()`` half-closes it (so the
client sees end-of-file) before ``close_request()`` closes it.

``server_address`` is replaced by the address actually bound, so binding to
port 0 lets the kernel choose a free port: read it back from
``server.server_address``.
"""

from __future__ import annotations

import socket
from typing import Any

from .base import BaseServer
from .settings import Setting
from .versions import REQUEST_QUEUE_SIZE, reuse_port_applies

__all__ = ["TCPServer"]

#: listen() backlog: the running Python's (netserv.versions). 5 up to 3.14,
#: small on purpose: a synchronous server that falls behind should be visible;
#: socket.SOMAXCONN from 3.15, so that a burst waits in the kernel.
DEFAULT_REQUEST_QUEUE_SIZE = REQUEST_QUEUE_SIZE
#: listen() takes a C int; the kernel caps the backlog at its own maximum
#: (Linux: net.core.somaxconn) without saying so.
MAX_REQUEST_QUEUE_SIZE = 2**31 - 1


class TCPServer(BaseServer):
    """A synchronous server over a stream socket (IPv4 TCP by default).

    Adds to BaseServer:

    - __init__(server_address, RequestHandlerClass, bind_and_activate=True):
      with bind_and_activate false, call server_bind() and server_activate()
      yourself (to set socket options first). If binding fails the socket is
      closed before the error propagates: nothing leaks.
    - class variables: address_family (AF_INET), socket_type (SOCK_STREAM),
      request_queue_size (5; socket.SOMAXCONN from Python 3.15),
      allow_reuse_address (False), allow_reuse_port (False: SO_REUSEPORT is
      set for AF_INET and AF_INET6 only, from Python 3.14, 3.13.2 and 3.12.9)
    - fileno(), the listening socket's descriptor, for a selector
    - the request is the accepted socket; shutdown_request() sends FIN
      (shutdown(SHUT_WR)) before closing it.
    """

    address_family = socket.AF_INET
    socket_type = socket.SOCK_STREAM
    request_queue_size = DEFAULT_REQUEST_QUEUE_SIZE
    # SO_REUSEADDR lets a restarted server bind while old connections of the
    # previous run sit in TIME_WAIT; off by default as in the standard module.
    allow_reuse_address = False
    # SO_REUSEPORT lets several sockets share one port (load spreading).
    allow_reuse_port = False
    numeric_settings: tuple[Setting, ...] = (
        Setting("request_queue_size", 0, MAX_REQUEST_QUEUE_SIZE, integer=True,
                why="listen() takes a C int; a negative backlog means 0"),
    )

    def __init__(self, server_address: Any, RequestHandlerClass: Any,
                 bind_and_activate: bool = True) -> None:
        """Constructor. May be extended, do not override."""
        BaseServer.__init__(self, server_address, RequestHandlerClass)
        self.socket = socket.socket(self.address_family, self.socket_type)
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    def server_bind(self) -> None:
        """Set the reuse options, bind, and record the bound address."""
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if (self.allow_reuse_port and hasattr(socket, "SO_REUSEPORT")
                and reuse_port_applies(self.address_family)):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Start listening, with room for request_queue_size pending connections."""
        self.socket.listen(self.request_queue_size)

    def server_close(self) -> None:
        """Close the listening socket (stopping serve_forever() if it runs)."""
        super().server_close()
        self.socket.close()

    def fileno(self) -> int:
        """Return the listening socket's file descriptor (for a selector)."""
        return self.socket.fileno()

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept one connection: (connected socket, client address)."""
        return self.socket.accept()

    def shutdown_request(self, request: socket.socket) -> None:
        """Half-close the connection so the client reads EOF, then close it."""
        try:
            # close() alone only drops this reference; shutdown() sends FIN
            # now, even if a forked child still holds the descriptor.
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the peer is gone already (ENOTCONN on some platforms)
        self.close_request(request)

    def close_request(self, request: socket.socket) -> None:
        """Close the connection."""
        request.close()
