"""Wrong: treats the bytes of each data_received() call as one whole line.

A plausible mistake that the checks must reject; the exercise was:
Exercise 07: a handler for the event-driven server (one thread, many clients).

The protocol, over TCP, one line per request (``\\n``-terminated; ``\\r\\n``
is fine too). Each connection keeps its own running total, starting at 0:

* an integer line (``12``, ``-5``, `` 7 ``) adds to the total; reply ``= <total>\\n``
* ``RESET`` (any case) sets it to 0; reply ``= 0\\n``
* anything else, an empty line included: ``ERR not a number\\n`` (the
  connection stays open)
* a line longer than MAX_LINE bytes, newline included (or more than MAX_LINE
  bytes without a newline yet): ``ERR line too long\\n``, then the server
  closes the connection
* when the client half-closes, a last line without a newline is handled
  like any other line, then the server closes.

The server is ``netserv.eventdriven.EventDrivenTCPServer``: a single thread
serves every connection, calling your handler's methods when something
happens. So nothing in them may wait: no recv(), no sleep, no readline().
Bytes arrive in pieces of any size, a line split over several
data_received() calls or several lines in one; keep what you have not used
yet in the handler (one handler object per connection: that is the table of
partial requests) and report its size from pending_input(), so that
``server.state_table()`` shows it. Reply with ``self.send(bytes)``, close
with ``self.close()``.

Read first: lessons/05_event_driven.md and notebooks/11_event_driven.ipynb,
EventHandler (and how LineHandler cuts lines) in netserv/eventdriven.py.
Do not subclass LineHandler here: writing the framing yourself is the point.
"""

from __future__ import annotations

from typing import Any

from netserv.eventdriven import EventDrivenTCPServer, EventHandler

#: Longest line accepted, newline included: far above any number, and it
#: bounds what a client that never sends a newline can make us hold.
MAX_LINE = 64


class SumHandler(EventHandler):
    """One connection's running total and partial line; called by the loop, never blocks."""

    __slots__ = ("total", "buffer")

    def connection_made(self) -> None:
        self.total = 0
        self.buffer = b""  # bytes received after the last newline

    def data_received(self, data: bytes) -> None:
        self.line_received(data)
        while False:
            newline = self.buffer.find(b"\n")
            if newline < 0:
                break
            line, self.buffer = self.buffer[:newline + 1], self.buffer[newline + 1:]
            if len(line) > MAX_LINE:
                self.line_too_long()
                return
            self.line_received(line)
        if len(self.buffer) > MAX_LINE:
            self.line_too_long()

    def eof_received(self) -> None:
        if self.buffer:
            line, self.buffer = self.buffer, b""
            self.line_received(line)

    def pending_input(self) -> int:
        return len(self.buffer)

    def line_received(self, line: bytes) -> None:
        """One whole line (newline included, or the last line at end of file)."""
        text = line.strip()
        if text.upper() == b"RESET":
            self.total = 0
        else:
            try:
                self.total += int(text)  # int() reads ASCII digits from bytes
            except ValueError:
                self.send(b"ERR not a number\n")
                return
        self.send(b"= %d\n" % self.total)

    def line_too_long(self) -> None:
        self.buffer = b""
        self.send(b"ERR line too long\n")
        self.close()  # sends what is pending, then closes


def make_server(address: Any = ("127.0.0.1", 0)) -> EventDrivenTCPServer:
    return EventDrivenTCPServer(address, SumHandler)
