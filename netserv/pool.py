"""ThreadPoolMixIn: a fixed number of worker threads and a bounded queue.

Theory of operation
-------------------
ThreadingMixIn starts one thread per request, with no limit: a burst of
10,000 connections is 10,000 threads. A pool bounds both numbers:

* ``pool_size`` worker threads, started together when a loop starts
  (serve_forever() or handle_request(); not at construction, so a server
  whose bind() failed leaves no thread behind), each looping: take a
  request from the queue, finish it, take the next.
* a queue of at most ``queue_size`` accepted requests waiting for a worker.

``process_request()``, in the serve loop's thread, only puts the request in
the queue. When the queue is full it *waits* for a free slot, and while it
waits the loop accepts nothing: new connections wait in the kernel's listen
backlog (``request_queue_size``), and when that is full too, the kernel makes
clients wait in connect(). This is back-pressure: the server never holds more
than ``pool_size + queue_size`` requests, and a burst is absorbed by queues
that already exist instead of by new threads. ``handle_queue_full()`` is
called, in the loop's thread, each time the loop is about to wait like this,
so the moment is visible (tracing, tests, a log line).

Shutdown stays prompt: ``shutdown()`` wakes a process_request() that waits
for a slot. The request it holds was accepted, so it is not dropped: it joins
the queue even though the queue is full (the only time the queue holds
``queue_size + 1``), and is served or closed by server_close() like the rest.

``server_close()`` stops the pool after closing the listening socket:

* ``block_on_close = True`` (the default, as for ThreadingMixIn): the workers
  finish every request already queued, then exit; server_close() waits for
  them. No accepted request is lost.
* ``block_on_close = False``: requests still in the queue are closed
  unserved (shutdown_request), and server_close() returns without waiting
  for the requests the workers are busy with.

Workers are daemon threads, always: a worker waiting for work must never
keep the interpreter alive because someone forgot server_close(). Waiting
for them is server_close()'s job (with block_on_close), not the
interpreter's.

Errors: a request's Exception goes to handle_error() and the request is
shut down, as with a thread per request. Anything else a handler raises
(SystemExit, KeyboardInterrupt: any BaseException) goes to handle_error()
too, and the worker goes on. With a thread per request such an exception
ends only that request's thread; in a pool it would end a worker that every
later request needs, and after pool_size of them nothing would be served
again. A worker that dies all the same (handle_error() itself raised) is
reported by threading.excepthook like any thread, and replaced at once:
``pool_status()`` counts the workers still running.

``pool_size`` (1 to MAX_POOL_SIZE) and ``queue_size`` (at least 1) are
checked by the constructor before binding, and again when a loop starts (a
pool of 0 workers would accept requests and never serve them). If the
system will not start all pool_size threads ("can't start new thread":
ulimit -u, kernel.threads-max, address space for their stacks), the loop
does not start: the threads already started are stopped and RuntimeError
says how many started, before any request is accepted. No request is lost
and no pool runs short without a word.
"""

from __future__ import annotations

import collections
import socket
import threading
from typing import TYPE_CHECKING, Any

from .base import BaseServer
from .settings import Setting
from .tcp import TCPServer
from .udp import UDPServer

if TYPE_CHECKING:
    # The host the mix-in is combined with: any server. A base for the type
    # checker only; at run time the mix-in derives from object.
    _Host = BaseServer
else:
    _Host = object

__all__ = ["ThreadPoolMixIn", "ThreadPoolTCPServer", "ThreadPoolUDPServer"]

#: Worker threads. Small on purpose: a handler that computes holds the GIL,
#: so more threads than cores buys nothing, and a handler that waits on the
#: network is what the queue and backlog are for. Raise it for handlers
#: that block on slow back-ends.
DEFAULT_POOL_SIZE = 8

#: Accepted requests waiting for a worker. A few per worker smooths bursts;
#: a long queue only hides an overload (requests wait in it instead of being
#: refused at connect()).
DEFAULT_QUEUE_SIZE = 16

#: Most worker threads a pool may ask for. Every one starts when the loop
#: starts; each reserves a stack (8 MiB of address space by default) and
#: counts against the system's limits on threads, and beyond a few thousand
#: they only queue for the GIL. For more connections than that, use the
#: event-driven server (netserv.eventdriven).
MAX_POOL_SIZE = 10_000


