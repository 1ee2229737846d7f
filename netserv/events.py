"""The event-driven server's connections and handlers: Connection and EventHandler.

Theory of operation
-------------------
In the other models a handler is a function that runs from the start to the
end of a request and may block (wait in recv() for the next line). In the
event-driven model (netserv.eventdriven) nothing may block, so a handler is
an object per connection whose methods the loop calls when something happens:
:class:`EventHandler` has ``connection_made()``, ``data_received(data)``,
``eof_received()`` and ``connection_lost(exc)``, and replies with
``self.send(data)``, which never blocks. :class:`LineHandler` cuts the byte
stream into lines and calls ``line_received(line)``; :class:`LineEchoHandler`
sends each line back.

What a thread would keep on its stack (what this client has sent so far,
what we still owe it) is kept in a record instead: a :class:`Connection`, one
row of the server's table ``server.connections``. ``format_state_table()``
prints that table.

Limits (LineHandler). ``max_line_length``: a line longer than this
(received in part or whole) calls ``line_too_long()``, which closes the
connection at once: a line protocol has no way to resynchronise after a line
it could not hold. The client sees end-of-file, or a reset if it was still
sending. ``request_deadline``: a partial line older than this closes the
connection (connection_lost() gets a TimeoutError). The server's
``idle_timeout`` cannot do that: a client that trickles one byte every
100 ms is never idle. The deadline is checked when bytes arrive and, for a
client that went silent mid-line, by the loop's periodic scan of the table,
which asks each handler ``expired(now)`` (see ``overdue()``).

Where new things go: a handler for another protocol is a subclass of
EventHandler (or LineHandler) here or in user code; what the loop does with
sockets lives in netserv.eventdriven.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from selectors import EVENT_READ, EVENT_WRITE
from typing import Any, Protocol, TypedDict

from .settings import Setting

__all__ = ["Connection", "ConnectionTable", "EventHandler", "LineEchoHandler", "LineHandler",
           "StateRow", "format_state_table", "overdue", "shortest_limit"]

#: Longest line (with its newline) that LineHandler accepts. Far above any
#: line this course's protocols send; it bounds what a client that never
#: sends a newline can make the server hold.
DEFAULT_MAX_LINE_LENGTH = 64 * 1024

#: Seconds a partial line may wait for its newline (LineHandler.request_deadline).
#: A client sends a line at once: nc and telnet send it when Enter is pressed,
#: a program in one write. Even the longest line allowed (max_line_length)
#: arrives within it at 52 kbit/s, a slow modem. It bounds what a client that
#: trickles bytes (each one resets idle_timeout) can hold: 10 s, not hours.
DEFAULT_REQUEST_DEADLINE = 10.0


class StateRow(TypedDict):
    """One connection as a row of ``server.state_table()``: plain values, a snapshot."""

    fd: int
    client: Any  # the client's address, as accept() returned it
    age: float  # seconds since the connection was accepted
    idle: float  # seconds since the last byte in either direction
    bytes_in: int
    bytes_out: int
    partial_input: int  # bytes held waiting for the rest of a message
    pending_output: int  # bytes not yet taken by the kernel
    reading: bool
    closing: bool


class ConnectionTable(Protocol):
    """What a handler needs from its server: the table's three operations."""

    def send(self, conn: Connection, data: bytes) -> None: ...

    def finish_connection(self, conn: Connection) -> None: ...

    def close_connection(self, conn: Connection, exc: BaseException | None = None) -> None: ...


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

    handler: EventHandler  # set by the server right after the record is made

    def __init__(self, sock: socket.socket, address: Any, now: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.address = address
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

    def events(self) -> int:
        """The selector events that matter now (0 only for a connection about to close)."""
        events = EVENT_READ if self.reading and not self.closing else 0
        if self.outbuf:
            events |= EVENT_WRITE
        return events

    def row(self, now: float) -> StateRow:
        """This record as one row of the state table (see StateRow), at time ``now``."""
        outbuf = self.outbuf
        return {"fd": self.fd, "client": self.address,
                "age": now - self.opened_at, "idle": now - self.last_active,
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "partial_input": self.handler.pending_input(),
                "pending_output": len(outbuf) if outbuf else 0,
                "reading": self.reading, "closing": self.closing}


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
      TimeoutError from the idle check or from expired())
    - expired(now): in the loop's periodic scan; an error returned closes
      the connection with it (None here: only idle_timeout applies)

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
    traced_hooks: tuple[str, ...] = ("connection_made", "data_received", "eof_received",
                                     "connection_lost")

    def __init__(self, connection: Connection, server: ConnectionTable) -> None:
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

    def expired(self, now: float) -> BaseException | None:
        """The error to close the connection with if its request took too long.

        ``now`` is a time.monotonic() value. Called by the loop's periodic
        scan; must be quick and must not raise. None here: no deadline.
        """
        return None


