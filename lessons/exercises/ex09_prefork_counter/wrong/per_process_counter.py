"""Wrong: an int on the server and a threading.Lock, as for threads: one counter per worker.

Exercise 09: a counter shared by pre-forked worker processes.

The protocol, over TCP, one line per request (the shared counter of lesson 4):

* ``INCR`` -> the counter's new value, e.g. ``1\\n``
* ``GET``  -> its current value
* anything else -> ``ERR unknown command\\n`` (the connection stays open)

``CounterServer`` is a PreForkTCPServer with two workers: each worker is a
*process*, forked when serving starts, with its own copy of the server's
memory. An ``int`` kept on the server object is therefore not one counter
but one per worker, and a ``threading.Lock`` is one lock per worker, which
keeps out nobody in the other process. The counter must live in memory the
workers share, and the lock must work across processes; both must exist
before the workers are forked, so create them in ``__init__``.

``increment()`` reads the counter, calls ``switch_point()`` and writes the
new value back; ``switch_point()`` stands for work done between the read and
the write. Keep it, and make increment() exact across processes.

Read first: lessons/07_prefork_and_the_gil.md and
notebooks/14_prefork_and_the_gil.ipynb, netserv/prefork.py, and in the
standard library documentation: mmap (an anonymous map is shared with forked
children) and multiprocessing.Lock (a lock that works across processes).
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any

from netserv.handlers import StreamRequestHandler
from netserv.prefork import PreForkTCPServer

#: The counter's layout in shared memory: one signed 64-bit integer.
COUNTER = struct.Struct("q")
#: Seconds of work between the read and the write: long enough that two
#: workers incrementing at the same time overlap there, as real work would.
SWITCH_SECONDS = 0.002


def switch_point() -> None:
    """Work done between reading the counter and writing it back."""
    time.sleep(SWITCH_SECONDS)


class CounterServer(PreForkTCPServer):
    """A pre-forked TCP server holding one counter shared by every worker process."""

    workers = 2
    # A worker stuck with a client that never closes is killed this soon at shutdown.
    graceful_timeout = 2.0

    def __init__(self, server_address: Any, RequestHandlerClass: Any) -> None:
        # An anonymous map is shared with the processes forked later: all of them
        # see the same 8 bytes. A multiprocessing lock is a semaphore the kernel
        # keeps, so it excludes other processes too.
        self.count = 0
        self.count_lock = threading.Lock()
        # BEGIN STARTER
        # self.count = 0
        # END STARTER
        super().__init__(server_address, RequestHandlerClass)

    def read(self) -> int:
        """The counter's current value."""
        return self.count
        # BEGIN STARTER
        # return self.count
        # END STARTER

    def increment(self) -> int:
        """Add one to the counter and return the new value; exact across workers."""
        with self.count_lock:
            value = self.read()
            switch_point()
            self.count = value + 1
            return self.count
        # BEGIN STARTER
        # value = self.read()
        # switch_point()
        # self.count = value + 1
        # return self.count
        # END STARTER

    def server_close(self) -> None:
        super().server_close()
        # (nothing was created)
        # BEGIN STARTER
        # pass
        # END STARTER


class CounterHandler(StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            command = line.strip().upper()
            if command == b"INCR":
                self.wfile.write(b"%d\n" % self.server.increment())
            elif command == b"GET":
                self.wfile.write(b"%d\n" % self.server.read())
            else:
                self.wfile.write(b"ERR unknown command\n")


def make_server(address: Any = ("127.0.0.1", 0)) -> CounterServer:
    """A CounterServer on loopback, port 0 (the checks call this)."""
    return CounterServer(address, CounterHandler)
