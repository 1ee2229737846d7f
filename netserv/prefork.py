"""PreForkMixIn: a fixed set of worker processes, each accepting for itself.

Theory of operation
-------------------
ForkingMixIn forks once per request. A pre-forked server forks ``workers``
processes once, when serving starts, and each of them runs the whole
pipeline itself (get_request ... close_request, handle_error) on the
listening socket they all inherited. The kernel hands each new connection to
one of the processes waiting in accept(). This is the model of Apache's
prefork and gunicorn's sync worker. Because the workers are processes, each
has its own interpreter and its own GIL: a CPU-bound handler runs on as many
cores as there are workers, which no thread-based model can do.

With ``threads_per_worker`` > 1 (gunicorn's gthread), each worker runs that
many threads, and *each thread accepts for itself*: a worker serves up to
threads_per_worker requests at once, and a connection it cannot take stays
in the kernel's queue for another worker. gunicorn's gthread accepts in one
thread and hands the connection to a pool; accepting in every thread gives
the same bound without a hand-off between threads.

The parent only supervises. Its serve_forever() loop (BaseServer's, driven
through the loop hooks) watches the waker and one *pidfd* per worker (a
descriptor that becomes readable when the process exits; where there is no
pidfd, service_actions() polls waitpid(WNOHANG) every poll_interval), never
the listening socket. It:

* restarts a worker that dies. A worker that dies within
  :data:`HEALTHY_SECONDS` of its start is crashing: the next start waits
  ``restart_backoff`` seconds, doubling with each such crash in a row up to
  ``restart_backoff_max``, so a handler that kills its worker on import or
  on every request does not turn the parent into a fork loop;
* stops the workers on shutdown(): every worker watches the read end of a
  *stop pipe* in its selector; the parent closes the write end, every
  worker sees end-of-file at once, finishes the request in hand and exits.
  A worker still running ``graceful_timeout`` seconds later gets SIGKILL.
  The loop ends only when every worker has been reaped (no zombies);
* reaps, in server_close(), any worker still left;
* cannot leave orphans: the write end of the stop pipe lives only in the
  parent, so when the parent dies (even by SIGKILL) the kernel closes it and
  every worker sees end-of-file, as on shutdown(). A process the parent
  forks for other reasons inherits that write end too and delays this until
  it exits.

Where each hook runs: get_request, verify_request, process_request,
finish_request, the handler, shutdown_request, close_request and
handle_error run in a worker. serve_forever, service_actions,
collect_children, shutdown, server_close and handle_request (which serves
one request synchronously, without workers) run in the parent. A worker
never returns into the parent's code: it leaves with ``os._exit()``.

Tracing: netserv.lab.trace wraps the server's hooks before serving starts,
so every worker inherits the wrappers and sends its events to the parent
through the tracer's pipe. A tracer attached after the workers started does
not see them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, NoReturn

from .base import ServerSelector
from .tcp import TCPServer

__all__: list[str] = []

#: A worker that lived less than this many seconds died of something that
#: will probably kill the next one too: its restart is delayed (back-off).
HEALTHY_SECONDS = 1.0
#: Exit status of a worker that stopped because an exception escaped it.
_WORKER_FAILED = 1
#: Held while the stop pipe's write end is closed or a worker is forked, so
#: that a worker is never forked around a descriptor number being closed.
#: Module-wide: it is held for microseconds, and a child never takes it.
_STOP_LOCK = threading.Lock()


@dataclasses.dataclass
class _Slot:
    """One worker position: the process in it now, and its crash record."""

    pid: int | None = None
    pidfd: int | None = None
    started: float = 0.0
    crashes: int = 0  # deaths in a row, each within HEALTHY_SECONDS of its start
    restart_at: float = 0.0  # monotonic time before which no restart happens


if TYPE_CHECKING:
    # For the type checker the mix-in is the server it is mixed into, so its
    # calls of the server's methods are checked; at run time it is a plain
    # class, as every mix-in (see netserv.base on the order of bases).
    _Server = TCPServer
else:
    _Server = object


if hasattr(os, "fork"):
    __all__ += ["PreForkMixIn", "PreForkTCPServer"]

    class PreForkMixIn(_Server):
        """Mix-in that serves requests in pre-forked worker processes. List it first.

        Class variables:

        - workers (2): worker processes started when serve_forever() starts
        - threads_per_worker (1): threads per worker, each accepting (gthread if > 1)
        - graceful_timeout (5.0): seconds shutdown() lets workers finish
          their request before it kills them with SIGKILL
        - restart_backoff (0.1), restart_backoff_max (5.0): delay before
          restarting a crashing worker, doubling per crash in a row

        Read-only: worker_pids, the pids of the running workers (for tests
        and demos); restarts, how many workers were restarted so far.

        Resource handling: the stop pipe, the workers and their pidfds exist
        only while serve_forever() runs; when it returns every worker has
        exited and been reaped. Error handling: an Exception in a request
        goes to handle_error in the worker, as in any server; anything that
        escapes a worker ends it (exit status 1, traceback on stderr) and
        the parent restarts it.
        """

        workers = 2
        threads_per_worker = 1
        graceful_timeout = 5.0
        restart_backoff = 0.1
        restart_backoff_max = 5.0
        restarts = 0
        _slots: tuple[_Slot, ...] = ()
        _selector: selectors.BaseSelector | None = None
        _stop_read: int | None = None
        _stop_write: int | None = None
        # Reaping happens in the loop's thread and in server_close()'s, which
        # may run at the same time: one at a time, or a pidfd closes twice.
        _reap_lock = threading.RLock()  # per server once serving starts

        @property
        def worker_pids(self) -> list[int]:
            """The pids of the workers running now (empty when not serving)."""
            return [slot.pid for slot in self._slots if slot.pid is not None]

        # -- the parent's loop hooks ---------------------------------------

        def _loop_start(self, selector: selectors.BaseSelector) -> None:
            """Open the stop pipe and fork the workers; watch their pidfds.

            The listening socket is not registered: only workers accept.
            """
            if self.workers < 1 or self.threads_per_worker < 1:
                raise ValueError(f"{type(self).__name__} needs workers >= 1 and "
                                 f"threads_per_worker >= 1, not {self.workers} and "
                                 f"{self.threads_per_worker}")
            self._reap_lock = threading.RLock()
            self._selector = selector
            self._stop_read, self._stop_write = os.pipe()
            self._slots = tuple(_Slot() for _ in range(self.workers))
            for slot in self._slots:
                self._start_worker(slot)

        def _loop_ready(self, key: selectors.SelectorKey, events: int) -> None:
            """A worker's pidfd is readable: it exited. Reap it (restart it later)."""
            if isinstance(key.data, _Slot) and key.data.pid is not None:
                with self._reap_lock:
                    self._reap(key.data, blocking=False)

        def _loop_timeout(self, poll_interval: float) -> float | None:
            """Wait no longer than until the next restart that is due."""
            due = [slot.restart_at for slot in self._slots if slot.pid is None]
            if not due:
                return poll_interval
            return max(0.0, min(poll_interval, min(due) - time.monotonic()))

        def _on_stop_requested(self) -> None:
            """Close the stop pipe's write end: every worker sees end-of-file."""
            with _STOP_LOCK:
                if self._stop_write is not None:
                    os.close(self._stop_write)
                    self._stop_write = None

        def _loop_stop(self, selector: selectors.BaseSelector) -> None:
            """Stop every worker (gracefully, then SIGKILL) and reap it."""
            self._on_stop_requested()
            with self._reap_lock:
                for slot in self._slots:
                    if slot.pidfd is not None:
                        selector.unregister(slot.pidfd)
                self._selector = None
                self._stop_workers_locked()
            if self._stop_read is not None:
                os.close(self._stop_read)
                self._stop_read = None

        # -- supervising -----------------------------------------------------

        def service_actions(self) -> None:
            """Reap exited workers and restart those due, on every turn of the loop."""
            super().service_actions()
            self.collect_children()

        def collect_children(self, *, blocking: bool = False) -> None:
            """Reap workers that exited and start replacements that are due.

            With blocking, wait for every worker to exit and start none.
            """
            with self._reap_lock:
                self._collect(blocking=blocking)

        def _collect(self, *, blocking: bool) -> None:
            for slot in self._slots:
                if slot.pid is not None:
                    self._reap(slot, blocking=blocking)
            if blocking:
                return
            now = time.monotonic()
            for slot in self._slots:
                if slot.pid is None and slot.restart_at <= now:
                    self.restarts += 1
                    self._start_worker(slot)

        def _reap(self, slot: _Slot, *, blocking: bool) -> None:
            if slot.pid is None:
                return
            try:
                pid, _status = os.waitpid(slot.pid, 0 if blocking else os.WNOHANG)
            except ChildProcessError:
                pid = slot.pid  # reaped by someone else: it is gone all the same
            if not pid:
                return
            if slot.pidfd is not None:
                if self._selector is not None:
                    self._selector.unregister(slot.pidfd)
                os.close(slot.pidfd)
            now = time.monotonic()
            slot.crashes = slot.crashes + 1 if now - slot.started < HEALTHY_SECONDS else 0
            delay = 0.0
            if slot.crashes:
                delay = min(self.restart_backoff * 2 ** (slot.crashes - 1),
                            self.restart_backoff_max)
            slot.pid, slot.pidfd, slot.restart_at = None, None, now + delay

        def _wait_for_workers(self, deadline: float) -> None:
            """Reap workers as they exit, until none is left or the deadline passes."""
            delay = 0.001
            while any(slot.pid is not None for slot in self._slots):
                for slot in self._slots:
                    if slot.pid is not None:
                        self._reap(slot, blocking=False)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                pidfds = [s.pidfd for s in self._slots if s.pidfd is not None]
                if pidfds:
                    with selectors.DefaultSelector() as waiter:
                        for fd in pidfds:
                            waiter.register(fd, selectors.EVENT_READ)
                        waiter.select(remaining)
                else:
                    time.sleep(min(delay, remaining))
                    delay = min(2 * delay, 0.05)

        def _start_worker(self, slot: _Slot) -> None:
            """Fork one worker into ``slot`` (unless a stop was requested)."""
            with _STOP_LOCK:  # _on_stop_requested may close the pipe meanwhile
                if self._stop_write is None or self._stop_read is None:
                    return
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()  # so the child does not inherit unwritten output
                pid = os.fork()
                if pid == 0:
                    self._run_worker(self._stop_read)
            slot.pid, slot.started = pid, time.monotonic()
            if hasattr(os, "pidfd_open") and self._selector is not None:
                try:
                    slot.pidfd = os.pidfd_open(pid)
                except OSError:
                    return  # an old kernel: service_actions() polls instead
                self._selector.register(slot.pidfd, selectors.EVENT_READ, slot)

        # -- the worker ------------------------------------------------------

        def _run_worker(self, stop_fd: int) -> NoReturn:
            """The body of a worker process; it never returns into the parent's code."""
            status = _WORKER_FAILED
            try:
                self._become_worker()
                threads = [threading.Thread(target=self._worker_loop, args=(stop_fd,),
                                            name=f"worker-thread-{n}")
                           for n in range(1, self.threads_per_worker)]
                for thread in threads:
                    thread.start()
                self._worker_loop(stop_fd)
                for thread in threads:
                    thread.join()
                status = 0
            except BaseException:  # noqa: BLE001 - report whatever ends a worker
                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()  # os._exit() does not flush
                os._exit(status)

        def _become_worker(self) -> None:
            """Drop what belongs to the parent; make accept() non-blocking.

            Without the write end here, end-of-file on the stop pipe means the
            parent closed it or died. Ctrl-C reaches the whole process group:
            a worker ignores it and lets the parent stop it.
            """
            if self._stop_write is not None:
                os.close(self._stop_write)
            for other in self._slots:
                if other.pidfd is not None:
                    os.close(other.pidfd)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            # Every waiting worker wakes for a new connection; those that lose
            # the race get EAGAIN from accept() instead of blocking in it.
            self.socket.setblocking(False)

        def _worker_loop(self, stop_fd: int) -> None:
            """Accept and serve until the stop pipe reports end-of-file.

            Where epoll has EPOLLEXCLUSIVE (Linux), a new connection wakes
            one waiting worker thread, not all of them (the "thundering
            herd"); elsewhere every waiter wakes and all but one find
            nothing to accept.
            """
            listening = selectors.SelectorKey(self, self.fileno(), selectors.EVENT_READ, None)
            if hasattr(select, "EPOLLEXCLUSIVE"):
                with select.epoll() as epoll:
                    epoll.register(listening.fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
                    epoll.register(stop_fd, select.EPOLLIN)
                    while True:
                        for fd, _mask in epoll.poll():
                            if fd == stop_fd:
                                return
                            self._worker_ready(listening, selectors.EVENT_READ)
            with ServerSelector() as selector:
                selector.register(listening.fd, selectors.EVENT_READ)
                selector.register(stop_fd, selectors.EVENT_READ)
                while True:
                    for key, _events in selector.select():
                        if key.fd == stop_fd:
                            return
                        self._worker_ready(listening, selectors.EVENT_READ)

        def _worker_ready(self, key: selectors.SelectorKey, events: int) -> None:
            """Accept one connection and run the whole pipeline on it.

            BaseServer's default _loop_ready does exactly that; a connection
            another worker took first makes accept() fail, which it ignores.
            """
            super()._loop_ready(key, events)

        # -- closing ---------------------------------------------------------

        def server_close(self) -> None:
            """Close the server, then stop and reap any worker still running."""
            super().server_close()
            self._on_stop_requested()
            self._stop_workers()

        def _stop_workers(self) -> None:
            """Wait graceful_timeout for the workers to exit, kill the rest, reap all."""
            with self._reap_lock:
                self._stop_workers_locked()

        def _stop_workers_locked(self) -> None:
            if any(slot.pid is not None for slot in self._slots):
                self._wait_for_workers(time.monotonic() + self.graceful_timeout)
                for slot in self._slots:
                    if slot.pid is not None:
                        _kill(slot.pid)
                self._collect(blocking=True)

    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile: reaped later
            os.kill(pid, signal.SIGKILL)

    class PreForkTCPServer(PreForkMixIn, TCPServer): pass

    if hasattr(socket, "AF_UNIX"):
        from .unix import UnixStreamServer

        class PreForkUnixStreamServer(PreForkMixIn, UnixStreamServer): pass

        __all__ += ["PreForkUnixStreamServer"]
