"""TLS servers for every model, with the handshake where the request runs.

Theory of operation
-------------------
Read netserv.handshake first: it says why a TLS server must never perform
the handshake in accept(). Here are the servers that follow that rule.

:class:`TLSMixIn` serves TLS on the blocking models: a thread per request,
a process per request, a thread pool, pre-forked workers. Its
``get_request()`` accepts the plain connection and wraps it with the
user's SSLContext, ``do_handshake_on_connect=False``: no byte is read in
the accept loop. The pipeline then hands the connection on as usual, and
TCPServer.finish_request(), in the request's own thread or process, runs the
handshake within ``handshake_timeout`` before it makes the handler. The
handler's ``self.request`` is the ssl.SSLSocket: read and write it as any
socket. A TCP connection gets TCP_NODELAY: TLS writes its session tickets
and the first reply as separate segments, and Nagle's algorithm would hold
the reply until the client's delayed ACK (40 ms per new connection).

:class:`TLSEventDrivenMixIn` serves TLS on the event-driven model, where
nothing may block. An accepted connection joins the table at once (its row
counts it) with a placeholder handler, :class:`Handshaking`; the loop calls
``do_handshake()`` on the non-blocking socket each time the socket is ready,
and watches it for reading or writing as OpenSSL asks
(``SSLWantReadError``/``SSLWantWriteError``). When the handshake completes,
the server's handler class takes the row and connection_made() runs. A
handshake still unfinished after ``handshake_timeout`` is closed with a
TimeoutError by the loop, which wakes up for it. After the handshake, reads
and writes go through the SSLSocket: a read that finds only part of a TLS
record is "nothing yet", a write the kernel cannot take now is kept, as for
plain TCP, and retried with the same bytes first (OpenSSL's rule).

Both report a failed handshake through ``handle_handshake_error()``: one line,
no traceback; the server goes on. The SSLContext is the user's: make one
with :func:`server_context` (the standard library's secure defaults) or
``ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)``.

What this does not do: SNI callbacks, client certificates, ALPN are the
context's business (configure it before passing it); post-handshake
renegotiation is not driven (TLS 1.3 has none).
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from selectors import EVENT_READ, EVENT_WRITE
from typing import TYPE_CHECKING, Any

from .eventdriven import EventDrivenMixIn, EventDrivenTCPServer
from .events import Connection, EventHandler
from .handshake import DEFAULT_HANDSHAKE_TIMEOUT
from .pool import ThreadPoolTCPServer
from .tcp import TCPServer
from .threads import ThreadingTCPServer

if TYPE_CHECKING:
    _Host = TCPServer
    _EventHost = EventDrivenMixIn
else:
    _Host = _EventHost = object

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "Handshaking", "TLSEventDrivenMixIn",
           "TLSEventDrivenTCPServer", "TLSMixIn", "TLSTCPServer", "TLSThreadPoolTCPServer",
           "TLSThreadingTCPServer", "server_context"]


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server-side SSLContext with the standard library's secure defaults.

    ssl.create_default_context(Purpose.CLIENT_AUTH) (TLS 1.2 and later,
    the default ciphers) with the certificate chain loaded. Errors: as
    load_cert_chain() (OSError, ssl.SSLError).
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


class TLSMixIn(_Host):
    """Mix-in that serves TLS with the user's SSLContext. List it first.

    __init__(server_address, RequestHandlerClass, bind_and_activate=True, *,
    context): ``context`` must be a server-side ssl.SSLContext (TypeError
    otherwise, before anything is bound).

    Class variables: handshake_timeout (TCPServer's, 10.0 s). Instance
    variables: ssl_context. Hooks: handle_handshake_error() (TCPServer's).
    """

    ssl_context: ssl.SSLContext

    def __init__(self, *args: Any, context: ssl.SSLContext, **kwargs: Any) -> None:
        if not isinstance(context, ssl.SSLContext) or not _server_side(context):
            raise TypeError(f"{type(self).__name__} needs a server-side ssl.SSLContext "
                            f"(for example ssl.create_default_context(ssl.Purpose."
                            f"CLIENT_AUTH) with load_cert_chain()), got {context!r}")
        self.ssl_context = context
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[Any, Any]:
        """Accept plain, then wrap for TLS without reading a byte (no handshake here).

        Errors: accept()'s OSError; if wrapping fails, the accepted socket
        is closed and the error (an OSError) propagates, so the loop drops it.
        """
        sock, address = super().get_request()
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                # TLS 1.3 sends its session tickets just after the handshake;
                # with Nagle's algorithm the first reply then waits for their
                # ACK, which the client delays (40 ms on Linux): every new
                # connection would cost 40 ms.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False), address
        except BaseException:
            sock.close()
            raise


def _server_side(context: ssl.SSLContext) -> bool:
    """PROTOCOL_TLS_CLIENT cannot serve; the generic PROTOCOL_TLS can."""
    return context.protocol != ssl.PROTOCOL_TLS_CLIENT


class Handshaking(EventHandler):
    """The placeholder handler of a connection whose TLS handshake is not done.

    It receives no bytes (the loop drives the handshake instead) and has no
    connection_made(); ``deadline`` is the time.monotonic() by which the
    handshake must end.
    """

    __slots__ = ("deadline",)

    def __init__(self, connection: Connection, server: Any, deadline: float) -> None:
        super().__init__(connection, server)
        self.deadline = deadline


class TLSEventDrivenMixIn(TLSMixIn, _EventHost):
    """TLS on the event-driven model: the loop drives each handshake. List it first.

    Combine with an event-driven server: ``class S(TLSEventDrivenMixIn,
    EventDrivenTCPServer)``. The handler class is any EventHandler; its
    connection_made() runs once the handshake is done, and ``self.request``
    is the non-blocking SSLSocket.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._handshakes: dict[Connection, float] = {}  # in the loop's thread only
        super().__init__(*args, **kwargs)

    def _connection_ready(self, conn: Connection) -> None:
        """Hold the connection in the table with a Handshaking handler; start."""
        timeout = self.handshake_timeout
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        conn.handler = Handshaking(conn, self, deadline)
        self._handshakes[conn] = deadline
        self._continue_handshake(conn)

    def _loop_ready(self, key: Any, events: int) -> None:
        """A handshaking connection's readiness goes to the handshake."""
        conn = key.data
        if conn is not None and isinstance(conn.handler, Handshaking):
            self._continue_handshake(conn)
        else:
            super()._loop_ready(key, events)

    def _continue_handshake(self, conn: Connection) -> None:
        """One non-blocking step of the handshake; on success, the real handler."""
        sock: ssl.SSLSocket = conn.sock  # type: ignore[assignment]
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, EVENT_WRITE)
            return
        except OSError as error:  # SSLError, ConnectionResetError, ...
            self._handshake_failed(conn, error)
            return
        del self._handshakes[conn]
        conn.last_active = time.monotonic()
        self._watch(conn, EVENT_READ)
        super()._connection_ready(conn)
        if not conn.closing and sock.pending():  # bytes decrypted with the Finished
            self._read_ready(conn)

    def _handshake_failed(self, conn: Connection, error: OSError) -> None:
        self.handle_handshake_error(conn.sock, conn.address, error)
        self.close_connection(conn, error)

    def _loop_timeout(self, poll_interval: float | None) -> float | None:
        """Close handshakes past their deadline; wake up for the next one at the latest."""
        wait = super()._loop_timeout(poll_interval)
        if not self._handshakes:
            return wait
        now = time.monotonic()
        for conn, deadline in list(self._handshakes.items()):
            if now >= deadline:
                self._handshake_failed(conn, TimeoutError(
                    f"no TLS handshake within handshake_timeout ({self.handshake_timeout} s)"))
        if not self._handshakes:
            return wait
        until = max(0.0, min(self._handshakes.values()) - now)
        return until if wait is None else min(wait, until)

    def close_connection(self, conn: Connection, exc: BaseException | None = None) -> None:
        """Close conn (see EventDrivenMixIn); a handshake in progress is forgotten."""
        self._handshakes.pop(conn, None)
        super().close_connection(conn, exc)

    # -- bytes through the SSLSocket ----------------------------------------

    def _recv(self, sock: socket.socket) -> bytes | None:
        """Read decrypted bytes; None while a TLS record is still incomplete.

        OpenSSL returns one record at a time: what it holds decrypted
        already (pending()) is read too, since the selector cannot see it.
        """
        try:
            data = sock.recv(self.recv_size)
            while sock.pending():  # type: ignore[attr-defined]
                data += sock.recv(self.recv_size)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError,
                InterruptedError):
            return None
        return data

    def _send_some(self, sock: socket.socket, data: bytes | bytearray) -> int:
        """Encrypt and send; 0 when the kernel takes nothing now (retried later)."""
        try:
            return sock.send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError,
                InterruptedError):
            return 0