class LineHandler(EventHandler):
    """An EventHandler for line protocols: calls line_received() once per line.

    A line is the bytes up to and including b"\\n", passed as ``bytes``;
    what follows the last newline is held until the rest arrives (the
    *partial line*, see pending_input()). When the client half-closes, a
    partial line left over is passed to line_received() without a newline,
    as ``for line in rfile`` does in a StreamRequestHandler.

    Class variables:

    - max_line_length (64 KiB): a longer line calls line_too_long(), which
      by default closes the connection at once.
    - request_deadline (10.0 s, None for never): a partial line older than
      this, counted from the arrival of its first byte, closes the
      connection; connection_lost() gets a TimeoutError. Checked when bytes
      arrive and by the loop's periodic scan (which then runs at least every
      request_deadline / 4), so a silent client is closed within 1.25 times
      the deadline.
    """

    __slots__ = ("_partial", "_partial_since")

    traced_hooks = (*EventHandler.traced_hooks, "line_received", "line_too_long")

    max_line_length = DEFAULT_MAX_LINE_LENGTH
    request_deadline: float | None = DEFAULT_REQUEST_DEADLINE
    #: Checked by the server at construction and when its loop starts (netserv.settings).
    numeric_settings: tuple[Setting, ...] = (
        Setting("max_line_length", 1, integer=True, why="a line holds at least its newline"),
        Setting("request_deadline", 0, above=True, unit="seconds", none="no deadline",
                why="0 or less expires every partial line at once, and makes the "
                    "server's loop scan without waiting"),
    )

    def __init__(self, connection: Connection, server: ConnectionTable) -> None:
        super().__init__(connection, server)
        # b"" is shared by every handler: no allocation until a line is split.
        self._partial: bytes | bytearray = b""
        self._partial_since = 0.0  # when the partial line's first byte came

    def data_received(self, data: bytes) -> None:
        if self._partial:
            error = self.expired(time.monotonic())
            if error is not None:  # a trickle: bytes come, the line never ends
                self._partial = b""
                self.server.close_connection(self.connection, error)
                return
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
            self._partial_since = time.monotonic()

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

    def expired(self, now: float) -> BaseException | None:
        """A TimeoutError if the partial line is older than request_deadline."""
        deadline = self.request_deadline
        if not self._partial or deadline is None or now - self._partial_since <= deadline:
            return None
        return TimeoutError(f"partial line older than request_deadline ({deadline:g} s)")


class LineEchoHandler(LineHandler):
    """Send every line back as it arrives."""

    __slots__ = ()

    def line_received(self, line: bytes) -> None:
        self.send(line)


def shortest_limit(idle_timeout: float | None, handler_class: type) -> float | None:
    """The shortest time limit the loop's periodic scan enforces, or None if none.

    The server's idle_timeout, and the handler class's request_deadline if it
    has one; the loop scans the table a few times per this limit.
    """
    deadline: float | None = getattr(handler_class, "request_deadline", None)
    if deadline is None or idle_timeout is None:  # asked once per turn: no list, no min()
        return idle_timeout if deadline is None else deadline
    return min(idle_timeout, deadline)


def overdue(connections: Iterable[Connection], now: float,
            idle_timeout: float | None) -> list[tuple[Connection, BaseException]]:
    """The connections to close at ``now``, each with the error for connection_lost().

    Idle for longer than idle_timeout (no byte in either direction), or
    past its handler's deadline (EventHandler.expired()).
    """
    found: list[tuple[Connection, BaseException]] = []
    for conn in connections:
        if idle_timeout is not None and now - conn.last_active > idle_timeout:
            found.append((conn, TimeoutError(f"no traffic for {idle_timeout} s (idle_timeout)")))
        elif conn.handler is not None:
            error = conn.handler.expired(now)
            if error is not None:
                found.append((conn, error))
    return found


def format_state_table(rows: Sequence[Mapping[str, object]]) -> str:
    """Format state_table() rows as an aligned text table, for printing."""
    columns = ["fd", "client", "age", "idle", "bytes_in", "bytes_out",
               "partial_input", "pending_output", "reading", "closing"]

    def cell(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row[name]) for name in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(text.rjust(width) for text, width in zip(line, widths, strict=True))
                     for line in table)
