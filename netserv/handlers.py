"""Request handlers: the object that serves one request.

Theory of operation
-------------------
The server creates one handler instance per request; its constructor runs
``setup()``, ``handle()`` and, whatever happens in handle(), ``finish()``.
Write a service by subclassing and defining ``handle()``; it finds the request
as ``self.request``, the client as ``self.client_address`` and the server as
``self.server``.

The two stock handlers make the same ``handle()`` work for streams and for
datagrams by giving it two file objects:

* ``self.rfile``: read the request from it (``readline()``, ``read(n)``)
* ``self.wfile``: write the reply to it

For a stream, rfile is a buffered reader on the socket (one recv() fills many
readline() calls) and wfile, by default, is unbuffered: every write() is one
sendall(), so a reply never waits in a buffer for a flush. For a datagram,
both are in memory: rfile holds the datagram, and what handle() wrote to
wfile is sent back as one datagram in finish().
"""

from __future__ import annotations

import io
import socket
from typing import Any

__all__ = ["BaseRequestHandler", "StreamRequestHandler", "DatagramRequestHandler", "SocketWriter"]


class BaseRequestHandler:
    """Base class for request handlers: one instance serves one request.

    The constructor sets ``request``, ``client_address`` and ``server``, then
    calls ``setup()``, ``handle()`` and ``finish()``; finish() runs even if
    handle() raises, and the exception then propagates to the server, which
    routes it (see netserv.base). Override handle(); extend setup() and
    finish() with super().
    """

    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        self.request = request
        self.client_address = client_address
        self.server = server
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    def setup(self) -> None:
        """Prepare for handle(). Does nothing here."""

    def handle(self) -> None:
        """Serve the request. Does nothing here: override it."""

    def finish(self) -> None:
        """Clean up after handle(). Does nothing here."""


class StreamRequestHandler(BaseRequestHandler):
    """A handler for stream sockets, with ``rfile`` and ``wfile``.

    Adds ``self.connection`` (the socket) and the class variables:

    - rbufsize (-1): rfile's buffer size; -1 is the io default. Buffered so
      that readline() does not cost one recv() per byte.
    - wbufsize (0): wfile's buffer size; 0 is unbuffered, each write() is
      sent at once with sendall(). With a buffer, flush() or finish() sends.
    - timeout (None): if set, applied to the socket; a read that waits longer
      raises TimeoutError (an OSError), which ends the request through
      handle_error. This is how a server reclaims a client that never speaks.
    - disable_nagle_algorithm (False): set TCP_NODELAY, so that small
      writes are sent at once instead of waiting for an ACK. Meant for
      wbufsize != 0 (otherwise many tiny segments may be sent).

    finish() flushes wfile (ignoring a socket error: the client may be gone)
    and closes both files; closing them does not close the socket.
    """

    rbufsize = -1
    wbufsize = 0
    timeout: float | None = None
    disable_nagle_algorithm = False

    def setup(self) -> None:
        self.connection = self.request
        if self.timeout is not None:
            self.connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = self.connection.makefile("rb", self.rbufsize)
        if self.wbufsize == 0:
            self.wfile: io.BufferedIOBase = SocketWriter(self.connection)
        else:
            self.wfile = self.connection.makefile("wb", self.wbufsize)

    def finish(self) -> None:
        if not self.wfile.closed:
            try:
                self.wfile.flush()
            except OSError:
                pass  # a last error such as ECONNABORTED: the client is gone
        self.wfile.close()
        self.rfile.close()


class SocketWriter(io.BufferedIOBase):
    """A write-only binary file on a socket that buffers nothing.

    write() sends everything with sendall() before it returns, so flush() has
    nothing to do. Closing it does not close the socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:  # type: ignore[override]
        self._sock.sendall(b)
        with memoryview(b) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._sock.fileno()


class DatagramRequestHandler(BaseRequestHandler):
    """A handler for datagram sockets, with ``rfile`` and ``wfile`` in memory.

    setup() sets ``self.packet`` (the datagram's bytes), ``self.socket`` (the
    server's socket), ``self.rfile`` (reading the packet) and ``self.wfile``
    (an empty buffer); finish() sends what handle() wrote as one datagram to
    the client, even if it is empty. ``self.truncated`` (netserv only) is
    True if the datagram was longer than the server's max_packet_size and
    packet holds only its beginning.
    """

    def setup(self) -> None:
        self.packet, self.socket = self.request
        self.truncated = getattr(self.packet, "truncated", False)
        self.rfile = io.BytesIO(self.packet)
        self.wfile = io.BytesIO()

    def finish(self) -> None:
        self.socket.sendto(self.wfile.getvalue(), self.client_address)
