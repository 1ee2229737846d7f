"""BaseServer: the request pipeline and the one serve loop.

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

The loop is written once, here, for every model. It waits in a selector on
what ``_loop_start()`` registered (the server's socket) and on a *waker*, one
end of a socket pair: ``shutdown()`` writes a byte to the other end, so the
loop wakes at once instead of noticing at its next poll (the standard module
only polls, every 0.5 s by default). A model that watches more (the
event-driven server's connections) overrides the loop's protected hooks,
never the loop; see BaseServer's docstring. Where the server is in its life
(ready, serving, stopping, closed) is a netserv.lifecycle.Lifecycle: one
table of legal steps, and an illegal step raises.

Error rule (the same as the standard module, kept exactly):

* ``Exception`` raised while processing a request goes to ``handle_error``,
  then the request is shut down; the server carries on.
* Anything else (``KeyboardInterrupt``, ``SystemExit``) shuts the request
  down and propagates out of the loop.
* accept() failing because the client went away is dropped, as in the
  standard module; failing for lack of descriptors or memory is reported
  once and backed off (netserv.accepting).

Where new things go: a transport (how to get a request) is a subclass, in its
own module (``tcp``, ``udp``, ``unix``); a concurrency model (where to process
it) is a mix-in, in its own module (``threads``, ``forking``, ``pool``,
``eventdriven``).
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Self

from .accepting import ACCEPT_EXHAUSTED_ERRNOS, DEFAULT_ACCEPT_BACKOFF, AcceptPause
from .lifecycle import STOP_REQUESTED, TRANSITIONS, Lifecycle, ServerState, Waker
from .settings import Setting, check_settings

__all__ = ["TRANSITIONS", "BaseServer", "ServerState"]

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

#: handle_request()'s wait (BaseServer.timeout; ForkingMixIn redefines it).
TIMEOUT = Setting("timeout", 0, unit="seconds", none="handle_request() waits forever",
                  why="a negative wait is no wait; an infinite one is None")
#: serve_forever()'s argument, checked as the settings are.
POLL_INTERVAL = Setting("poll_interval", 0, above=True, unit="seconds",
                        none="service_actions() only after a wake-up",
                        why="0 or less wakes the loop without waiting: a core at 100 %")

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
    - handle_accept_exhausted(error)  # netserv only

    Methods for derived classes:

    - finish_request(request, client_address)

    Class variables that may be overridden by derived classes or instances:

    - timeout: seconds handle_request() waits before handle_timeout(); None waits forever
    - accept_backoff: seconds accepting pauses after an out-of-resources error (netserv only)
    - address_family, socket_type, allow_reuse_address, allow_reuse_port (transports)
    - numeric_settings (netserv only): each class's numeric settings and
      their ranges (netserv.settings); every one the server and its handler
      class have is checked at construction, before anything is bound, and
      again when a loop starts, with a ValueError or TypeError naming the
      setting, its range and the value

    Instance variables:

    - server_address
    - RequestHandlerClass
    - socket (transports)
    - state: a ServerState, read-only (netserv only)
    - stop_requested: read-only, True once a loop must return (netserv only)

    Protected hooks for mix-ins that change what the loop watches (netserv
    only). serve_forever() and handle_request() call them in the loop's
    thread; each docstring is its contract; extend them with super():

    - _loop_start(selector), _loop_stop(selector): what the loop watches
    - _loop_ready(key, events): one ready selector key, never the waker
    - _loop_timeout(poll_interval) -> float | None: how long select() may wait
    - _on_stop_requested(): a stop was asked for (shutdown(), server_close())
    - _request_wait() -> float | None: how long handle_request() waits
    - _in_loop_thread() -> bool; _selector_class: the loop's selector class

    Differences from the standard module, all compatible: docs/differences.md
    (prompt shutdown(), illegal steps refused, accept() backed off, ...).
    """

    timeout: float | None = None
    socket: socket.socket  # set by the transports (TCPServer and its subclasses)
    accept_backoff = DEFAULT_ACCEPT_BACKOFF
    _selector_class: type[selectors.BaseSelector] = ServerSelector
    numeric_settings: tuple[Setting, ...] = (
        TIMEOUT,
        Setting("accept_backoff", 0, above=True, unit="seconds",
                why="0 retries a failing accept() at once, for ever: a busy loop"),
    )

    def __init__(self, server_address: Any, RequestHandlerClass: Any) -> None:
        """Constructor. May be extended, do not override.

        Raises ValueError or TypeError for a numeric setting out of range
        (see numeric_settings), before anything is bound.
        """
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        self.check_settings()
        self._lifecycle = Lifecycle(type(self).__name__)
        self._waker: Waker | None = None  # while a loop runs
        self._serving_thread: int | None = None  # threading.get_ident() of the loop
        self._serving_pid: int | None = None  # os.getpid() of the loop's process
        self._accept_pause = AcceptPause()  # see netserv.accepting

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_mixin_order(cls)

    if TYPE_CHECKING:
        # Defined by the transports (TCPServer and its subclasses); the loop
        # and handle_request() call them, as the standard module's do.
        def fileno(self) -> int: ...

        def get_request(self) -> tuple[Any, Any]: ...

    def check_settings(self) -> None:
        """Check the numeric settings of the server and its handler (netserv only).

        Raises ValueError (out of range) or TypeError (not a number) naming
        the first setting at fault, its allowed range and its value; see
        netserv.settings. Called at construction and when a loop starts.
        """
        check_settings(self, self.RequestHandlerClass)

    @property
    def state(self) -> ServerState:
        """Where the server is in its life (see netserv.lifecycle.TRANSITIONS)."""
        return self._lifecycle.state

    @property
    def stop_requested(self) -> bool:
        """True once shutdown() or server_close() asked the loop to return."""
        return self._lifecycle.stop_requested

    # -- activation ------------------------------------------------------

    def server_activate(self) -> None:
        """Called by the constructor to activate the server. May be overridden."""

    # -- the serve loop ------------------------------------------------

    def serve_forever(self, poll_interval: float | None = DEFAULT_POLL_INTERVAL) -> None:
        """Handle requests one at a time until shutdown() is called.

        From another thread. Every ``poll_interval`` seconds, and after every
        wake-up, ``service_actions()`` runs (``self.timeout`` is handle_request()'s).

        Error handling: on a closed server, or while another loop runs,
        RuntimeError naming the state, before anything else; then
        ValueError or TypeError for a poll_interval or a numeric setting out
        of range (see check_settings()), before the loop starts. A
        BaseException other than Exception stops the loop and propagates.
        Resource handling: the selector and the waker (two descriptors)
        exist only while the loop runs; if they cannot be created (OSError,
        e.g. EMFILE) the server is left exactly as it was before the call.
        """
        self._lifecycle.check("serve_forever")  # the clearer error comes first
        POLL_INTERVAL.check(type(self).__name__, poll_interval,
                            subject=f"poll_interval of {type(self).__name__}.serve_forever()")
        self.check_settings()
        waker = Waker()
        selector: selectors.BaseSelector | None = None
        try:
            selector = self._selector_class()
            selector.register(waker, selectors.EVENT_READ)
            self._lifecycle.step("serve_forever")  # another thread may have won
        except BaseException:
            if selector is not None:
                selector.close()
            waker.close()
            raise
        self._waker, self._serving_thread = waker, threading.get_ident()
        self._serving_pid = os.getpid()
        lifecycle, pause = self._lifecycle, self._accept_pause  # read every turn
        try:
            self._loop_start(selector)
            while not lifecycle.stop_requested:
                if pause.resume_at is not None:  # accepting is paused: see accepting.py
                    pause.pace(selector, self)
                ready = selector.select(self._loop_timeout(poll_interval))
                if lifecycle.stop_requested:
                    break  # shutdown() during select(): take nothing more
                for key, events in ready:
                    if key.fileobj is waker:
                        if waker.drain():  # a forked copy called shutdown()
                            self._ask_to_stop("shutdown")
                    else:
                        self._loop_ready(key, events)
                self.service_actions()
        finally:
            try:
                self._loop_stop(selector)
            finally:
                self._waker = self._serving_thread = self._serving_pid = None
                selector.close()
                waker.close()
                self._lifecycle.step("loop_end")

    def shutdown(self) -> None:
        """Stop the serve_forever() loop and wait until it has stopped.

        Call it from another thread than the one running serve_forever(): from
        that thread it raises RuntimeError (the standard module deadlocks).
        If the loop is handling a request in its own thread, shutdown() waits
        for that request to finish. It does not close the server: call
        server_close() afterwards. Like the standard module, a shutdown()
        that comes before serve_forever() has started makes that
        serve_forever() return at once, and waits for it. After
        server_close() it returns at once (once a loop still running has
        returned): no loop can run any more.

        From a process forked while the loop ran (a ForkingMixIn child, a
        pre-fork worker: a handler's ``self.server.shutdown()``), where no
        loop runs, it asks the serving process to stop (through the loop's
        waker, which the fork copied) and returns at once: it cannot wait
        for a loop in another process. That loop then stops as after its
        own shutdown(); the server's owner still calls server_close().
        """
        serving_pid = self._serving_pid
        if serving_pid is not None and serving_pid != os.getpid():
            waker = self._waker
            assert waker is not None  # set with _serving_pid, copied by the fork
            waker.wake(stop=True)
            return
        if self._in_loop_thread():
            raise RuntimeError(
                f"shutdown() called from the thread running serve_forever() of "
                f"{type(self).__name__}: it would wait for itself forever. Call it "
                f"from another thread, or stop from a handler with "
                f"threading.Thread(target=server.shutdown).start()"
            )
        self._ask_to_stop("shutdown")
        self._lifecycle.idle.wait()

    def _ask_to_stop(self, step: str) -> None:
        """Take a stopping step; the first time a stop is asked for, wake the loop."""
        old, new = self._lifecycle.step(step)
        if old not in STOP_REQUESTED and new in STOP_REQUESTED:
            waker = self._waker
            if waker is not None:
                waker.wake()
            self._on_stop_requested()

    def _on_stop_requested(self) -> None:
        """A stop was just asked for (see the class docstring). Does nothing here."""

    def _in_loop_thread(self) -> bool:  # see the class docstring
        """True in the thread running the loop (not in a forked copy of it)."""
        return (self._serving_thread == threading.get_ident()
                and self._serving_pid == os.getpid())

    def service_actions(self) -> None:
        """Called by the serve_forever() loop after each wake-up.

        May be overridden by a subclass or mix-in to run periodic work.
        """

    # -- what the loop watches: the protected hooks -------------------------

    def _loop_start(self, selector: selectors.BaseSelector) -> None:
        """Register what the loop watches: here the server's socket (data None)."""
        selector.register(self, selectors.EVENT_READ)

    def _loop_ready(self, key: selectors.SelectorKey, events: int) -> None:
        """One ready key: the server's socket runs the pipeline for one request."""
        if key.fileobj is self:
            self._handle_request_noblock()

    def _loop_timeout(self, poll_interval: float | None) -> float | None:
        """How long the next select() may wait: here until accepting resumes, at most.

        An override may first do what is due (close idle connections) and
        must return min(super()._loop_timeout(poll_interval), its own wait).
        """
        pause = self._accept_pause
        return poll_interval if pause.resume_at is None else pause.wait(poll_interval)

    def _loop_stop(self, selector: selectors.BaseSelector) -> None:
        """Undo _loop_start as a loop ends (also after an exception). Nothing here."""

    # -- one request -----------------------------------------------------

    def handle_request(self) -> None:
        """Handle one request, waiting at most the timeout for it to arrive.

        The timeout is the smaller of ``self.timeout`` and the socket's own
        timeout (``self.socket.settimeout()``), or None to wait forever. When
        it expires, handle_timeout() runs instead. On a closed server:
        RuntimeError naming the state; a numeric setting out of range:
        ValueError or TypeError (see check_settings()). Through the loop's
        hooks, a model that watches more (event-driven) serves one turn of
        whatever is ready.
        """
        self._lifecycle.step("handle_request")
        self.check_settings()
        timeout = self._request_wait()
        deadline = None if timeout is None else time.monotonic() + timeout

        # Loop: select() may wake early (a signal, a hook's shorter wait).
        with self._selector_class() as selector:
            self._loop_start(selector)
            try:
                while True:
                    self._accept_pause.pace(selector, self)
                    ready = selector.select(self._loop_timeout(timeout))
                    if ready:
                        for key, events in ready:
                            self._loop_ready(key, events)
                        return
                    if deadline is not None:
                        timeout = deadline - time.monotonic()
                        if timeout < 0:
                            return self.handle_timeout()
            finally:
                self._loop_stop(selector)

    def _request_wait(self) -> float | None:
        """handle_request()'s wait: the smaller of timeout and the socket's own."""
        timeout = self.socket.gettimeout()
        if timeout is None:
            return self.timeout
        return timeout if self.timeout is None else min(timeout, self.timeout)

    def _handle_request_noblock(self) -> None:
        """Run the pipeline for one request whose arrival select() reported."""
        try:
            request, client_address = self.get_request()
        except OSError as error:
            if (error.errno in ACCEPT_EXHAUSTED_ERRNOS
                    and self._accept_pause.failed(self.accept_backoff)):
                self.handle_accept_exhausted(error)  # once per episode
            return  # otherwise the client went away between select() and accept()
        self._accept_pause.failing = False
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

    def handle_accept_exhausted(self, error: OSError) -> None:
        """accept() failed for lack of descriptors or memory (netserv only).

        Called once per episode (until an accept() succeeds again); the loop
        meanwhile retries every ``accept_backoff`` seconds and serves on.
        The default prints one line to stderr. May be overridden.
        """
        print(f"{type(self).__name__}: accept() failed: {error}; retrying every "
              f"{self.accept_backoff} s until it succeeds", file=sys.stderr)

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
        otherwise be left watching a closed socket); server_close() does not
        wait for it. Closing twice is harmless.
        """
        self._ask_to_stop("server_close")

    def __enter__(self) -> Self:
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