class ThreadPoolMixIn(_Host):
    """Mix-in that hands each request to one of a fixed set of threads. List it first.

    Class variables:

    - pool_size (8, at most MAX_POOL_SIZE): worker threads, started when a loop starts
    - queue_size (16): accepted requests that may wait for a worker; when
      the queue is full the serve loop stops accepting until a slot frees
    - block_on_close (True): server_close() lets the workers finish every
      queued request and waits for them; False closes queued requests
      unserved and does not wait

    Methods: process_request() queues the request (waiting for a slot if the
    queue is full); process_request_thread() is what a worker runs for one
    request (may be overridden); handle_queue_full() is called before the
    loop waits for a slot (does nothing; may be overridden); server_close()
    extends the server's to stop the pool; pool_status() reports the pool.

    The constructor raises TypeError or ValueError for a pool_size or
    queue_size out of range, before anything is bound (and a loop that
    starts, if they were changed since). A loop that cannot start all
    pool_size threads raises RuntimeError before it accepts anything.
    """

    pool_size = DEFAULT_POOL_SIZE
    queue_size = DEFAULT_QUEUE_SIZE
    block_on_close = True
    numeric_settings: tuple[Setting, ...] = (
        Setting("pool_size", 1, MAX_POOL_SIZE, integer=True,
                why="0 workers would never serve; all start at once, each a thread"),
        Setting("queue_size", 1, integer=True,
                why="0 would leave no room for the request the loop accepted"),
    )

    #: Hooks that netserv.lab.trace records, in addition to the pipeline's own.
    traced_hooks = ("get_request", "verify_request", "process_request",
                    "handle_queue_full", "process_request_thread", "finish_request",
                    "handle_error", "shutdown_request", "close_request", "service_actions")

    # Created by _start_pool() when a loop starts.
    _workers: list[threading.Thread] | None = None
    _pool_lock: threading.Lock | None = None

    def _loop_start(self, selector: Any) -> None:
        """Start the pool (once) before the loop accepts anything."""
        super()._loop_start(selector)
        if self._workers is None:
            self._start_pool()

    def _start_pool(self) -> None:
        """Create the queue and start pool_size workers. Loop thread only.

        If a thread cannot be started, stops those that did and raises
        RuntimeError (from the threading module's): the pool is then as
        before, and a later loop tries again.
        """
        self._pool_lock = threading.Lock()
        # Workers wait on _work_ready, the loop waits on _slot_free: two
        # conditions on one lock, so each wakes only the side that can act.
        self._work_ready = threading.Condition(self._pool_lock)
        self._slot_free = threading.Condition(self._pool_lock)
        self._queue: collections.deque[tuple[Any, Any]] = collections.deque()
        self._busy = 0
        self._pool_closed = False
        self._workers = []
        self._workers_started = 0
        try:
            with self._pool_lock:
                self._replace_workers()
        except RuntimeError as error:  # "can't start new thread"
            started = self._workers_started - 1  # the last one did not start
            self._stop_pool()
            raise RuntimeError(
                f"{type(self).__name__}: the system started only {started} of pool_size="
                f"{self.pool_size} worker threads ({error}); the loop did not start and "
                f"accepted nothing. Lower pool_size, or raise the limits on threads "
                f"(ulimit -u, kernel.threads-max, address space for their stacks)") from error

    def _stop_pool(self) -> None:
        """Stop the workers that started and forget the pool (it never served)."""
        assert self._pool_lock is not None
        with self._pool_lock:
            self._pool_closed = True
            self._work_ready.notify_all()
            workers = [worker for worker in self._workers or () if worker.ident is not None]
        for worker in workers:
            worker.join()
        self._workers = self._pool_lock = None

    def _replace_workers(self) -> None:
        """Start workers until pool_size run. Called with the pool's lock held."""
        assert self._workers is not None
        name = type(self).__name__
        while len(self._workers) < self.pool_size and not self._pool_closed:
            worker = threading.Thread(target=self._work, daemon=True,
                                      name=f"{name}-worker-{self._workers_started}")
            self._workers_started += 1
            self._workers.append(worker)
            try:
                worker.start()
            except RuntimeError:
                self._workers.remove(worker)  # never ran: nothing will remove it
                raise

    def process_request(self, request: Any, client_address: Any) -> None:
        """Queue the request for a worker; wait for a slot while the queue is full.

        Called in the serve loop's thread. If the pool is already closed
        (server_close() ran while the loop was still accepting) the request
        is closed unserved.
        """
        if self._workers is None:
            self._start_pool()
        with self._slot_free:
            full = len(self._queue) >= self.queue_size and not self._pool_stopping()
        if full:
            # Outside the lock, so that the hook may call pool_status().
            self.handle_queue_full()
        with self._slot_free:
            while len(self._queue) >= self.queue_size and not self._pool_stopping():
                self._slot_free.wait()
            closed = self._pool_closed
            if not closed:
                self._queue.append((request, client_address))
                self._work_ready.notify()
        if closed:
            self.shutdown_request(request)

    def _pool_stopping(self) -> bool:
        return self._pool_closed or self.stop_requested

    def handle_queue_full(self) -> None:
        """Called in the loop's thread when an accepted request finds the queue full.

        The loop then waits for a free slot, accepting nothing meanwhile.
        Does nothing; override it to log or count these moments.
        """

    def _work(self) -> None:
        """A worker's life: take requests from the queue until the pool closes.

        The worker leaves the list of workers when it ends, however it ends,
        so that pool_status() and server_close() see only running workers;
        one that dies while the pool is open is replaced at once.
        """
        try:
            while True:
                with self._work_ready:
                    while not self._queue and not self._pool_closed:
                        self._work_ready.wait()
                    if not self._queue:
                        return  # closed, and nothing left to serve
                    request, client_address = self._queue.popleft()
                    self._busy += 1
                    self._slot_free.notify()
                try:
                    self.process_request_thread(request, client_address)
                finally:
                    with self._work_ready:
                        self._busy -= 1
        finally:
            with self._work_ready:
                assert self._workers is not None
                self._workers.remove(threading.current_thread())
                self._replace_workers()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Finish the request in a worker; route any exception to handle_error.

        The routine of a thread per request, except that a BaseException
        (SystemExit, KeyboardInterrupt) is reported and handled too instead
        of ending the thread: the worker serves the next request. The
        request is shut down whatever happens. May be overridden.
        """
        try:
            self.finish_request(request, client_address)
        except BaseException:  # a worker outlives its requests, see the module docstring
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def _on_stop_requested(self) -> None:
        """Wake a process_request() waiting for a slot, so shutdown() is prompt."""
        super()._on_stop_requested()
        if self._pool_lock is not None:
            with self._slot_free:
                self._slot_free.notify_all()

    def pool_status(self) -> dict[str, int]:
        """A snapshot: workers running, workers busy, requests queued."""
        if self._pool_lock is None:
            return {"workers": 0, "busy": 0, "queued": 0}
        with self._pool_lock:
            return {"workers": len(self._workers or ()), "busy": self._busy,
                    "queued": len(self._queue)}

    def server_close(self) -> None:
        """Close the server, then stop the pool (see block_on_close).

        With block_on_close, waits until the workers have served every
        queued request and exited; without, closes the queued requests
        unserved and returns while busy workers finish on their own.
        """
        super().server_close()
        if self._pool_lock is None:
            return
        unserved: list[tuple[Any, Any]] = []
        with self._pool_lock:
            self._pool_closed = True
            if not self.block_on_close:
                unserved, self._queue = list(self._queue), collections.deque()
            self._work_ready.notify_all()
            self._slot_free.notify_all()
            workers = list(self._workers or ())
        current = threading.current_thread()
        if self.block_on_close:
            for worker in workers:
                if worker is not current:  # server_close() from a handler
                    worker.join()
            with self._pool_lock:
                # Normally empty now. Not if the workers died, or if this is
                # one of them: then it serves the rest once this returns.
                if current not in (self._workers or ()):
                    unserved, self._queue = list(self._queue), collections.deque()
        for request, _client_address in unserved:
            self.shutdown_request(request)


class ThreadPoolUDPServer(ThreadPoolMixIn, UDPServer): pass
class ThreadPoolTCPServer(ThreadPoolMixIn, TCPServer): pass


if hasattr(socket, "AF_UNIX"):
    from .unix import UnixDatagramServer, UnixStreamServer

    class ThreadPoolUnixStreamServer(ThreadPoolMixIn, UnixStreamServer): pass
    class ThreadPoolUnixDatagramServer(ThreadPoolMixIn, UnixDatagramServer): pass

    __all__ += ["ThreadPoolUnixStreamServer", "ThreadPoolUnixDatagramServer"]
