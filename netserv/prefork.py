"""PreForkMixIn: a fixed set of worker processes, each accepting for itself.

Theory of operation
-------------------
ForkingMixIn forks once per request. A pre-forked server forks ``workers``
processes once, when serving starts; each accepts on the listening socket
they all inherited and runs the whole pipeline (get_request ...
close_request, handle_error) itself: Apache's prefork, gunicorn's sync
worker. Each worker has its own interpreter and GIL, so a CPU-bound handler
runs on as many cores as there are workers, which threads cannot do.

With ``threads_per_worker`` > 1 each worker runs that many threads, and each
thread accepts for itself: the same bound as a pool of threads, without a
hand-off between threads (gunicorn's gthread bounds threads alike, but its
main thread accepts and hands each connection to a pool).

With ``reuse_port`` (SO_REUSEPORT, Linux and the BSDs) each worker accepts
on a listening socket of its own, all bound to the same port: the kernel
spreads new connections across them by a hash of their addresses, instead
of giving each to whichever worker waits. The parent creates and keeps
these sockets, so connections queued on one of them wait for its worker's
replacement when the worker dies, instead of being reset with it.

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
  end-of-file at once, finishes the requests in hand and exits. One still
  running ``graceful_timeout`` seconds later gets SIGKILL. The loop returns
  once every worker is reaped (no zombies); server_close() reaps any left;
* leaves no orphans: only the parent holds the write end, so when it dies
  (even by SIGKILL) the kernel closes it and the workers stop as on
  shutdown(), and enforce ``graceful_timeout`` themselves (a process the
  parent forks for other reasons inherits the write end too, and delays
  this until it exits).

What a worker does inside (its threads, draining, the wait on the socket)
is netserv.prefork_worker. Where each hook runs: get_request ...
close_request, handle_error and the handler run in a worker; serve_forever,
service_actions, collect_children, shutdown, server_close and
handle_request (one request, synchronously, no workers) in the parent. A
worker leaves with ``os._exit()``. A tracer (netserv.lab.trace) attached
before serving starts is inherited by them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, NoReturn

from .prefork_worker import WORKER_FAILED, WorkerProcess
from .settings import Setting
from .tcp import TCPServer

__all__: list[str] = []

#: A worker that lived less than this many seconds died of something that
#: will probably kill the next one too: its restart is delayed (back-off).
HEALTHY_SECONDS = 1.0
#: Held while the stop pipe's write end is closed or a worker is forked, so
#: that a worker is never forked around a descriptor number being closed.
#: Module-wide: it is held for microseconds, and a child never takes it.
_STOP_LOCK = threading.Lock()
#: Longest sleep between two checks while waiting for workers to exit.
_POLL_MAX = 0.05
#: Upper bound of workers and of threads_per_worker: far above what a
#: machine uses (gunicorn suggests 2 x cores + 1 workers); a larger number is
#: a mistake that would fork or start threads until the system refuses.
MAX_WORKERS = MAX_THREADS_PER_WORKER = 1024


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

    index: int
    pid: int | None = None
    pidfd: int | None = None
    started: float = 0.0
    crashes: int = 0  # deaths in a row, each within HEALTHY_SECONDS of its start
    restart_at: float = 0.0  # monotonic time before which no restart happens
    listener: socket.socket | None = None  # reuse_port: this slot's own socket


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

        Class variables (numeric_settings: checked by the constructor and
        when a loop starts, with a message naming the setting and its range):

        - workers (2, 1 to MAX_WORKERS): worker processes started when
          serve_forever() starts
        - threads_per_worker (1, 1 to MAX_THREADS_PER_WORKER): serving
          threads per worker, each accepting
        - graceful_timeout (5.0 s, >= 0): how long a stopping worker lets
          its requests in hand finish; then the parent kills it with
          SIGKILL (or, if the parent is gone, it exits by itself)
        - restart_backoff (0.1 s), restart_backoff_max (5.0 s): delay before
          restarting a crashing worker, doubling per crash in a row
        - reuse_port (False): one listening socket per worker (SO_REUSEPORT;
          AF_INET and AF_INET6 only, ValueError elsewhere), kept by the parent
        - exclusive_wakeup (True): wake one waiting thread per new connection
          where the platform can (EPOLLEXCLUSIVE); False wakes every waiting
          one, as poll() does everywhere (to measure the thundering herd)

        Read-only: worker_pids, the pids of the running workers in slot
        order; restarts, how many workers were restarted so far;
        worker_index, in a worker its slot (0 to workers - 1, taken over by
        its replacement), None in the parent.

        Resource handling: the stop pipe, the workers, their pidfds and the
        extra listening sockets of reuse_port exist only while
        serve_forever() runs; when it returns every worker has exited and
        been reaped (connections still queued on an extra socket are reset).
        Error handling: an Exception in a request goes to handle_error in
        the worker, as in any server. Anything that escapes a worker's
        thread (SystemExit from a handler, say) ends that worker, but
        gracefully: it stops accepting, its other threads finish the
        request in hand (graceful_timeout at most), it exits with status 1
        and its traceback on stderr, and the parent starts a new one.
        """

        workers = 2
        threads_per_worker = 1
        graceful_timeout = 5.0
        restart_backoff = 0.1
        restart_backoff_max = 5.0
        reuse_port = False
        exclusive_wakeup = True
        restarts = 0
        worker_index: int | None = None
        _slots: tuple[_Slot, ...] = ()
        _selector: selectors.BaseSelector | None = None
        _stop_read: int | None = None
        _stop_write: int | None = None
        # The loop's thread and server_close()'s may reap at the same time.
        _reap_lock = threading.RLock()  # one per server once serving starts

        numeric_settings: tuple[Setting, ...] = (
            Setting("workers", 1, MAX_WORKERS, integer=True,
                    why="0 would serve nobody; each is a process forked at once"),
            Setting("threads_per_worker", 1, MAX_THREADS_PER_WORKER, integer=True,
                    why="0 would serve nobody; each is a thread started at once"),
            Setting("graceful_timeout", 0, unit="seconds",
                    why="a stopping worker's requests get this long to finish"),
            Setting("restart_backoff", 0, unit="seconds",
                    why="the first delay before restarting a crashing worker"),
            Setting("restart_backoff_max", 0, unit="seconds",
                    why="the longest delay before restarting a crashing worker"),
        )

        def check_settings(self) -> None:
            """The numeric settings (see BaseServer), then what they imply together:
            restart_backoff_max >= restart_backoff; a reuse_port that the platform
            and the socket family can give (ValueError otherwise)."""
            super().check_settings()
            name = type(self).__name__
            if self.restart_backoff_max < self.restart_backoff:
                raise ValueError(f"{name}.restart_backoff_max must be >= restart_backoff "
                                 f"({self.restart_backoff}), got {self.restart_backoff_max!r}")
            if self.reuse_port and not hasattr(socket, "SO_REUSEPORT"):
                raise ValueError(f"{name}.reuse_port needs SO_REUSEPORT, which this platform "
                                 f"({sys.platform}) lacks: use the shared socket "
                                 f"(reuse_port = False)")
            if self.reuse_port and self.address_family not in (socket.AF_INET, socket.AF_INET6):
                raise ValueError(f"{name}.reuse_port needs an AF_INET or AF_INET6 socket (the "
                                 f"kernel spreads connections of those families only), not "
                                 f"{socket.AddressFamily(self.address_family).name}")

        def server_bind(self) -> None:
            """With reuse_port, let the workers' sockets share the port (SO_REUSEPORT)."""
            if self.reuse_port:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

        @property
        def worker_pids(self) -> list[int]:
            """The pids of the workers running now (empty when not serving)."""
            return [slot.pid for slot in self._slots if slot.pid is not None]

        # -- the parent's loop hooks ---------------------------------------
        def _loop_start(self, selector: selectors.BaseSelector) -> None:
            """In serve_forever(): open the stop pipe (and reuse_port's sockets),
            fork the workers, watch their pidfds; not the listening socket
            (only workers accept). In handle_request(): as any server (one
            request, here, no workers).
            """
            if not self._in_loop_thread():
                super()._loop_start(selector)
                return
            self._reap_lock = threading.RLock()
            self._selector = selector
            self._slots = tuple(_Slot(index) for index in range(self.workers))
            if self.reuse_port:
                self._open_listeners()
            self._stop_read, self._stop_write = os.pipe()
            for slot in self._slots:
                self._start_worker(slot)

        def _open_listeners(self) -> None:
            """reuse_port: a listening socket per slot, on the server's port; the
            first slot's is the server's own socket."""
            if not self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
                raise ValueError(f"{type(self).__name__}.reuse_port was set after the socket "
                                 f"was bound without SO_REUSEPORT: set it on the class")
            for slot in self._slots:
                if slot.index == 0:
                    slot.listener = self.socket
                    continue
                listener = socket.socket(self.address_family, self.socket_type)
                slot.listener = listener  # closed by _close_listeners, even if bind fails
                if self.allow_reuse_address:
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                listener.bind(self.server_address)
                listener.listen(self.request_queue_size)

        def _close_listeners(self) -> None:
            for slot in self._slots:
                if slot.listener is not None and slot.listener is not self.socket:
                    slot.listener.close()
                slot.listener = None

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
            if not self._in_loop_thread() or not self._slots:
                return  # handle_request(), or the workers never started
            self._on_stop_requested()
            with self._reap_lock:
                for slot in self._slots:
                    if slot.pidfd is not None:
                        selector.unregister(slot.pidfd)
                self._selector = None
                self._stop_workers()
                self._close_listeners()
                self._slots = ()  # nothing left to restart (handle_request() may follow)
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
                    self._run_worker(slot, self._stop_read)
            slot.pid, slot.started = pid, time.monotonic()
            if hasattr(os, "pidfd_open") and self._selector is not None:
                try:
                    slot.pidfd = os.pidfd_open(pid)
                except OSError:
                    return  # an old kernel: service_actions() polls instead
                self._selector.register(slot.pidfd, selectors.EVENT_READ, slot)

        # -- the worker ------------------------------------------------------
        def _run_worker(self, slot: _Slot, stop_fd: int) -> NoReturn:
            """The body of a worker process; it never returns into the parent's code."""
            status = WORKER_FAILED
            try:
                self._become_worker(slot)
                listening = selectors.SelectorKey(self, self.fileno(), selectors.EVENT_READ, None)
                status = WorkerProcess(
                    listener=self.socket, stop_fd=stop_fd, threads=self.threads_per_worker,
                    graceful_timeout=self.graceful_timeout,
                    # BaseServer's: accept one connection and run the whole pipeline.
                    serve_one=functools.partial(super()._loop_ready, listening,
                                                selectors.EVENT_READ),
                    # None, or the seconds left while accepting is paused (EMFILE).
                    accept_wait=functools.partial(super()._loop_timeout, None),
                    selector_class=self._selector_class, exclusive=self.exclusive_wakeup,
                ).run()
            except BaseException:
                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()  # os._exit() does not flush
                os._exit(status)

        def _become_worker(self, slot: _Slot) -> None:
            """Drop the parent's descriptors (so end-of-file on the stop pipe means
            the parent closed it or died) and the other slots' sockets; ignore
            Ctrl-C, which reaches the whole process group: the parent stops the
            workers."""
            self.worker_index = slot.index
            if self._stop_write is not None:
                os.close(self._stop_write)
            for other in self._slots:
                if other.pidfd is not None:
                    os.close(other.pidfd)
                if other is not slot and other.listener is not None:
                    other.listener.close()  # the server's own socket too, if it is
            if slot.listener is not None:
                self.socket = slot.listener
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            # Waiting threads may all wake for one new connection; those that
            # lose the race get EAGAIN from accept() instead of blocking in it.
            self.socket.setblocking(False)

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

    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile: reaped later
            os.kill(pid, signal.SIGKILL)

    class PreForkTCPServer(PreForkMixIn, TCPServer): pass

    if hasattr(socket, "AF_UNIX"):
        from .unix import UnixStreamServer

        class PreForkUnixStreamServer(PreForkMixIn, UnixStreamServer): pass

        __all__ += ["PreForkUnixStreamServer"]
