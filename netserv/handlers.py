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

A whole-request deadline (netserv only): ``timeout`` bounds each recv(), so
a client that sends one byte just before every timeout holds the handler
forever; a 64 KiB line at 10 bytes per second takes almost two hours.
``request_deadline`` bounds a whole read call instead: rfile is then a
DeadlineReader, which starts a clock when a readline() or read() begins and,
before each recv() that call needs, sets the socket's timeout to the time
left (or to ``timeout``, if that is shorter), then puts ``timeout`` back, so
writes keep the standard behaviour. When the time is up the read raises
RequestDeadlineExceeded (a TimeoutError); if handle() lets it through, the
handler reports it in one line on stderr, not a traceback, and the server
closes the connection as after any request. ``rfile.one_deadline()`` puts
several read calls (the lines of a head) under one deadline.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from .settings import MAX_BUFFER_SIZE, Setting

# A buffer argument (bytes, bytearray, memoryview, array...) is typed Any: its
# protocol type lives in typeshed's _typeshed, which is not a module one can
# import, and collections.abc.Buffer is new in Python 3.12.

__all__ = ["BaseRequestHandler", "StreamRequestHandler", "DatagramRequestHandler", "SocketWriter",
           "DeadlineReader", "RequestDeadlineExceeded"]


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
    - request_deadline (None; netserv only): if set, seconds one read call
      (one ``rfile.readline()``, ``read()``...) may take from its start,
      waiting for the first byte included, however slowly the bytes come.
      Past it the read raises RequestDeadlineExceeded, a TimeoutError; if
      handle() does not catch it, deadline_exceeded() reports it in one
      line and the request ends normally (handle_error is not called).
      With rbufsize 0, rfile reads through a one-byte buffer: it still
      never reads ahead.

    finish() flushes wfile (ignoring a socket error: the client may be gone)
    and closes both files; closing them does not close the socket.

    The numeric class variables are checked by the server that uses the
    handler class, at construction and when its loop starts (see
    numeric_settings and netserv.settings), not by the handler itself.
    """

    rbufsize = -1
    wbufsize = 0
    timeout: float | None = None
    disable_nagle_algorithm = False
    request_deadline: float | None = None
    #: Checked by the server at construction and when its loop starts (netserv.settings).
    numeric_settings: tuple[Setting, ...] = (
        Setting("rbufsize", -1, MAX_BUFFER_SIZE, integer=True,
                why="-1 is io's default size, 0 unbuffered; the buffer is allocated whole"),
        Setting("wbufsize", -1, MAX_BUFFER_SIZE, integer=True,
                why="0 sends each write at once, -1 is io's default size"),
        Setting("timeout", 0, above=True, unit="seconds", none="reads wait forever",
                why="0 makes the socket non-blocking: a read with no data fails at once"),
        Setting("request_deadline", 0, above=True, unit="seconds", none="no deadline",
                why="0 or less fails every read at once"),
    )

    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        try:
            super().__init__(request, client_address, server)
        except RequestDeadlineExceeded as error:
            self.deadline_exceeded(error)

    def setup(self) -> None:
        self.connection = self.request
        if self.timeout is not None:
            self.connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile: io.BufferedIOBase
        if self.request_deadline is None:
            self.rfile = self.connection.makefile("rb", self.rbufsize)
        else:
            self.rfile = DeadlineReader(self.connection, self.request_deadline,
                                        self.timeout, self.rbufsize)
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

    def deadline_exceeded(self, error: RequestDeadlineExceeded) -> None:
        """Report a request that outlived request_deadline: one line on stderr.

        Called after finish(), when handle() let the error through; the
        server then shuts the request down. May be overridden.
        """
        print(f"{type(self).__name__}: request from {self.client_address} closed: {error}",
              file=sys.stderr)


class RequestDeadlineExceeded(TimeoutError):
    """A read did not complete within StreamRequestHandler.request_deadline."""


class _DeadlineSocketIO(socket.SocketIO):
    """The raw reader under DeadlineReader: each recv() waits at most until
    ``deadline`` (a time.monotonic() value, or None for no deadline)."""

    def __init__(self, sock: socket.socket, timeout: float | None) -> None:
        super().__init__(sock, "rb")
        self._connection = sock
        self._timeout = timeout  # the handler's per-read timeout, kept for writes
        self.deadline: float | None = None
        self.seconds = 0.0  # the deadline's length, for the message

    def readinto(self, b: Any) -> int | None:
        if self.deadline is None:
            return super().readinto(b)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RequestDeadlineExceeded(self._message())
        by_deadline = self._timeout is None or left < self._timeout
        self._connection.settimeout(left if by_deadline else self._timeout)
        try:
            return super().readinto(b)
        except TimeoutError:
            if by_deadline:
                raise RequestDeadlineExceeded(self._message()) from None
            raise  # the per-read timeout: the standard TimeoutError
        finally:
            if self._connection.fileno() != -1:  # not closed meanwhile
                self._connection.settimeout(self._timeout)

    def _message(self) -> str:
        return f"no complete read within request_deadline ({self.seconds:g} s)"


class DeadlineReader(io.BufferedReader):
    """rfile of a StreamRequestHandler with a request_deadline.

    A buffered reader on the socket whose every read call (readline, read,
    read1, readinto, peek, iteration) must finish within ``seconds`` of its
    start; otherwise it raises RequestDeadlineExceeded. A read served from
    the buffer never waits, so it never times out. Closing it does not close
    the socket.
    """

    def __init__(self, sock: socket.socket, seconds: float, timeout: float | None,
                 buffer_size: int = -1) -> None:
        self._clock = _DeadlineSocketIO(sock, timeout)
        self._clock.seconds = seconds
        if buffer_size < 0:
            buffer_size = io.DEFAULT_BUFFER_SIZE
        super().__init__(self._clock, max(buffer_size, 1))
        self._seconds = seconds

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        """Time one read call; a read inside a read runs on the outer call's clock."""
        if self._clock.deadline is not None:
            yield
            return
        self._clock.deadline = time.monotonic() + self._seconds
        try:
            yield
        finally:
            self._clock.deadline = None

    def one_deadline(self) -> contextlib.AbstractContextManager[None]:
        """A ``with`` block whose read calls all share one deadline, ``seconds``
        from the block's start.

        For a message read in several calls, such as an HTTP head (a request
        line, then one readline() per header): without it each call has a
        deadline of its own, so a client that sends every line just in time
        holds the reader for as many deadlines as there are lines. Inside the
        block, a read that would end past the shared deadline raises
        RequestDeadlineExceeded; a read served from the buffer never does.
        A block inside a block runs on the outer one's clock. It does not
        bound the code between the reads, only the waiting in them.
        """
        return self._timed()

    def readline(self, size: int | None = -1, /) -> bytes:
        with self._timed():
            return super().readline(size)

    def read(self, size: int | None = -1, /) -> bytes:
        with self._timed():
            return super().read(size)

    def read1(self, size: int = -1, /) -> bytes:
        with self._timed():
            return super().read1(size)

    def readinto(self, buffer: Any, /) -> int:
        with self._timed():
            return super().readinto(buffer)

    def peek(self, size: int = 0, /) -> bytes:
        with self._timed():
            return super().peek(size)


class SocketWriter(io.BufferedIOBase):
    """A write-only binary file on a socket that buffers nothing.

    write() sends everything with sendall() before it returns, so flush() has
    nothing to do. Closing it does not close the socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, b: Any, /) -> int:
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
