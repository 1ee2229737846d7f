"""Wrong: holds the lock for the read only; the switch point and the write are outside it.

A plausible mistake that the checks must reject; the exercise was:
Exercise 05: a shared counter that many threads increment (the race, then the lock).

The protocol, over TCP, one line per request:

* ``INCR`` -> the counter's new value, e.g. ``1\\n``
* ``GET``  -> its current value
* anything else -> ``ERR unknown command\\n`` (the connection stays open)

``CounterServer`` is a ThreadingTCPServer: every connection has its own
handler thread, and all of them call ``server.increment()`` on the one
counter the server holds. ``increment()`` reads the counter, calls
``switch_point()`` and writes the new value back. ``switch_point()`` stands
for anything that may happen between the read and the write in real code (a
log line, a database call, the interpreter switching threads): while one
thread is there, another may read the same old value, and one increment is
lost. Your task: make increment() correct whatever happens at the switch
point, without removing it.

Read first: lessons/04_concurrency.md and notebooks/08_threading.ipynb,
netserv/threads.py, and threading.Lock in the standard library documentation.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import netserv


def switch_point() -> None:
    """Give other threads a chance to run here (the checks replace this function)."""
    time.sleep(0)  # releases the GIL: another thread may run now


class CounterServer(netserv.ThreadingTCPServer):
    """A threading TCP server holding one counter shared by every handler thread."""

    # Handler threads end when their client disconnects; server_close() joins them.
    block_on_close = True

    def __init__(self, server_address: Any, RequestHandlerClass: Any) -> None:
        self.count = 0
        # One lock per counter: it guards self.count, and nothing else.
        self.count_lock = threading.Lock()
        super().__init__(server_address, RequestHandlerClass)

    def increment(self) -> int:
        """Add one to the counter and return the new value; safe from any thread."""
        with self.count_lock:
            value = self.count
        switch_point()
        self.count = value + 1
        return self.count


class CounterHandler(netserv.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            command = line.strip().upper()
            if command == b"INCR":
                self.wfile.write(b"%d\n" % self.server.increment())
            elif command == b"GET":
                self.wfile.write(b"%d\n" % self.server.count)
            else:
                self.wfile.write(b"ERR unknown command\n")


def make_server(address: Any = ("127.0.0.1", 0)) -> CounterServer:
    return CounterServer(address, CounterHandler)
