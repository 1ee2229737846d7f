"""PreForkMixIn: a fixed set of worker processes, each accepting for itself.

Theory of operation
-------------------
ForkingMixIn forks once per request. A pre-forked server forks ``workers``
processes once, when serving starts; each accepts on the listening socket
they all inherited and runs the whole pipeline (get_request ...
close_request, handle_error) itself: Apache's prefork, gunicorn's sync
worker. Each worker has its own interpreter and GIL, so a CPU-bound handler
runs on as many cores as there are workers, which threads cannot do.

With ``threads_per_worker`` > 1 (gunicorn's gthread) each worker runs that
many threads, and each thread accepts for itself: the same bound as a pool
of threads, without a hand-off between threads.

The parent only supervises. Its serve_forever() loop (BaseServer's, through
the loop hooks) watches the waker and one *pidfd* per worker (readable when
the process exits; without pidfds, service_actions() polls waitpid), never
the listening socket. It:

* restarts a worker that dies; one that dies within :data:`HEALTHY_SECONDS`
  of its start is crashing, and the next start waits ``restart_backoff``
  seconds, doubling per crash in a row up to ``restart_backoff_max``: a
  handler that kills every worker cannot turn the parent into a fork loop;
* stops the workers on shutdown(): every worker watches the read end of a
  *stop pipe*; the parent closes the write end, every worker sees
  end-of-file at once, finishes the request in hand and exits. One still
  running ``graceful_timeout`` seconds later gets SIGKILL. The loop returns
  once every worker is reaped (no zombies); server_close() reaps any left;
* leaves no orphans: only the parent holds the write end, so when it dies
  (even by SIGKILL) the kernel closes it and the workers stop as on
  shutdown() (a process the parent forks for other reasons inherits the
  write end too, and delays this until it exits).

Where each hook runs: get_request ... close_request, handle_error and the
handler run in a worker; serve_forever, service_actions, collect_children,
shutdown, server_close and handle_request (one request, synchronously, no
workers) in the parent. A worker leaves with ``os._exit()``. A tracer
(netserv.lab.trace) attached before serving starts is inherited by them.
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
from typing import TYPE_CHECKING, NoReturn, Self

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
#: Longest sleep between two checks while waiting for workers to exit.
_POLL_MAX = 0.05


def _fork() -> int:
    """os.fork(), but a warning it raises never loses the child.

    Python 3.12+ warns when a process that runs other threads forks; from
    3.15 a warnings filter "error" makes os.fork() *raise* that warning in
    the parent, after the child was created, so the child's pid is lost and
    the exception would end the supervisor's loop. Here the child sends its
    pid through a pipe first: on such a warning the parent reads it, prints
    the warning on stderr (it is reported, not hidden) and carries on with
    the worker. Anything else os.fork() raises propagates as before.
    """
    read_end, write_end = os.pipe()
    try:
        try:
            pid = os.fork()
        except Warning as warning:
            os.close(write_end)
            write_end = -1
            sent = os.read(read_end, 32)  # the child's pid; b"" if there is no child
            if not sent:
                raise
            print(f"netserv: a worker was forked, but os.fork() raised "
                  f"{type(warning).__name__}: {warning}", file=sys.stderr, flush=True)
            return int(sent)
        if pid == 0:
            os.write(write_end, str(os.getpid()).encode())
        return pid
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)


@dataclasses.dataclass
class _Slot:
    """One worker position: the process in it now, and its crash record."""

    pid: int | None = None
    pidfd: int | None = None
    started: float = 0.0
    crashes: int = 0  # deaths in a row, each within HEALTHY_SECONDS of its start
    restart_at: float = 0.0  # monotonic time before which no restart happens


if TYPE_CHECKING:
    # For the type checker the mix-in is the server it is mixed into (its calls
    # of server methods are checked); at run time it is a plain class.
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
        # The loop's thread and server_close()'s may reap at the same time.
        _reap_lock = threading.RLock()  # one per server once serving starts

        @property
        def worker_pids(self) -> list[int]:
            """The pids of the workers running now (empty when not serving)."""
            return [slot.pid for slot in self._slots if slot.pid is not None]

        # -- the parent's loop hooks ---------------------------------------
        def _loop_start(self, selector: selectors.BaseSelector) -> None:
            """In serve_forever(): open the stop pipe, fork the workers, watch
            their pidfds; not the listening socket (only workers accept).
            In handle_request(): as any server (one request, here, no workers).
            """
            if not self._in_loop_thread():
                super()._loop_start(selector)
                return
            if self.workers < 1 or self.threads_per_worker < 1:
                raise ValueError(f"{type(self).__name__} needs workers >= 1 and threads_per_"
                                 f"worker >= 1, not {self.workers} and {self.threads_per_worker}")
            self._reap_lock = threading.RLock()
            self._selector = selector
            self._stop_read, self._stop_write = os.pipe()
            self._slots = tuple(_Slot() for _ in range(self.workers))
            for slot in self._slots:
                self._start_worker(slot)

        def _loop_ready(self, key: selectors.SelectorKey, events: int) -> None:
            """A worker's pidfd is readable: it exited. Reap it (restart it later)."""
            if not isinstance(key.data, _Slot):
                super()._loop_ready(key, events)
            elif key.data.pid is not None:
                with self._reap_lock:
                    self._reap(key.data, blocking=False)

        def _loop_timeout(self, poll_interval: float | None) -> float | None:
            """Wait no longer than until the next restart that is due."""
            wait = super()._loop_timeout(poll_interval)
            due = [slot.restart_at for slot in self._slots if slot.pid is None]
            if not due:
                return wait
            until_due = max(0.0, min(due) - time.monotonic())
            return until_due if wait is None else min(wait, until_due)

        def _on_stop_requested(self) -> None:
            """Close the stop pipe's write end: every worker sees end-of-file."""
            super()._on_stop_requested()
            with _STOP_LOCK:
                if self._stop_write is not None:
                    os.close(self._stop_write)
                    self._stop_write = None

        def _loop_stop(self, selector: selectors.BaseSelector) -> None:
            """Stop every worker (gracefully, then SIGKILL) and reap it."""
            super()._loop_stop(selector)
            if self._stop_read is None:
                return  # handle_request(), or the workers never started
            self._on_stop_requested()
            with self._reap_lock:
                for slot in self._slots:
                    if slot.pidfd is not None:
                        selector.unregister(slot.pidfd)
                self._selector = None
                self._stop_workers()
                self._slots = ()  # nothing left to restart (handle_request() may follow)
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
                for slot in self._slots:
                    self._reap(slot, blocking=blocking)
                now = time.monotonic()
                for slot in self._slots:
                    if not blocking and slot.pid is None and slot.restart_at <= now:
                        self.restarts += 1
                        self._start_worker(slot)

        def _reap(self, slot: _Slot, *, blocking: bool) -> None:
            """Reap the slot's worker if it exited (or wait for it); plan its restart."""
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
            """Reap workers as they exit, until none is left or the deadline passes.

            It polls with a back-off: their pidfds are the loop's, and it may
            run in server_close()'s thread.
            """
            delay = 0.001
            while any(slot.pid is not None for slot in self._slots):
                for slot in self._slots:
                    self._reap(slot, blocking=False)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                time.sleep(min(delay, remaining))  # a worker exits in milliseconds
                delay = min(2 * delay, _POLL_MAX)

        def _start_worker(self, slot: _Slot) -> None:
            """Fork one worker into ``slot`` (unless a stop was requested)."""
            with _STOP_LOCK:  # _on_stop_requested may close the pipe meanwhile
                if self._stop_write is None or self._stop_read is None:
                    return
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()  # so the child does not inherit unwritten output
                pid = _fork()  # a warning raised by os.fork() is reported, not fatal
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
            except BaseException:
                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()  # os._exit() does not flush
                os._exit(status)

        def _become_worker(self) -> None:
            """Drop the parent's descriptors (so end-of-file on the stop pipe means
            the parent closed it or died); ignore Ctrl-C, which reaches the whole
            process group: the parent stops the workers."""
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

            When accept() runs out of descriptors, BaseServer pauses
            accepting (its _loop_timeout says for how long): the worker then
            stops watching the listening socket meanwhile, as the loop does.
            """
            listening = selectors.SelectorKey(self, self.fileno(), selectors.EVENT_READ, None)
            with _WorkerWait(listening.fd, stop_fd, self._selector_class) as wait:
                while True:
                    paused = super()._loop_timeout(None)  # None, or seconds left paused
                    for fd in wait.select(watch_listener=not paused, timeout=paused or None):
                        if fd == stop_fd:
                            return
                        # BaseServer's: accept one connection and run the whole
                        # pipeline (accept() failing: another worker was first).
                        super()._loop_ready(listening, selectors.EVENT_READ)

        # -- closing ---------------------------------------------------------
        def server_close(self) -> None:
            """Close the server, then stop and reap any worker still running."""
            super().server_close()
            self._on_stop_requested()
            self._stop_workers()

        def _stop_workers(self) -> None:
            """Wait graceful_timeout for the workers to exit, kill the rest, reap all."""
            with self._reap_lock:
                if any(slot.pid is not None for slot in self._slots):
                    self._wait_for_workers(time.monotonic() + self.graceful_timeout)
                    for slot in self._slots:
                        if slot.pid is not None:
                            _kill(slot.pid)
                    self.collect_children(blocking=True)

    class _WorkerWait:
        """A worker's wait on the listening socket and the stop pipe.

        With epoll's EPOLLEXCLUSIVE (Linux) a new connection wakes one waiting
        worker thread, not all of them (the "thundering herd"); elsewhere all
        wake, and all but one find nothing to accept.
        """

        def __init__(self, listener: int, stop_fd: int,
                     selector_class: type[selectors.BaseSelector]) -> None:
            self._listener, self._watched = listener, False
            self._epoll = select.epoll() if hasattr(select, "EPOLLEXCLUSIVE") else None
            self._selector = selector_class()
            self._watch(stop_fd, True)

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

    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile: reaped later
            os.kill(pid, signal.SIGKILL)

    class PreForkTCPServer(PreForkMixIn, TCPServer): pass

    if hasattr(socket, "AF_UNIX"):
        from .unix import UnixStreamServer

        class PreForkUnixStreamServer(PreForkMixIn, UnixStreamServer): pass

        __all__ += ["PreForkUnixStreamServer"]
