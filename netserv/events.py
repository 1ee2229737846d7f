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

Limit: ``max_line_length`` (LineHandler). A line longer than this (received
in part or whole) calls ``line_too_long()``, which closes the connection at
once: a line protocol has no way to resynchronise after a line it could not
hold. The client sees end-of-file, or a reset if it was still sending.

Where new things go: a handler for another protocol is a subclass of
EventHandler (or LineHandler) here or in user code; what the loop does with
sockets lives in netserv.eventdriven.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypedDict

__all__ = ["Connection", "ConnectionTable", "EventHandler", "LineEchoHandler", "LineHandler",
           "StateRow", "format_state_table"]

#: Longest line (with its newline) that LineHandler accepts. Far above any
#: line this course's protocols send; it bounds what a client that never
#: sends a newline can make the server hold.
DEFAULT_MAX_LINE_LENGTH = 64 * 1024


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

    def __init__(self, connection: Connection, server: ConnectionTable) -> None:
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


def format_state_table(rows: Sequence[Mapping[str, object]]) -> str:
    """Format state_table() rows as an aligned text table, for printing."""
    columns = ["fd", "client", "age", "idle", "bytes_in", "bytes_out",
               "partial_input", "pending_output", "reading", "closing"]

    def cell(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    table = [columns] + [[cell(row[name]) for name in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(text.rjust(width) for text, width in zip(line, widths))
                     for line in table)
