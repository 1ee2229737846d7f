"""BaseServer: the request pipeline and the serve_forever/shutdown loop.

Theory of operation
-------------------
A server owns one listening endpoint and a *request handler class*. Each
request goes through the same verbs, in this order (the pipeline):

    get_request -> verify_request -> process_request -> finish_request
                                                     -> shutdown_request -> close_request

``finish_request`` instantiates the handler, whose constructor runs
``setup``, ``handle`` and ``finish``. ``process_request`` is the one step the
concurrency mix-ins replace: run the rest here (synchronous), in a new thread,
in a forked child, or in a worker of a pool.

Two ways to drive the pipeline:

* ``handle_request()`` waits (at most ``timeout``) for one request and runs it.
* ``serve_forever()`` loops until ``shutdown()`` is called from another thread.

The loop waits in a selector on two things: the server's socket and a *waker*,
one end of a socket pair. ``shutdown()`` writes a byte to the other end, so the
loop wakes at once instead of noticing at its next poll. That is the main
difference from the standard module, which only polls (every 0.5 s by default).

Error rule (the same as the standard module, kept exactly):

* ``Exception`` raised while processing a request goes to ``handle_error``,
  then the request is shut down; the server carries on.
* Anything else (``KeyboardInterrupt``, ``SystemExit``) shuts the request
  down and propagates out of the loop.

Where new things go: a transport (how to get a request) is a subclass, in its
own module (``tcp``, ``udp``, ``unix``); a concurrency model (where to process
it) is a mix-in, in its own module (``threads``, ``forking``, ``pool``).
"""

from __future__ import annotations

import enum
import os
import selectors
import socket
import sys
import threading
import time
import traceback
from typing import Any

__all__ = ["BaseServer", "ServerState", "Waker"]

# poll() and select() need no extra file descriptor and one system call per
# wait, which is all a loop watching two descriptors needs (the standard
# module makes the same choice).
if hasattr(selectors, "PollSelector"):
    ServerSelector: type[selectors.BaseSelector] = selectors.PollSelector
else:  # pragma: no cover - Windows
    ServerSelector = selectors.SelectSelector

#: Default seconds between two calls of service_actions() in serve_forever().
#: It no longer delays shutdown(), which wakes the loop directly.
DEFAULT_POLL_INTERVAL = 0.5


class ServerState(enum.Enum):
    """Where a server is in its life. Transitions only go down this list,
    except SERVING -> READY when serve_forever() returns."""

    READY = "ready"  # constructed; bound and listening if bind_and_activate
    SERVING = "serving"  # serve_forever() is running in some thread
    STOPPING = "stopping"  # shutdown() asked the loop to stop; it has not yet
    CLOSED = "closed"  # server_close() has run; the socket is gone


