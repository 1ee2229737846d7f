"""ForkingMixIn: one new process per request.

Theory of operation
-------------------
The mix-in replaces ``process_request()``: it calls ``os.fork()``. The child
is a copy of the server process; it finishes the request and leaves with
``os._exit()`` (never returning into the serve loop), with exit status 0 if
the handler succeeded and 1 if it raised. The parent closes its copy of the
request and goes back to accepting. Nothing the child changes in memory ever
reaches the parent: they are separate processes.

A child that has exited stays a *zombie* until its parent collects its exit
status with waitpid() ("reaping"). The server reaps its children:

* in service_actions(), after every wake-up of serve_forever();
* in handle_timeout(), when handle_request() waited ``timeout`` seconds;
* before forking, when ``max_children`` of them are still running: it then
  waits until one of them exits, so there are never more than max_children;
* in server_close(), waiting for all of them if ``block_on_close``.

Only this server's children are reaped. The standard module, when at
max_children, calls waitpid(-1), which may steal the exit status of a child
another part of the program started (a subprocess.Popen, for example).
netserv waits for its own children only, with pidfds where the system has
them.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from typing import TYPE_CHECKING, Any

from .base import TIMEOUT, BaseServer
from .settings import Setting
from .tcp import TCPServer
from .udp import UDPServer

if TYPE_CHECKING:
    # The host the mix-in is combined with, for the type checker only: at
    # run time the mix-in derives from object and the server comes after it.
    _Host = BaseServer
else:
    _Host = object

__all__: list[str] = []

#: How long the fall-back wait (no pidfd) sleeps between two checks of its
#: children when max_children are running; it doubles up to the maximum.
_POLL_FIRST, _POLL_MAX = 0.001, 0.05


if hasattr(os, "fork"):
    __all__ += ["ForkingMixIn", "ForkingTCPServer", "ForkingUDPServer"]

    class ForkingMixIn(_Host):
        """Mix-in that handles each request in a new process. List it first.

        Class variables:

        - timeout (300): handle_request() reaps children after this many idle seconds
        - max_children (40): at most this many children run at once
        - block_on_close (True): server_close() waits for every child to exit
        - active_children: the set of running children's pids (None before the first)

        Methods: process_request() forks; collect_children() reaps;
        handle_timeout(), service_actions() and server_close() extend the
        server's to reap.

        A max_children below 1 (the standard module accepts it and then
        hangs, spinning a core) is refused at construction and when a loop
        starts: ValueError naming the setting and its range.
        """

        timeout: float | None = 300
        active_children: set[int] | None = None
        max_children = 40
        block_on_close = True
        numeric_settings: tuple[Setting, ...] = (
            TIMEOUT,
            Setting("max_children", 1, integer=True,
                    why="with 0 the server waits for a child to exit before every fork, "
                        "and there is none: it hangs"),
        )

        def collect_children(self, *, blocking: bool = False) -> None:
            """Reap children that have exited; with blocking, wait for all of them.

            If max_children are running, first wait until one of them exits.
            """
            if self.active_children is None:
                return
            while len(self.active_children) >= self.max_children:
                self._reap(blocking=False)
                if len(self.active_children) >= self.max_children:
                    self._wait_for_any_child()
            self._reap(blocking=blocking)

        def _reap(self, *, blocking: bool) -> None:
            assert self.active_children is not None
            flags = 0 if blocking else os.WNOHANG
            for pid in list(self.active_children):
                try:
                    reaped, _status = os.waitpid(pid, flags)
                except ChildProcessError:
                    reaped = pid  # someone else reaped it
                if reaped:
                    self.active_children.discard(pid)

        def _wait_for_any_child(self) -> None:
            """Block until one of active_children exits, without reaping it."""
            assert self.active_children is not None
            if hasattr(os, "pidfd_open"):
                pidfds = []
                try:
                    for pid in self.active_children:
                        try:
                            pidfds.append(os.pidfd_open(pid))
                        except ProcessLookupError:
                            return  # already reaped: a slot is free
                    with selectors.DefaultSelector() as selector:
                        for fd in pidfds:
                            selector.register(fd, selectors.EVENT_READ)
                        selector.select()
                    return
                except OSError:
                    pass  # no pidfd support in this kernel: poll instead
                finally:
                    for fd in pidfds:
                        os.close(fd)
            self._poll_for_any_child()

        def _poll_for_any_child(self) -> None:
            delay = _POLL_FIRST
            while True:
                for pid in self.active_children or ():
                    try:
                        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                            return
                    except ChildProcessError:
                        return
                time.sleep(delay)
                delay = min(2 * delay, _POLL_MAX)

        def handle_timeout(self) -> None:
            """Reap children after timeout seconds of inactivity."""
            self.collect_children()

        def service_actions(self) -> None:
            """Reap children on every turn of serve_forever()."""
            self.collect_children()

        def process_request(self, request: Any, client_address: Any) -> None:
            """Fork; the child finishes the request and exits, the parent carries on."""
            pid = os.fork()
            if pid:
                if self.active_children is None:
                    self.active_children = set()
                self.active_children.add(pid)
                self.close_request(request)
                return
            # In the child. It must never return into the serve loop: every
            # path ends in os._exit(), which skips the parent's clean-up code.
            status = 1
            try:
                self.finish_request(request, client_address)
                status = 0
            except Exception:
                self.handle_error(request, client_address)
            finally:
                try:
                    self.shutdown_request(request)
                finally:
                    os._exit(status)

        def server_close(self) -> None:
            """Close the server, then reap children (waiting for all if block_on_close)."""
            super().server_close()
            self.collect_children(blocking=self.block_on_close)

    class ForkingUDPServer(ForkingMixIn, UDPServer): pass
    class ForkingTCPServer(ForkingMixIn, TCPServer): pass

    if hasattr(socket, "AF_UNIX"):
        from .unix import UnixDatagramServer, UnixStreamServer

        class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer): pass
        class ForkingUnixDatagramServer(ForkingMixIn, UnixDatagramServer): pass

        __all__ += ["ForkingUnixStreamServer", "ForkingUnixDatagramServer"]
