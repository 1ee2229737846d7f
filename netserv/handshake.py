"""The TLS handshake: where it runs, and for how long at most.

Theory of operation
-------------------
A TLS connection starts with a *handshake*: the client sends a ClientHello,
the server answers with its certificate and keys, and only then can either
side send data (TLS 1.3: one round trip). On the server, the handshake waits
for the client: a client that connects and sends nothing holds the server
in the handshake for as long as it likes.

So *where* the handshake runs decides who waits with it. The standard
recipe, and Python 3.14's ``http.server.HTTPSServer``, wrap the *listening*
socket: ``context.wrap_socket(server.socket, server_side=True)``. Then
``accept()`` itself performs the handshake, blocking, with no deadline, in
the thread that runs the serve loop, before ``process_request()`` can hand
the connection to a thread. One silent client (a port scanner, a health
check that only connects) and the loop accepts nobody else: a *threading*
server gone deaf.

netserv accepts plain and handshakes where the request runs:

* ``accept_plain()`` accepts on such a wrapped listening socket with the
  plain socket's accept(), then wraps the connection with
  ``do_handshake_on_connect=False``: no byte is read, the loop carries on.
* ``handshake()`` runs in the request's own thread or process (see
  TCPServer.finish_request) with a deadline, ``DEFAULT_HANDSHAKE_TIMEOUT``:
  a client that never sends a ClientHello costs one thread for that long,
  never the accept loop. A socket timeout on an SSLSocket bounds the *whole*
  do_handshake() call (CPython computes a deadline once, then waits at most
  what is left of it), so a client trickling one byte at a time is bounded too.
* A failed handshake (plain HTTP sent to the TLS port, a protocol version the
  context refuses, a hang-up, the deadline) is an OSError: it is reported in
  one line (``handshake_failure()``), never a traceback.

The event-driven model cannot block anywhere: it drives the same handshake
from its loop instead (netserv.tls.TLSEventDrivenMixIn).

Where new things go: the TLS servers of every model are in netserv.tls; this
module has only what the transports need, and no netserv import.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "accept_plain", "handshake", "handshake_failure",
           "handshake_pending", "is_tls_listener"]

#: Seconds a TLS handshake may take, from its first read to its end. A real
#: client finishes a TLS 1.3 handshake in one round trip plus the server's
#: signature: milliseconds on a LAN, well under a second across the world;
#: 10 s leaves room for a lossy mobile link that retransmits a packet or
#: two. A client silent longer than this is not going to speak: it holds a
#: thread (or a table row) for 10 s, no longer. (asyncio allows 60 s, tuned
#: for the worst links; a server that teaches would rather free the thread.)
DEFAULT_HANDSHAKE_TIMEOUT = 10.0


def is_tls_listener(sock: socket.socket) -> bool:
    """True if ``sock`` is a listening socket wrapped by an SSLContext."""
    return isinstance(sock, ssl.SSLSocket)


def accept_plain(listener: ssl.SSLSocket) -> tuple[ssl.SSLSocket, Any]:
    """Accept one connection on a wrapped listening socket *without* its handshake.

    ``SSLSocket.accept()`` would run the handshake here (the listening
    socket's do_handshake_on_connect is True by default), blocking the
    caller until the client speaks. This accepts with the plain socket's
    accept() and wraps the connection with the listening socket's context
    and suppress_ragged_eofs, and do_handshake_on_connect=False: nothing is
    read. Errors: accept()'s OSError, as for a plain socket; if wrapping
    fails, the accepted socket is closed before the error propagates.
    """
    sock, address = socket.socket.accept(listener)
    try:
        wrapped = listener.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False,
            suppress_ragged_eofs=getattr(listener, "suppress_ragged_eofs", True))
    except BaseException:
        sock.close()
        raise
    return wrapped, address


def handshake_pending(request: object) -> bool:
    """True if ``request`` is an SSLSocket whose handshake has not been done."""
    return isinstance(request, ssl.SSLSocket) and request.version() is None


def handshake(request: ssl.SSLSocket, timeout: float | None) -> None:
    """Run the server side of the handshake, blocking, within ``timeout`` seconds.

    ``timeout`` None waits forever (not advised: see the module docstring).
    The socket's own timeout is restored afterwards, whatever happens.
    Errors: OSError (ssl.SSLError for a protocol failure, TimeoutError at
    the deadline, ConnectionError for a hang-up); the socket is left open,
    for the caller's shutdown_request() to close. It does not retry.
    """
    before = request.gettimeout()
    request.settimeout(timeout)
    try:
        request.do_handshake()
    finally:
        try:
            request.settimeout(before)
        except OSError:
            pass  # closed meanwhile: the caller closes it anyway


def handshake_failure(server: object, client_address: Any, error: OSError) -> str:
    """The one line that reports a failed handshake (no traceback)."""
    reason = getattr(error, "reason", None) or str(error) or type(error).__name__
    return (f"{type(server).__name__}: TLS handshake with {client_address} failed: "
            f"{type(error).__name__}: {reason}")
