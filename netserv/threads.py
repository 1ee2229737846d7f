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
server_close() does not wait for them. Bookkeeping is exact: a tracked
thread forgets itself as it ends (an O(1) removal from a set), so the server
holds the threads still running and no more.

There is no limit on the number of threads: every accepted connection gets
one, however many there are. For a bound, use netserv.pool.ThreadPoolMixIn.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .base import BaseServer
from .tcp import TCPServer
from .udp import UDPServer

if TYPE_CHECKING:
    # The host the mix-in is combined with, for the type checker only: at
    # run time the mix-in derives from object and the server comes after it.
    _Host = BaseServer
else:
    _Host = object

__all__ = ["ThreadingMixIn", "ThreadingTCPServer", "ThreadingUDPServer"]

class _TrackedThreads:
    """The non-daemon request threads that server_close() must join.

    Each thread forgets itself when it finishes (an O(1) removal from a
    set), so the bookkeeping holds exactly the threads still running: memory
    stays bounded by the live requests, and no request pays for a scan.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def add(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.add(thread)

    def discard(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)

    def __len__(self) -> int:
        return len(self._threads)

    def join_all(self) -> None:
        """Join every thread running now (each removes itself as it ends)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()


class _RequestThread(threading.Thread):
    """A request's thread that leaves its server's _TrackedThreads when it ends.

    ``target`` stays process_request_thread, so the thread's default name
    (``Thread-N (process_request_thread)``) is the standard module's.
    """

    def __init__(self, tracked: _TrackedThreads, target: Callable[..., object],
                 args: tuple[object, ...]) -> None:
        super().__init__(target=target, args=args)
        self._tracked = tracked

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._tracked.discard(self)


class ThreadingMixIn(_Host):
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
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a thread that runs process_request_thread()."""
        args = (request, client_address)
        if self.block_on_close and not self.daemon_threads:
            if self._threads is None:
                self._threads = _TrackedThreads()
            thread: threading.Thread = _RequestThread(self._threads, self.process_request_thread,
                                                      args)
            self._threads.add(thread)
        else:
            thread = threading.Thread(target=self.process_request_thread, args=args)
        thread.daemon = self.daemon_threads
        try:
            thread.start()
        except BaseException:  # "can't start new thread": never to be joined
            if self._threads is not None:
                self._threads.discard(thread)
            raise

    def server_close(self) -> None:
        """Close the server, then wait for the request threads if block_on_close."""
        super().server_close()
        if self._threads is not None:
            self._threads.join_all()


class ThreadingUDPServer(ThreadingMixIn, UDPServer): pass
class ThreadingTCPServer(ThreadingMixIn, TCPServer): pass


if hasattr(socket, "AF_UNIX"):
    from .unix import UnixDatagramServer, UnixStreamServer

    class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer): pass
    class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer): pass

    __all__ += ["ThreadingUnixStreamServer", "ThreadingUnixDatagramServer"]
