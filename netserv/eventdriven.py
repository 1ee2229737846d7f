"""The select() model: one thread, many connections, an explicit table of them.

Theory of operation
-------------------
The other concurrency models give each request a thread or a process that
may *block*: wait in recv() until the client speaks. Here nothing may block.
One thread runs a loop around a selector (select(), poll(), epoll: the
kernel's "which of these sockets can I use now?"), every socket is
non-blocking, and the state that a thread would keep on its stack (what this
client has sent so far, what we still owe it) is kept in a table instead:
``server.connections`` maps each connection's file descriptor to a
:class:`Connection` record. ``server.state_table()`` prints that table.

One turn of the loop (``_run_once``)::

    select()            -> the sockets that are ready
    listening socket    -> accept: get_request, verify_request, process_request
                           (process_request adds a Connection and calls the
                           handler's connection_made())
    readable connection -> recv() once, pass the bytes to data_received()
    writable connection -> send the pending output
    every so often      -> close connections idle longer than idle_timeout

A handler here is not a function that runs from start to end of a request
(it could not wait for the next line without blocking everyone). It is an
object per connection whose methods the loop calls when something happens:
:class:`EventHandler` has ``connection_made()``, ``data_received(data)``,
``eof_received()`` and ``connection_lost(exc)``, and replies with
``self.send(data)``. :class:`LineHandler` cuts the byte stream into lines and
calls ``line_received(line)``; :class:`LineEchoHandler` sends each line back.

Writing without blocking. ``send()`` tries ``socket.send()`` at once. What
the kernel did not take (the client reads slower than we write) is kept in
the connection's ``outbuf``, and only then does the loop watch the socket for
EVENT_WRITE, to send the rest when there is room. A connection with nothing
pending is watched for EVENT_READ only; otherwise the loop would wake up for
every connection that *could* be written to, which is almost all of them.

Limits (a single thread serves everyone, so one client must not be able to
eat its memory):

* ``max_pending_output`` (server): when a connection's outbuf grows beyond
  it, the loop *stops reading* from that connection (``pause_reading()``)
  until the client has read at least half of it (``resume_reading()``). A
  client that sends requests without reading replies is slowed down to the
  speed at which it reads, by TCP flow control, and nobody else notices.
* ``max_line_length`` (LineHandler): a line longer than this (received in
  part or whole) calls ``line_too_long()``, which closes the connection at
  once: a line protocol has no way to resynchronise after a line it could
  not hold. The client sees end-of-file, or a reset if it was still sending.
* ``idle_timeout`` (server): a connection that has neither received nor sent
  a byte for this long is closed, and its handler's connection_lost() gets a
  TimeoutError. Clients that connect and go quiet do not pile up.

Errors: an Exception raised by a handler method goes to the server's
handle_error() and closes *that* connection only; the loop carries on. Any
other exception (KeyboardInterrupt) closes the connection and propagates out
of serve_forever(), as in every other server. A connection the peer reset is
closed and connection_lost() receives the OSError.

Lifecycle, the same as every server's: construct (bind, listen), then
serve_forever() in some thread, shutdown() from another (instant: it wakes
the loop through netserv.base.Waker), server_close(). Connections outlive a
shutdown(): a later serve_forever() resumes them. server_close() closes every
connection (pending output is dropped) and the listening socket.
handle_request() runs one turn of the loop.

Only streams (TCP, Unix stream sockets): a datagram server has no
connections to keep a table of, and is never blocked by one client anyway.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from selectors import EVENT_READ, EVENT_WRITE
from typing import Any

from .base import DEFAULT_POLL_INTERVAL, ServerState, Waker
from .tcp import TCPServer

__all__ = ["Connection", "EventHandler", "LineHandler", "LineEchoHandler",
           "EventDrivenMixIn", "EventDrivenTCPServer", "format_state_table"]

#: Bytes asked of one recv(). Large enough that one call drains what a
#: client typically has in flight; the kernel returns only what it has, so a
#: large size costs no more system calls than a small one.
DEFAULT_RECV_SIZE = 65536

#: Seconds without a byte in either direction before a connection is closed.
#: Long enough for a person typing into ``nc``, short enough that abandoned
#: connections do not pile up for ever. None disables the check.
DEFAULT_IDLE_TIMEOUT = 300.0

#: Bytes of unsent output per connection beyond which the loop stops reading
#: from it. A few times a socket's send buffer: a client that reads slowly
#: but steadily never reaches it; one that stopped reading does soon.
DEFAULT_MAX_PENDING_OUTPUT = 256 * 1024

#: Longest line (with its newline) that LineHandler accepts. Far above any
#: line this course's protocols send; it bounds what a client that never
#: sends a newline can make the server hold.
DEFAULT_MAX_LINE_LENGTH = 64 * 1024

#: How many times per idle_timeout the loop looks for idle connections: a
#: connection is closed between idle_timeout and (1 + 1/4) * idle_timeout
#: after its last byte, and the scan of the table costs little.
IDLE_CHECKS_PER_TIMEOUT = 4

# The selector's data for the two sockets that are not connections.
_LISTENER = "listening socket"
_WAKER = "waker"


class Connection:
    """One row of the server's table: everything the loop knows about a connection.

    ``sock`` is the connected non-blocking socket and ``fd`` its descriptor
    (the table's key); ``address`` the client's; ``handler`` the
    EventHandler serving it. ``outbuf`` holds output the kernel has not taken
    yet (None when there is none); ``opened_at`` and ``last_active`` are
    time.monotonic() values; ``bytes_in`` and ``bytes_out`` count what went
    through the socket. ``reading`` is False while the loop does not read
    (output pending beyond the limit); ``closing`` is True once the
    connection reads nothing more and will close when its output is sent;
    ``closed`` once it is gone from the table.
    """

    # __slots__: no per-record dict, so that an idle connection costs
    # a few hundred bytes (see benchmarks/concurrency.py).
    __slots__ = ("sock", "fd", "address", "handler", "outbuf", "opened_at",
                 "last_active", "bytes_in", "bytes_out", "reading", "closing", "closed")

    def __init__(self, sock: socket.socket, address: Any, now: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.address = address
        self.handler: EventHandler | None = None
        self.outbuf: bytearray | None = None
        self.opened_at = self.last_active = now
        self.bytes_in = self.bytes_out = 0
        self.reading = True
        self.closing = self.closed = False

    def __repr__(self) -> str:
        pending = len(self.outbuf) if self.outbuf else 0
        return (f"<Connection fd={self.fd} {self.address!r} in={self.bytes_in} "
                f"out={self.bytes_out} pending={pending}"
                f"{'' if self.reading else ' paused'}{' closing' if self.closing else ''}>")


class EventHandler:
    """Base class of the event-driven handlers: one instance per connection.

    The loop calls, in the loop's thread:

    - connection_made(): once, after the connection joined the table
    - data_received(data): each time bytes arrive (any amount: a message
      may arrive in pieces, or several in one piece)
    - eof_received(): the client will send nothing more; the server then
      closes the connection as soon as the pending output is sent
    - connection_lost(exc): once, when the connection is closed; exc is None
      for a normal close, or the error (an OSError from the socket, a
      TimeoutError from the idle check)

    The handler may call send(data), which never blocks, and close(), which
    closes once the pending output is sent. None of these methods may block
    (no recv(), no time.sleep(), no waiting on a lock another thread holds):
    every other client waits while one of them runs. And only the loop's
    thread may call send() or close(): the table has no lock, because only
    that thread ever touches it.

    Attributes: ``connection`` (the server's Connection record), ``server``,
    and, as in the other handlers, ``request`` (the socket) and
    ``client_address``. Subclasses should declare ``__slots__`` too, or each
    instance gets a dict (about 100 bytes more per connection).
    """

    __slots__ = ("connection", "server", "request", "client_address")

    #: Methods netserv.lab.trace records for handlers of this kind.
    traced_hooks = ("connection_made", "data_received", "eof_received", "connection_lost")

    def __init__(self, connection: Connection, server: Any) -> None:
        self.connection = connection
        self.server = server
        self.request = connection.sock
        self.client_address = connection.address

    def connection_made(self) -> None:
        """The connection is in the table. Does nothing here."""

    def data_received(self, data: bytes) -> None:
        """Bytes arrived. Does nothing here: override it."""

    def eof_received(self) -> None:
        """The client half-closed its side. Does nothing here."""

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is closed and out of the table. Does nothing here."""

    def send(self, data: bytes) -> None:
        """Send ``data`` now if the kernel takes it, else keep it for later.

        Never blocks. Data sent after the connection closed is dropped.
        """
        self.server.send(self.connection, data)

    def close(self) -> None:
        """Read nothing more; close the connection once the pending output is sent."""
        self.server.finish_connection(self.connection)

    def pending_input(self) -> int:
        """Bytes received and held, waiting for the rest of a message (0 here)."""
        return 0


class LineHandler(EventHandler):
    """An EventHandler for line protocols: calls line_received() once per line.

    A line is the bytes up to and including b"\\n", passed as ``bytes``;
    what follows the last newline is held until the rest arrives (the
    *partial line*, see pending_input()). When the client half-closes, a
    partial line left over is passed to line_received() without a newline,
    as ``for line in rfile`` does in a StreamRequestHandler.

    Class variable max_line_length (64 KiB): a longer line calls
    line_too_long(), which by default closes the connection at once.
    """

    __slots__ = ("_partial",)

    traced_hooks = EventHandler.traced_hooks + ("line_received", "line_too_long")

    max_line_length = DEFAULT_MAX_LINE_LENGTH

    def __init__(self, connection: Connection, server: Any) -> None:
        super().__init__(connection, server)
        # b"" is shared by every handler: no allocation until a line is split.
        self._partial: bytes | bytearray = b""

    def data_received(self, data: bytes) -> None:
        if self._partial:
            if b"\n" not in data:
                self._partial += data  # a bytearray: appending is not copying it all
                if len(self._partial) > self.max_line_length:
                    self.line_too_long()
                return
            data = bytes(self._partial) + data
            self._partial = b""
        end = len(data)
        newline = data.find(b"\n")
        # The common case, first: exactly one whole line, passed on uncopied.
        if newline == end - 1 and end <= self.max_line_length:
            self.line_received(data)
            return
        start = 0
        while newline >= 0:
            if newline + 1 - start > self.max_line_length:
                self.line_too_long()
                return
            self.line_received(data[start:newline + 1])
            if self.connection.closing:
                return  # line_received() closed: the rest is not for anyone
            start = newline + 1
            newline = data.find(b"\n", start)
        if start < end:
            if end - start > self.max_line_length:
                self.line_too_long()
                return
            self._partial = bytearray(data[start:])

    def eof_received(self) -> None:
        if self._partial:
            line, self._partial = bytes(self._partial), b""
            self.line_received(line)

    def line_received(self, line: bytes) -> None:
        """One line arrived, newline included. Does nothing here: override it."""

    def line_too_long(self) -> None:
        """A line beyond max_line_length: close the connection now, output dropped."""
        self._partial = b""
        self.server.close_connection(self.connection, ValueError(
            f"line longer than max_line_length ({self.max_line_length} bytes)"))

    def pending_input(self) -> int:
        return len(self._partial)


class LineEchoHandler(LineHandler):
    """Send every line back as it arrives."""

    __slots__ = ()

    def line_received(self, line: bytes) -> None:
        self.send(line)


class EventDrivenMixIn:
    """Mix-in that serves every connection from one thread with a selector. List it first.

    For stream servers only (TCPServer, UnixStreamServer). The handler class
    must be an EventHandler subclass (a BaseRequestHandler's handle() would
    block the loop: that is refused at construction).

    Class variables:

    - idle_timeout (300.0 s, None for never): close connections silent for longer
    - max_pending_output (256 KiB): stop reading a connection whose unsent
      output exceeds it, until half of it is sent
    - recv_size (64 KiB): bytes asked of one recv()

    Instance variables: ``connections`` (fd -> Connection), the table.

    Methods for the caller: serve_forever(), shutdown(), server_close() as
    for every server; handle_request() runs one turn of the loop;
    state_table() returns the table as rows. Methods for handlers and
    overriding: send(), finish_connection(), close_connection(),
    pause_reading(), resume_reading(), close_idle_connections().
    """

    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    max_pending_output = DEFAULT_MAX_PENDING_OUTPUT
    recv_size = DEFAULT_RECV_SIZE

    #: Methods netserv.lab.trace records.
    traced_hooks = ("get_request", "verify_request", "process_request", "handle_error",
                    "finish_connection", "close_connection", "pause_reading", "resume_reading",
                    "close_idle_connections", "shutdown_request", "close_request",
                    "service_actions", "handle_timeout")

    def __init__(self, server_address: Any, RequestHandlerClass: Any,
                 *args: Any, **kwargs: Any) -> None:
        """Refuse a blocking handler class before anything is bound."""
        if not (isinstance(RequestHandlerClass, type)
                and issubclass(RequestHandlerClass, EventHandler)):
            raise TypeError(
                f"{type(self).__name__} needs an EventHandler subclass (methods "
                f"connection_made, data_received, ...), got {RequestHandlerClass!r}: "
                f"a handler with a blocking handle() would stop every other client. "
                f"Use netserv.eventdriven.LineHandler, or a threading server.")
        if getattr(self, "socket_type", None) != socket.SOCK_STREAM:
            raise TypeError(f"{type(self).__name__}: EventDrivenMixIn serves streams "
                            f"(TCPServer, UnixStreamServer) only; a datagram server "
                            f"has no connections to keep a table of")
        self.connections: dict[int, Connection] = {}
        self._selector: selectors.BaseSelector | None = None
        self._now = time.monotonic()
        self._next_idle_check = 0.0
        super().__init__(server_address, RequestHandlerClass,  # type: ignore[call-arg]
                         *args, **kwargs)

    def server_activate(self) -> None:
        """Listen, non-blocking: accept() must not wait if the client left already."""
        super().server_activate()  # type: ignore[misc]
        self.socket.setblocking(False)  # type: ignore[attr-defined]

    def _get_selector(self) -> selectors.BaseSelector:
        # Created on first use, so that a server that never serves (or
        # failed to bind) holds no selector.
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
        return self._selector

    # -- the loop ----------------------------------------------------------

    def serve_forever(self, poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        """Serve every connection until shutdown() is called from another thread.

        service_actions() runs after every wake-up, and at least every
        poll_interval seconds. Resource handling: the waker exists only while
        the loop runs; connections stay in the table when it returns.
        """
        self._require_open("serve_forever")  # type: ignore[attr-defined]
        self._is_shut_down.clear()  # type: ignore[attr-defined]
        self._serving_thread = threading.get_ident()
        waker = self._waker = Waker()
        if not self._stop_requested:  # type: ignore[has-type]
            self.state = ServerState.SERVING
        selector = self._get_selector()
        wait = poll_interval
        if self.idle_timeout is not None:
            wait = min(wait, self._idle_check_interval())
            self._next_idle_check = time.monotonic() + self._idle_check_interval()
        try:
            selector.register(self.socket, EVENT_READ, _LISTENER)  # type: ignore[attr-defined]
            selector.register(waker, EVENT_READ, _WAKER)
            while not self._stop_requested:
                self._run_once(wait)
                self.service_actions()  # type: ignore[attr-defined]
        finally:
            for fileobj in (waker, self.socket):  # type: ignore[attr-defined]
                try:
                    selector.unregister(fileobj)
                except (KeyError, ValueError):
                    pass  # never registered (register failed), or selector closed
            waker.close()
            self._waker = None
            self._serving_thread = None
            self._stop_requested = False
            if self.state is ServerState.CLOSED:  # server_close() from a handler
                self._close_selector()
            else:
                self.state = ServerState.READY
            self._is_shut_down.set()  # type: ignore[attr-defined]

    def handle_request(self) -> None:
        """Run one turn of the loop: wait at most ``timeout`` for any event.

        Accepts, reads and writes whatever is ready; if nothing became ready
        within the timeout, handle_timeout() runs.
        """
        self._require_open("handle_request")  # type: ignore[attr-defined]
        selector = self._get_selector()
        selector.register(self.socket, EVENT_READ, _LISTENER)  # type: ignore[attr-defined]
        try:
            handled = self._run_once(self.timeout)  # type: ignore[attr-defined]
        finally:
            selector.unregister(self.socket)  # type: ignore[attr-defined]
        if not handled:
            self.handle_timeout()  # type: ignore[attr-defined]

    def _run_once(self, timeout: float | None) -> int:
        """One turn: wait for ready sockets and serve them. Returns how many."""
        assert self._selector is not None
        ready = self._selector.select(timeout)
        if self._stop_requested:
            return len(ready)  # shutdown() during select(): take nothing more
        self._now = now = time.monotonic()
        for key, events in ready:
            conn = key.data
            if conn is _LISTENER:
                self._handle_request_noblock()  # type: ignore[attr-defined]
            elif conn is _WAKER:
                key.fileobj.drain()
            else:
                if events & EVENT_WRITE:
                    self._write_ready(conn)
                # closing: closed meanwhile (possibly by another connection's
                # handler), or reads nothing more.
                if events & EVENT_READ and not conn.closing:
                    self._read_ready(conn)
        if self.idle_timeout is not None and now >= self._next_idle_check:
            self._next_idle_check = now + self._idle_check_interval()
            if self.connections:
                self.close_idle_connections(now)
        return len(ready)

    def _idle_check_interval(self) -> float:
        assert self.idle_timeout is not None
        return self.idle_timeout / IDLE_CHECKS_PER_TIMEOUT

    def _read_ready(self, conn: Connection) -> None:
        """recv() once and hand the bytes to the handler."""
        try:
            data = conn.sock.recv(self.recv_size)
        except (BlockingIOError, InterruptedError):
            return  # woken up for nothing: the data went elsewhere
        except OSError as exc:  # ECONNRESET and its kin: the peer is gone
            self.close_connection(conn, exc)
            return
        conn.last_active = self._now
        handler = conn.handler
        try:
            if data:
                conn.bytes_in += len(data)
                handler.data_received(data)  # type: ignore[union-attr]
            else:
                handler.eof_received()  # type: ignore[union-attr]
                self.finish_connection(conn)
        except Exception as exc:
            self.handle_error(conn.sock, conn.address)  # type: ignore[attr-defined]
            self.close_connection(conn, exc)
        except BaseException:
            self.close_connection(conn)
            raise

    def _write_ready(self, conn: Connection) -> None:
        """The kernel has room again: send as much pending output as it takes."""
        outbuf = conn.outbuf
        if not outbuf:
            return
        try:
            sent = conn.sock.send(outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EPIPE, ECONNRESET: the peer is gone
            self.close_connection(conn, exc)
            return
        del outbuf[:sent]  # cheap: a bytearray drops its head without copying
        conn.bytes_out += sent
        conn.last_active = self._now
        if outbuf:
            if not conn.reading and len(outbuf) <= self.max_pending_output // 2:
                self.resume_reading(conn)
            return
        conn.outbuf = None
        if conn.closing:
            self.close_connection(conn)
        elif not conn.reading:
            self.resume_reading(conn)
        else:
            self._watch(conn)

    def _watch(self, conn: Connection) -> None:
        """Tell the selector which events matter for conn now."""
        events = EVENT_READ if conn.reading and not conn.closing else 0
        if conn.outbuf:
            events |= EVENT_WRITE
        assert self._selector is not None
        if events:
            self._selector.modify(conn.sock, events, conn)
        # events == 0 happens only to a connection about to be closed.

    # -- connections: open, send, close ------------------------------------

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """Add the accepted connection to the table and call connection_made().

        Unlike the other models, the request is not finished here: it stays
        in the table until one side closes it. An Exception from the handler
        goes to handle_error() and closes this connection only.
        """
        request.setblocking(False)
        conn = Connection(request, client_address, self._now)
        conn.handler = self.RequestHandlerClass(conn, self)  # type: ignore[attr-defined]
        self.connections[conn.fd] = conn
        self._get_selector().register(request, EVENT_READ, conn)
        try:
            conn.handler.connection_made()
        except Exception as exc:
            self.handle_error(request, client_address)  # type: ignore[attr-defined]
            self.close_connection(conn, exc)
        except BaseException:
            self.close_connection(conn)
            raise

    def send(self, conn: Connection, data: bytes) -> None:
        """Send data on conn now if the kernel takes it; keep the rest for later.

        Never blocks. When the pending output grows beyond
        max_pending_output, reading from conn pauses. Data for a closed
        connection is dropped; a send error closes the connection.
        """
        if conn.closed:
            return
        if conn.outbuf:
            conn.outbuf += data  # keep the order: behind what is pending
        else:
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:  # EPIPE, ECONNRESET: the peer is gone
                self.close_connection(conn, exc)
                return
            conn.bytes_out += sent
            if sent == len(data):
                return  # the usual case: no buffer, no selector change
            conn.outbuf = bytearray(memoryview(data)[sent:])
            self._watch(conn)
        if conn.reading and len(conn.outbuf) > self.max_pending_output:
            self.pause_reading(conn)

    def pause_reading(self, conn: Connection) -> None:
        """Stop reading from conn: its unsent output is beyond max_pending_output."""
        conn.reading = False
        self._watch(conn)

    def resume_reading(self, conn: Connection) -> None:
        """Read from conn again: its client has read enough of the pending output."""
        conn.reading = True
        self._watch(conn)

    def finish_connection(self, conn: Connection) -> None:
        """Read nothing more from conn; close it once its pending output is sent."""
        if conn.closing:
            return
        conn.closing = True
        if conn.outbuf:
            self._watch(conn)
        else:
            self.close_connection(conn)

    def close_connection(self, conn: Connection, exc: BaseException | None = None) -> None:
        """Close conn now: out of the table, connection_lost(exc), shutdown_request().

        Pending output is dropped. An Exception from connection_lost() goes
        to handle_error(); the socket is closed in any case. Closing a closed
        connection does nothing.
        """
        if conn.closed:
            return
        conn.closed = conn.closing = True
        conn.outbuf = None
        del self.connections[conn.fd]
        if self._selector is not None:
            self._selector.unregister(conn.sock)
        try:
            conn.handler.connection_lost(exc)  # type: ignore[union-attr]
        except Exception:
            self.handle_error(conn.sock, conn.address)  # type: ignore[attr-defined]
        finally:
            self.shutdown_request(conn.sock)  # type: ignore[attr-defined]

    def close_idle_connections(self, now: float) -> None:
        """Close every connection without traffic for idle_timeout seconds."""
        assert self.idle_timeout is not None
        oldest_allowed = now - self.idle_timeout
        idle = [conn for conn in self.connections.values()
                if conn.last_active < oldest_allowed]
        for conn in idle:
            self.close_connection(conn, TimeoutError(
                f"no traffic for {self.idle_timeout} s (idle_timeout)"))

    # -- looking at the table ----------------------------------------------

    def state_table(self) -> list[dict[str, Any]]:
        """The table of connections as plain rows, oldest first.

        Each row: fd, client, age and idle (seconds), bytes_in, bytes_out,
        partial_input (bytes held waiting for the rest of a message),
        pending_output (bytes not yet taken by the kernel), reading, closing.
        Safe to call from another thread while the loop runs: it is a
        snapshot, and the fields of a row may be a moment apart.
        """
        now = time.monotonic()
        rows = []
        for conn in list(self.connections.values()):
            outbuf = conn.outbuf
            rows.append({
                "fd": conn.fd,
                "client": conn.address,
                "age": now - conn.opened_at,
                "idle": now - conn.last_active,
                "bytes_in": conn.bytes_in,
                "bytes_out": conn.bytes_out,
                "partial_input": conn.handler.pending_input() if conn.handler else 0,
                "pending_output": len(outbuf) if outbuf else 0,
                "reading": conn.reading,
                "closing": conn.closing,
            })
        rows.sort(key=lambda row: -row["age"])
        return rows

    # -- closing -----------------------------------------------------------

    def server_close(self) -> None:
        """Stop the loop (waiting for it), close every connection, then the server.

        Called from another thread while serve_forever() runs, it first stops
        the loop and waits until it has (the table belongs to the loop's
        thread). Every connection is closed without sending its pending
        output; each handler's connection_lost(None) runs.
        """
        in_loop = self._serving_thread == threading.get_ident()
        if self._serving_thread is not None and not in_loop:
            self._request_stop()  # type: ignore[attr-defined]
            self._is_shut_down.wait()  # type: ignore[attr-defined]
        super().server_close()  # type: ignore[misc]
        for conn in list(self.connections.values()):
            self.close_connection(conn)
        if not in_loop:  # otherwise the loop closes it on its way out
            self._close_selector()

    def _close_selector(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None


def format_state_table(rows: list[dict[str, Any]]) -> str:
    """Format state_table() rows as an aligned text table, for printing."""
    columns = ["fd", "client", "age", "idle", "bytes_in", "bytes_out",
               "partial_input", "pending_output", "reading", "closing"]

    def cell(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row[name]) for name in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(text.rjust(width) for text, width in zip(line, widths))
                     for line in table)


class EventDrivenTCPServer(EventDrivenMixIn, TCPServer): pass


if hasattr(socket, "AF_UNIX"):
    from .unix import UnixStreamServer

    class EventDrivenUnixStreamServer(EventDrivenMixIn, UnixStreamServer): pass

    __all__ += ["EventDrivenUnixStreamServer"]
