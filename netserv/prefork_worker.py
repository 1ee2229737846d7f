"""One pre-forked worker process: its serving threads, its drain, its parent watch.

Theory of operation
-------------------
netserv.prefork's parent forks a worker process and runs
``WorkerProcess(...).run()`` in it; run() returns the exit status, and the
worker leaves with ``os._exit()``. Inside the worker:

* ``threads`` *serving threads*, all alike. Each waits on the listening
  socket and on the read end of the worker's *drain pipe*; when the socket
  is readable, it accepts one connection and runs the whole pipeline
  (``serve_one``: BaseServer's, get_request ... close_request);
* the main thread, which serves nobody: it waits on the parent's *stop
  pipe* and on the drain pipe.

The worker *drains* (stops accepting, lets the requests in hand finish,
exits) when either of two things happens:

* the stop pipe reports end-of-file: the parent closed its end
  (shutdown()) or died, and the kernel closed it. Exit status 0;
* anything escapes a serving thread (a handler's SystemExit, an exception
  from a hook outside the pipeline's error handling): the thread prints its
  traceback and the worker exits with status 1, so that the parent starts a
  whole new one. No thread is lost silently, and the requests in flight on
  the other threads are not cut off.

To drain, the worker closes the drain pipe's write end (every serving
thread that waits wakes up and returns; one busy with a request returns
after it), closes its copy of the listening socket (once the parent and
every worker have closed theirs, new clients are refused instead of
waiting for nobody), and waits for its serving threads, at most
``graceful_timeout`` seconds; then it exits, abandoning any thread still
busy. A worker therefore never outlives its parent by more than
``graceful_timeout``, whatever its clients do (an idle keep-alive client
included).
"""

from __future__ import annotations

import os
import select
import selectors
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Self

__all__ = ["WORKER_FAILED", "WorkerProcess"]

#: Exit status of a worker that stopped because something escaped a thread.
WORKER_FAILED = 1


class WorkerProcess:
    """The body of one worker process (see the module docstring).

    ``listener`` is the listening socket (non-blocking: the threads that
    lose the race for a connection get EAGAIN, which ``serve_one`` drops);
    ``accept_wait()`` returns None, or the seconds left while accepting is
    paused (netserv.accepting); ``exclusive`` asks for one waiter to be
    woken per connection where the platform can (EPOLLEXCLUSIVE), instead of
    all of them.
    """

    def __init__(self, *, listener: socket.socket, stop_fd: int, threads: int,
                 graceful_timeout: float, serve_one: Callable[[], None],
                 accept_wait: Callable[[], float | None],
                 selector_class: type[selectors.BaseSelector], exclusive: bool) -> None:
        self._listener, self._listener_fd = listener, listener.fileno()
        self._stop_fd, self._threads = stop_fd, threads
        self._graceful_timeout = graceful_timeout
        self._serve_one, self._accept_wait = serve_one, accept_wait
        self._selector_class, self._exclusive = selector_class, exclusive
        self._drain_read, self._drain_write = os.pipe()
        self._drain_lock = threading.Lock()
        self._draining = False
        self._failed = False

    def run(self) -> int:
        """Serve until stopped or failed, drain, and return the exit status."""
        threads = [threading.Thread(target=self._serve, name=f"worker-thread-{n}", daemon=True)
                   for n in range(1, self._threads + 1)]
        try:
            for thread in threads:
                thread.start()
            with self._selector_class() as selector:
                selector.register(self._stop_fd, selectors.EVENT_READ)
                selector.register(self._drain_read, selectors.EVENT_READ)
                while not selector.select():
                    pass  # nothing is ever written: readable means end-of-file
        finally:
            self._drain()
        deadline = time.monotonic() + self._graceful_timeout
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join(max(0.0, deadline - time.monotonic()))
        return WORKER_FAILED if self._failed else 0

    def _serve(self) -> None:
        """One serving thread: accept and run the pipeline until the worker drains."""
        try:
            with WorkerWait(self._listener_fd, self._drain_read, self._selector_class,
                            self._exclusive) as wait:
                while not self._draining:
                    paused = self._accept_wait()
                    ready = wait.select(watch_listener=not paused, timeout=paused or None)
                    if self._draining:
                        return
                    if ready:
                        # Accept one connection and run the pipeline (accept()
                        # failing with EAGAIN: another waiter was first).
                        self._serve_one()
        except OSError:
            if not self._draining:  # draining: the listener was closed under this thread
                self._fail()
        except BaseException:
            self._fail()

    def _fail(self) -> None:
        """Something escaped this thread: say so, and drain the worker (status 1)."""
        print(f"netserv pre-fork worker {os.getpid()}: {threading.current_thread().name} "
              f"stopped by an exception that escaped it; the worker finishes its other "
              f"requests and exits, and its parent starts a new one", file=sys.stderr)
        traceback.print_exc()
        self._failed = True
        self._drain()

    def _drain(self) -> None:
        """Stop accepting in every thread of this worker; closes the listener. Once."""
        with self._drain_lock:
            if self._draining:
                return
            self._draining = True
            os.close(self._drain_write)  # every wait on the drain pipe wakes
            self._listener.close()


class WorkerWait:
    """A serving thread's wait on the listening socket and the drain pipe.

    With epoll's EPOLLEXCLUSIVE (Linux 4.5 and later) a new connection
    wakes one or more of the waiting threads (epoll_ctl(2): "one or more"),
    not all of them. Elsewhere, or with ``exclusive`` False, every waiting
    thread of every worker wakes, and all but one find nothing to accept:
    the *thundering herd*.
    """

    def __init__(self, listener: int, drain_fd: int,
                 selector_class: type[selectors.BaseSelector], exclusive: bool) -> None:
        self._listener, self._watched = listener, False
        use_epoll = exclusive and hasattr(select, "EPOLLEXCLUSIVE")
        self._epoll = select.epoll() if use_epoll else None
        self._selector = selector_class()
        self._watch(drain_fd, True)

    def _watch(self, fd: int, on: bool) -> None:
        if self._epoll is None and on:
            self._selector.register(fd, selectors.EVENT_READ)
        elif self._epoll is None:
            self._selector.unregister(fd)
        elif on:
            exclusive = select.EPOLLEXCLUSIVE if fd == self._listener else 0
            self._epoll.register(fd, select.EPOLLIN | exclusive)
        else:
            self._epoll.unregister(fd)

    def select(self, watch_listener: bool, timeout: float | None) -> list[int]:
        """The ready descriptors, watching the listener or not."""
        if watch_listener != self._watched:
            self._watch(self._listener, watch_listener)
            self._watched = watch_listener
        if self._epoll is not None:
            return [fd for fd, _ in self._epoll.poll(-1 if timeout is None else timeout)]
        return [key.fd for key, _ in self._selector.select(timeout)]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._selector.close()
        if self._epoll is not None:
            self._epoll.close()
