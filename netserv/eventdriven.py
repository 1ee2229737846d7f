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
:class:`~netserv.events.Connection` record. ``server.state_table()`` returns
that table. The handlers, objects per connection whose methods the loop
calls (``data_received``, ``line_received``, ...), are in netserv.events.

The loop is BaseServer's serve_forever(), every model's. This mix-in changes
only what it watches and what a ready socket means, through its hooks::

    _loop_start         -> watch the listening socket and every connection
    _loop_timeout       -> close connections idle longer than idle_timeout or
                           past their handler's deadline; wait until the next check
    _loop_ready(key)    -> listening socket: accept, as every server does
                           (process_request adds a Connection and calls the
                           handler's connection_made())
                           readable connection: recv() once, data_received()
                           writable connection: send the pending output
    _loop_stop          -> forget the loop's selector; the table stays

Writing never blocks: what ``socket.send()`` did not take waits in the
connection's ``outbuf``, and only then is the socket watched for EVENT_WRITE.

Limits, so that one client cannot eat a single thread's memory: beyond
``max_pending_output`` unsent, the loop stops reading that connection until
half has drained (TCP flow control slows a client that never reads);
``idle_timeout``: a connection silent both ways this long is closed
(connection_lost() gets a TimeoutError); ``max_line_length``,
``request_deadline``: see LineHandler.

Errors: an Exception from a handler method goes to handle_error() and closes
*that* connection only; anything else closes it and propagates out of
serve_forever(). accept() out of descriptors: the listening socket is
unwatched for a moment; the connections are still served (netserv.accepting).
Only streams: a datagram server has no connections to keep a table of.
"""

from __future__ import annotations

import selectors
import socket
import time
from selectors import EVENT_READ, EVENT_WRITE
from typing import TYPE_CHECKING, Any

from .events import (
    Connection,
    EventHandler,
    LineEchoHandler,
    LineHandler,
    format_state_table,
    overdue,
    shortest_limit,
)
from .settings import MAX_BUFFER_SIZE, Setting
from .tcp import TCPServer

__all__ = ["Connection", "EventDrivenMixIn", "EventDrivenTCPServer", "EventHandler",
           "LineEchoHandler", "LineHandler", "format_state_table"]

if TYPE_CHECKING:
    from .events import StateRow

    # The host the mix-in is combined with: a stream server. A base for the
    # type checker only; at run time the mix-in derives from object.
    _Host = TCPServer
else:
    _Host = object

#: Bytes asked of one recv(): one call drains what a client has in flight,
#: and the kernel returns only what it has, so a large size costs nothing.
DEFAULT_RECV_SIZE = 65536

#: Seconds without a byte either way before a connection is closed: long for
#: a person typing into ``nc``, short enough that abandoned ones do not pile up.
DEFAULT_IDLE_TIMEOUT = 300.0

#: Unsent bytes per connection beyond which the loop stops reading from it: a
#: few send buffers; a slow but steady reader never reaches it, a stopped one does.
DEFAULT_MAX_PENDING_OUTPUT = 256 * 1024

#: Scans of the table per limit (idle_timeout, or the handler's shorter
#: request_deadline): a connection is closed between 1 and 1.25 times the
#: limit, and a scan of the table is cheap.
IDLE_CHECKS_PER_TIMEOUT = 4


class EventDrivenMixIn(_Host):
    """Mix-in that serves every connection from one thread with a selector. List it first.

    For stream servers only (TCPServer, UnixStreamServer). The handler class
    must be an EventHandler subclass (a BaseRequestHandler's handle() would
    block the loop: that is refused at construction).

    Class variables:

    - idle_timeout (300.0 s, None for never), max_pending_output (256 KiB),
      recv_size (64 KiB): see the module docstring. Checked with the
      handler's (netserv.settings) at construction and when a loop starts:
      an idle_timeout or request_deadline of 0 or less would make the loop
      scan its table without ever waiting.

    Instance variables: ``connections`` (fd -> Connection), the table.

    Methods: handle_request() runs one turn of the loop (waiting at most
    ``timeout``); state_table(); for handlers and overriding: send(),
    finish_connection(), close_connection(), pause_reading(),
    resume_reading(), close_idle_connections().
    """

    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    max_pending_output = DEFAULT_MAX_PENDING_OUTPUT
    recv_size = DEFAULT_RECV_SIZE
    numeric_settings: tuple[Setting, ...] = (
        Setting("idle_timeout", 0, above=True, unit="seconds", none="never",
                why="0 or less makes the loop scan its table without waiting: a core at 100 %"),
        Setting("max_pending_output", 0, integer=True,
                why="unsent bytes per connection before reading pauses"),
        Setting("recv_size", 1, MAX_BUFFER_SIZE, integer=True,
                why="recv(0) reads nothing, which looks like end-of-file; "
                    "each recv() allocates the whole size"),
    )
    # epoll where there is one: a wait costs what is ready, not what is
    # watched, which matters with thousands of connections.
    _selector_class: type[selectors.BaseSelector] = selectors.DefaultSelector

    #: Methods netserv.lab.trace records.
    traced_hooks = ("get_request", "verify_request", "process_request", "handle_error",
                    "finish_connection", "close_connection", "pause_reading", "resume_reading",
                    "close_idle_connections", "shutdown_request", "close_request",
                    "service_actions", "handle_timeout")

    def __init__(self, server_address: Any, RequestHandlerClass: Any,
                 bind_and_activate: bool = True) -> None:
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
        self._selector: selectors.BaseSelector | None = None  # the running loop's
        self._now = time.monotonic()  # when the loop last woke up
        self._next_idle_check = 0.0
        super().__init__(server_address, RequestHandlerClass, bind_and_activate)

    def server_activate(self) -> None:
        """Listen, non-blocking: accept() must not wait if the client left already."""
        super().server_activate()
        self.socket.setblocking(False)

    # -- the loop's hooks (see netserv.base.BaseServer) ----------------------

    def _loop_start(self, selector: selectors.BaseSelector) -> None:
        """Watch the listening socket and every connection in the table."""
        super()._loop_start(selector)
        self._selector = selector
        for conn in self.connections.values():
            selector.register(conn.sock, conn.events() or EVENT_READ, conn)
        limit = shortest_limit(self.idle_timeout, self.RequestHandlerClass)
        if limit is not None:
            self._next_idle_check = time.monotonic() + limit / IDLE_CHECKS_PER_TIMEOUT

    def _loop_ready(self, key: selectors.SelectorKey, events: int) -> None:
        """One ready socket: the listening one accepts; a connection reads or writes."""
        self._now = time.monotonic()
        conn: Connection | None = key.data
        if conn is None:
            super()._loop_ready(key, events)  # the listening socket
            return
        if events & EVENT_WRITE:
            self._write_ready(conn)
        # closing: closed meanwhile (possibly by another connection's
        # handler), or reads nothing more.
        if events & EVENT_READ and not conn.closing:
            self._read_ready(conn)

    def _loop_timeout(self, poll_interval: float | None) -> float | None:
        """Close idle and overdue connections when a scan is due; wait until the next."""
        wait = super()._loop_timeout(poll_interval)
        limit = shortest_limit(self.idle_timeout, self.RequestHandlerClass)
        if limit is None or not self.connections:
            return wait  # nothing to scan: the next connection is checked in time
        now = time.monotonic()
        if now >= self._next_idle_check:
            self._next_idle_check = now + limit / IDLE_CHECKS_PER_TIMEOUT
            if self.connections:
                self.close_idle_connections(now)
        until_check = self._next_idle_check - now
        return until_check if wait is None else min(wait, until_check)

    def _loop_stop(self, selector: selectors.BaseSelector) -> None:
        """Forget the loop's selector; the connections stay in the table."""
        self._selector = None
        super()._loop_stop(selector)

    def _request_wait(self) -> float | None:
        """handle_request() waits ``timeout``: the socket is non-blocking by design."""
        return self.timeout

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
                handler.data_received(data)
            else:
                handler.eof_received()
                self.finish_connection(conn)
        except Exception as exc:
            self.handle_error(conn.sock, conn.address)
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
        """Tell the running loop's selector (if any: the next loop's
        _loop_start() registers each connection) which events matter now."""
        events = conn.events()
        if events and self._selector is not None:
            self._selector.modify(conn.sock, events, conn)

    # -- connections: open, send, close ------------------------------------

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """Add the accepted connection to the table and call connection_made().

        Unlike the other models, the request is not finished here: it stays
        in the table until one side closes it. An Exception from the handler
        goes to handle_error() and closes this connection only.
        """
        request.setblocking(False)
        conn = Connection(request, client_address, self._now)
        handler = conn.handler = self.RequestHandlerClass(conn, self)
        self.connections[conn.fd] = conn
        if self._selector is not None:
            self._selector.register(request, EVENT_READ, conn)
        try:
            handler.connection_made()
        except Exception as exc:
            self.handle_error(request, client_address)
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
            conn.handler.connection_lost(exc)
        except Exception:
            self.handle_error(conn.sock, conn.address)
        finally:
            self.shutdown_request(conn.sock)

    def close_idle_connections(self, now: float) -> None:
        """Close every connection silent for idle_timeout seconds, or past its
        handler's deadline (LineHandler.request_deadline): see events.overdue()."""
        for conn, error in overdue(self.connections.values(), now, self.idle_timeout):
            self.close_connection(conn, error)

    # -- looking at the table ----------------------------------------------

    def state_table(self) -> list[StateRow]:
        """The table of connections as plain rows, oldest first.

        Each row is a netserv.events.StateRow. Safe to call from another
        thread while the loop runs: a snapshot, fields a moment apart.
        """
        now = time.monotonic()
        rows = [conn.row(now) for conn in list(self.connections.values())]
        rows.sort(key=lambda row: -row["age"])
        return rows

    # -- closing -----------------------------------------------------------

    def server_close(self) -> None:
        """Stop the loop (waiting for it), close every connection, then the server.

        The listening socket is closed and a running loop is asked to stop,
        as for every server. Called from another thread while serve_forever()
        runs, it then waits until the loop has returned (the table belongs to
        the loop's thread). Every connection is closed without sending its
        pending output; each handler's connection_lost(None) runs.
        """
        super().server_close()
        if not self._in_loop_thread():
            self.shutdown()  # after server_close(): waits only for a running loop
        for conn in list(self.connections.values()):
            self.close_connection(conn)


class EventDrivenTCPServer(EventDrivenMixIn, TCPServer): pass


if hasattr(socket, "AF_UNIX"):
    from .unix import UnixStreamServer

    class EventDrivenUnixStreamServer(EventDrivenMixIn, UnixStreamServer): pass

    __all__ += ["EventDrivenUnixStreamServer"]