class TLSTCPServer(TLSMixIn, TCPServer): pass
class TLSThreadingTCPServer(TLSMixIn, ThreadingTCPServer): pass
class TLSThreadPoolTCPServer(TLSMixIn, ThreadPoolTCPServer): pass
class TLSEventDrivenTCPServer(TLSEventDrivenMixIn, EventDrivenTCPServer): pass


if hasattr(socket, "AF_UNIX"):
    from .eventdriven import EventDrivenUnixStreamServer
    from .pool import ThreadPoolUnixStreamServer
    from .threads import ThreadingUnixStreamServer

    class TLSThreadingUnixStreamServer(TLSMixIn, ThreadingUnixStreamServer): pass
    class TLSThreadPoolUnixStreamServer(TLSMixIn, ThreadPoolUnixStreamServer): pass
    class TLSEventDrivenUnixStreamServer(TLSEventDrivenMixIn, EventDrivenUnixStreamServer): pass

    __all__ += ["TLSEventDrivenUnixStreamServer", "TLSThreadPoolUnixStreamServer",
                "TLSThreadingUnixStreamServer"]

if hasattr(os, "fork"):
    from .forking import ForkingTCPServer
    from .prefork import PreForkTCPServer

    class TLSForkingTCPServer(TLSMixIn, ForkingTCPServer): pass
    class TLSPreForkTCPServer(TLSMixIn, PreForkTCPServer): pass

    __all__ += ["TLSForkingTCPServer", "TLSPreForkTCPServer"]
    if hasattr(socket, "AF_UNIX"):
        from .forking import ForkingUnixStreamServer
        from .prefork import PreForkUnixStreamServer

        class TLSForkingUnixStreamServer(TLSMixIn, ForkingUnixStreamServer): pass
        class TLSPreForkUnixStreamServer(TLSMixIn, PreForkUnixStreamServer): pass

        __all__ += ["TLSForkingUnixStreamServer", "TLSPreForkUnixStreamServer"]