class Waker:
    """One end of a socket pair that a selector loop watches.

    ``wake()`` may be called from any thread, any number of times; the loop
    calls ``drain()`` after it woke up. The pair is non-blocking so that
    neither side can ever block: a full pipe already means "wake up".
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def wake(self) -> None:
        try:
            self._writer.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already full (a wake-up is pending) or already closed

    def drain(self) -> None:
        try:
            while self._reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class BaseServer:
    """Base class for server classes.

    Methods for the caller:

    - __init__(server_address, RequestHandlerClass)
    - serve_forever(poll_interval=0.5)
    - shutdown()
    - handle_request()  # if you do not use serve_forever()
    - fileno() -> int   # for a selector
    - server_close(), or use the server as a context manager

    Methods that may be overridden:

    - server_bind()
    - server_activate()
    - get_request() -> request, client_address
    - handle_timeout()
    - verify_request(request, client_address) -> bool
    - server_close()
    - process_request(request, client_address)
    - shutdown_request(request)
    - close_request(request)
    - service_actions()
    - handle_error(request, client_address)

    Methods for derived classes:

    - finish_request(request, client_address)

    Class variables that may be overridden by derived classes or instances:

    - timeout: seconds handle_request() waits before handle_timeout(); None waits forever
    - address_family, socket_type, allow_reuse_address, allow_reuse_port (transports)

    Instance variables:

    - server_address
    - RequestHandlerClass
    - socket (transports)
    - state: a ServerState (netserv only)

    Differences from the standard module (all compatible):

    - shutdown() wakes the loop and returns in milliseconds, not after up to
      poll_interval; called from the loop's own thread it raises RuntimeError
      instead of deadlocking.
    - server_close() while serve_forever() runs stops the loop instead of
      leaving it spinning on a closed socket.
    - serve_forever() or handle_request() after server_close() raises
      RuntimeError naming the state instead of failing deep in the selector.
    - a class that lists a mix-in after the server class (so the mix-in is
      silently ignored) raises TypeError when the class is created.
    """

    timeout: float | None = None

    def __init__(self, server_address: Any, RequestHandlerClass: Any) -> None:
        """Constructor. May be extended, do not override."""
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        self.state = ServerState.READY
        self._stop_requested = False
        self._is_shut_down = threading.Event()
        self._waker: Waker | None = None
        self._serving_thread: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_mixin_order(cls)

    # -- activation ------------------------------------------------------

    def server_activate(self) -> None:
        """Called by the constructor to activate the server. May be overridden."""

    # -- the serve loop ------------------------------------------------

    def serve_forever(self, poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        """Handle requests one at a time until shutdown() is called.

        Every ``poll_interval`` seconds, and after every request,
        ``service_actions()`` runs. ``self.timeout`` is ignored: it belongs to
        handle_request(). Do periodic work in service_actions() or another
        thread.

        Resource handling: the selector and the waker exist only while the
        loop runs. Error handling: see the module docstring; a
        BaseException other than Exception stops the loop and propagates.
        """
        self._require_open("serve_forever")
        self._is_shut_down.clear()
        self._serving_thread = threading.get_ident()
        waker = self._waker = Waker()
        if not self._stop_requested:
            self.state = ServerState.SERVING
        try:
            with ServerSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(waker, selectors.EVENT_READ)
                while not self._stop_requested:
                    ready = selector.select(poll_interval)
                    # shutdown() during select(): leave now, take nothing more.
                    if self._stop_requested:
                        break
                    for key, _ in ready:
                        if key.fileobj is self:
                            self._handle_request_noblock()
                        else:
                            waker.drain()
                    self.service_actions()
        finally:
            self._waker = None
            waker.close()
            self._serving_thread = None
            self._stop_requested = False
            if self.state is not ServerState.CLOSED:
                self.state = ServerState.READY
            self._is_shut_down.set()

    def shutdown(self) -> None:
        """Stop the serve_forever() loop and wait until it has stopped.

        Call it from another thread than the one running serve_forever(): from
        that thread it raises RuntimeError (the standard module deadlocks).
        If the loop is handling a request in its own thread, shutdown() waits
        for that request to finish. It does not close the server: call
        server_close() afterwards. Like the standard module, a shutdown()
        that comes before serve_forever() has started makes that
        serve_forever() return at once.
        """
        if self._serving_thread == threading.get_ident():
            raise RuntimeError(
                f"shutdown() called from the thread running serve_forever() of "
                f"{type(self).__name__}: it would wait for itself forever. Call it "
                f"from another thread, or stop from a handler with "
                f"threading.Thread(target=server.shutdown).start()"
            )
        self._request_stop()
        self._is_shut_down.wait()

    def _request_stop(self) -> None:
        """Ask the loop to stop and wake it; return without waiting."""
        self._stop_requested = True
        if self.state is ServerState.SERVING:
            self.state = ServerState.STOPPING
        waker = self._waker
        if waker is not None:
            waker.wake()

    def service_actions(self) -> None:
        """Called by the serve_forever() loop after each wake-up.

        May be overridden by a subclass or mix-in to run periodic work.
        """

    # -- one request -----------------------------------------------------

    def handle_request(self) -> None:
        """Handle one request, waiting at most the timeout for it to arrive.

        The timeout is the smaller of ``self.timeout`` and the socket's own
        timeout (``self.socket.settimeout()``), or None to wait forever. When
        it expires, handle_timeout() runs instead.
        """
        self._require_open("handle_request")
        timeout = self.socket.gettimeout()
        if timeout is None:
            timeout = self.timeout
        elif self.timeout is not None:
            timeout = min(timeout, self.timeout)
        if timeout is not None:
            deadline = time.monotonic() + timeout

        # Loop: select() may wake early (a signal) without anything to read.
        with ServerSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            while True:
                if selector.select(timeout):
                    return self._handle_request_noblock()
                if timeout is not None:
                    timeout = deadline - time.monotonic()
                    if timeout < 0:
                        return self.handle_timeout()

    def _handle_request_noblock(self) -> None:
        """Run the pipeline for one request whose arrival select() reported."""
        try:
            request, client_address = self.get_request()
        except OSError:
            return  # the client went away between select() and accept()
        if self.verify_request(request, client_address):
            try:
                self.process_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
                self.shutdown_request(request)
            except BaseException:
                self.shutdown_request(request)
                raise
        else:
            self.shutdown_request(request)

    def handle_timeout(self) -> None:
        """Called when handle_request() saw no request within the timeout."""

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Return True to process the request, False to close it unserved."""
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        """Finish the request here, then shut it down.

        The concurrency mix-ins override this to run it elsewhere.
        """
        self.finish_request(request, client_address)
        self.shutdown_request(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Finish one request by instantiating RequestHandlerClass."""
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request: Any) -> None:
        """Shut down and close one request."""
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Clean up one request."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Report an Exception raised while processing a request.

        The default prints a traceback to stderr and carries on.
        May be overridden.
        """
        print("-" * 40, file=sys.stderr)
        print("Exception occurred during processing of request from",
              client_address, file=sys.stderr)
        traceback.print_exc()
        print("-" * 40, file=sys.stderr)

    # -- closing -----------------------------------------------------------

    def server_close(self) -> None:
        """Clean up the server. May be overridden; extend with super().

        If serve_forever() is still running, it is asked to stop (it would
        otherwise be left watching a closed socket).
        """
        if self.state in (ServerState.SERVING, ServerState.STOPPING):
            self._request_stop()
        self.state = ServerState.CLOSED

    def _require_open(self, action: str) -> None:
        if self.state is ServerState.CLOSED:
            raise RuntimeError(
                f"{action}() on a closed {type(self).__name__}: server_close() "
                f"has already run (state {self.state.name})"
            )

    def __enter__(self) -> BaseServer:
        return self

    def __exit__(self, *args: object) -> None:
        self.server_close()


def _check_mixin_order(cls: type) -> None:
    """Refuse a class whose bases list a mix-in after a server class.

    ``class S(TCPServer, ThreadingMixIn)`` puts BaseServer before the mix-in
    in the MRO, so BaseServer.process_request wins and the server silently
    stays synchronous. Any non-server class after BaseServer in the MRO that
    defines a method BaseServer also defines is shadowed in this way.
    """
    mro = cls.__mro__
    try:
        base_at = mro.index(BaseServer)
    except ValueError:  # pragma: no cover - only for BaseServer itself
        return
    for later in mro[base_at + 1:]:
        if later is object or issubclass(later, BaseServer):
            continue
        shadowed = sorted(name for name in vars(later)
                          if callable(vars(later)[name]) and hasattr(BaseServer, name)
                          and not name.startswith("__"))
        if shadowed:
            server = next(c for c in mro if issubclass(c, BaseServer) and c is not cls)
            raise TypeError(
                f"{cls.__name__} lists {later.__name__} after {server.__name__}: "
                f"{', '.join(shadowed)} of {server.__name__} and its bases come first "
                f"in the MRO, so the mix-in is never called. Put the mix-in first: "
                f"class {cls.__name__}({later.__name__}, {server.__name__})"
            )
