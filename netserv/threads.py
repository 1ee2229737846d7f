"""ThreadingMixIn: one new thread per request.

Theory of operation
-------------------
The mix-in replaces one step of the pipeline, ``process_request()``: instead
of finishing the request in the loop's thread, it starts a thread that
finishes it, and returns at once, so the loop goes back to accepting. Each
thread runs ``process_request_thread()``, which does what the synchronous
pipeline does (finish, route an Exception to handle_error, shut the request
down) in the new thread.

Why the mix-in comes first: ``class ThreadingTCPServer(ThreadingMixIn,
TCPServer)`` puts ThreadingMixIn.process_request before
BaseServer.process_request in the method resolution order. Listed the other
way round, BaseServer's would win and the server would stay synchronous;
netserv refuses such a class when it is created (see netserv.base).

At shutdown: threads are joined by server_close() when ``block_on_close`` is
true (the default) and they are not daemon threads. ``daemon_threads = True``
makes them daemons instead: the interpreter may exit while they run, and
server_close() does not wait for them.

There is no limit on the number of threads: every accepted connection gets
one, however many there are. For a bound, use netserv.pool.ThreadPoolMixIn.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from .tcp import TCPServer
from .udp import UDPServer

__all__ = ["ThreadingMixIn", "ThreadingTCPServer", "ThreadingUDPServer"]

#: Finished threads are forgotten when the list of tracked threads grows to
#: twice its size after the last clean-up, and never below this many: the
#: clean-up costs O(1) per request on average, and memory stays bounded.
_MIN_THREADS_BEFORE_CLEANUP = 16


class _TrackedThreads:
    """The non-daemon threads that server_close() must join."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._cleanup_at = _MIN_THREADS_BEFORE_CLEANUP

    def add(self, thread: threading.Thread) -> None:
        if len(self._threads) >= self._cleanup_at:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._cleanup_at = max(_MIN_THREADS_BEFORE_CLEANUP, 2 * len(self._threads))
        self._threads.append(thread)

    def __len__(self) -> int:
        return len(self._threads)

    def join_all(self) -> None:
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()


class ThreadingMixIn:
    """Mix-in that handles each request in a new thread. List it first.

    Class variables:

    - daemon_threads (False): start request threads as daemon threads
    - block_on_close (True): server_close() joins the non-daemon threads

    Methods: process_request() starts the thread; process_request_thread()
    is what the thread runs (may be overridden); server_close() extends the
    server's to join the threads.
    """

    daemon_threads = False
    block_on_close = True
    _threads: _TrackedThreads | None = None

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Finish the request in this thread; route an Exception to handle_error."""
        try:
            self.finish_request(request, client_address)  # type: ignore[attr-defined]
        except Exception:
            self.handle_error(request, client_address)  # type: ignore[attr-defined]
        finally:
            self.shutdown_request(request)  # type: ignore[attr-defined]

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a thread that runs process_request_thread()."""
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address))
        thread.daemon = self.daemon_threads
        if self.block_on_close and not thread.daemon:
            if self._threads is None:
                self._threads = _TrackedThreads()
            self._threads.add(thread)
        thread.start()

    def server_close(self) -> None:
        """Close the server, then wait for the request threads if block_on_close."""
        super().server_close()  # type: ignore[misc]
        if self._threads is not None:
            self._threads.join_all()


class ThreadingUDPServer(ThreadingMixIn, UDPServer): pass
class ThreadingTCPServer(ThreadingMixIn, TCPServer): pass


if hasattr(socket, "AF_UNIX"):
    from .unix import UnixDatagramServer, UnixStreamServer

    class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer): pass
    class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer): pass

    __all__ += ["ThreadingUnixStreamServer", "ThreadingUnixDatagramServer"]
