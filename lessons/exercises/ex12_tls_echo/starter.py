# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).
# This is the file you edit: replace each TODO with working code, then run the
# checks with `make check EX=NN` (NN: this exercise's number; see README.md).
"""Exercise 12: a TLS line echo that keeps serving while a client sits silent in its handshake.

The server (already written: ``TLSEchoServer.__init__``, ``LineEchoHandler``)
is a ThreadingTCPServer that echoes every line back over TLS, with the
standard ``ssl`` module and an SSLContext given to ``make_server()``. What
is missing is *where and how* the TLS handshake runs (the TODOs). Every rule
here is checked:

* the serving loop never waits for a client: ``get_request()`` accepts the
  plain TCP connection and wraps it with the context *without* the
  handshake (``do_handshake_on_connect=False``), so no byte is read in the
  loop's thread. Never wrap the listening socket: then ``accept()`` does the
  whole handshake, in the loop's thread, for as long as the client likes;
* the handshake runs in the request's own thread, in ``finish_request()``,
  before the handler is made, within ``handshake_timeout`` seconds (set
  the socket's timeout for it; CPython bounds the whole ``do_handshake()``
  call by it). Once it is done the deadline no longer applies: a client
  may pause as long as it likes between two lines;
* a failed handshake (plain text sent to the TLS port, a client that hangs
  up half-way, the deadline) is an OSError: ``ssl.SSLError``,
  ``TimeoutError`` or a ``ConnectionError``. It is reported by calling
  ``self.handle_handshake_error(request, client_address, error)``, which
  writes one line to stderr (the client's address and what went wrong), no
  traceback; the connection is then closed and the server serves on;
* nothing is left behind: after many handshakes, good and failed, the
  server holds no descriptor and no thread more than before.

Read first: lessons/10_tls.md; netserv/tcp.py (TCPServer.get_request) and
netserv/base.py (finish_request, the pipeline); the ``ssl`` module's
documentation of ``SSLContext.wrap_socket`` and ``SSLSocket.do_handshake``.
"""

from __future__ import annotations

import ssl
import sys
from typing import Any

import netserv

#: Seconds a client may take over its TLS handshake. A real client finishes
#: a TLS 1.3 handshake in one round trip: milliseconds on a LAN, well under a
#: second across the world; 10 s leaves room for a lossy link. A client
#: silent for longer costs one thread for 10 s, never the serving loop.
HANDSHAKE_TIMEOUT = 10.0


class LineEchoHandler(netserv.StreamRequestHandler):
    """Echo every line back, byte for byte, until the client closes."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


class TLSEchoServer(netserv.ThreadingTCPServer):
    """A thread per connection; TLS with the context given; the handshake in that thread.

    Threads are not daemon threads: server_close() waits for them, so a
    stopped server has left nothing running.
    """

    def __init__(self, address: Any, context: ssl.SSLContext,
                 handshake_timeout: float | None = HANDSHAKE_TIMEOUT) -> None:
        self.context = context
        self.handshake_timeout = handshake_timeout
        super().__init__(address, LineEchoHandler)

    def get_request(self) -> tuple[ssl.SSLSocket, Any]:
        """Accept one connection and wrap it for TLS, without reading a byte."""
        # TODO: accept the plain connection; wrap it, no handshake
        raise NotImplementedError("TODO: accept the plain connection; wrap it, no handshake")

    def finish_request(self, request: Any, client_address: Any) -> None:
        """In the request's thread: the handshake within its deadline, then the handler."""
        # TODO: the handshake within handshake_timeout; report a failure
        raise NotImplementedError("TODO: the handshake within handshake_timeout; report a failure")

    def handle_handshake_error(self, request: Any, client_address: Any,
                               error: OSError) -> None:
        """Report a failed handshake: one line on stderr, no traceback."""
        # TODO: one line on stderr: the client's address and the error
        raise NotImplementedError("TODO: one line on stderr: the client's address and the error")


def make_server(context: ssl.SSLContext, address: Any = ("127.0.0.1", 0),
                handshake_timeout: float | None = HANDSHAKE_TIMEOUT) -> TLSEchoServer:
    """The echo server, bound and listening, serving TLS with *context*."""
    return TLSEchoServer(address, context, handshake_timeout)
