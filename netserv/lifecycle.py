"""A server's lifecycle: its states, the table of legal steps, and the waker.

Theory of operation
-------------------
A server is in one :class:`ServerState` at a time. It moves only by a *step*
(the name of the call that asks for the move: ``serve_forever``,
``handle_request``, ``shutdown``, ``server_close``, and ``loop_end`` when a
serve_forever() loop returns) and only along :data:`TRANSITIONS`, the one table
``{(state, step): new_state}``. :meth:`Lifecycle.step` is the one method that
moves the state: under a lock, so that two threads see the moves in one
order. A step missing from the table is illegal and raises RuntimeError
naming the state and the step; the server is left as it was.

The table says what used to be separate flags:

* whether a loop runs (SERVING, STOPPING, CLOSING): a second serve_forever()
  is refused instead of starting a loop nobody can stop;
* whether a stop was asked for (STOPPING, SHUTDOWN_PENDING, CLOSING, CLOSED):
  :attr:`Lifecycle.stop_requested` is kept with the state, by step();
* whether shutdown() must wait: :attr:`Lifecycle.idle` is cleared when a
  loop starts and set when it returns, as the standard module's event is;
  it starts cleared (a shutdown() before the first loop waits for that loop)
  and a step into CLOSED sets it, so shutdown() after server_close() returns
  at once, served or not.

:func:`describe_transitions` gives the table as text, one line per move, for
documents and figures (docs/differences.md shows it).

The :class:`Waker` is how a stop request reaches a loop blocked in select():
the loop watches one end of a socket pair, shutdown() writes to the other.
A process forked while the loop runs (a ForkingMixIn child, a pre-fork
worker) inherits both ends, but not the loop: its shutdown() writes a *stop*
byte instead, and the loop, reading it, stops as if shutdown() had been
called in its own process.
"""

from __future__ import annotations

import enum
import select
import socket
import threading
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["TRANSITIONS", "Lifecycle", "ServerState", "Waker", "describe_transitions"]


class ServerState(enum.Enum):
    """Where a server is in its life. The legal moves are in TRANSITIONS."""

    # Open, no loop runs, no stop pending: serve_forever() may start a loop.
    READY = "ready"
    # A serve_forever() loop runs (in some thread): one at a time.
    SERVING = "serving"
    # A loop runs and shutdown() asked it to stop: it returns after its current turn.
    STOPPING = "stopping"
    # shutdown() came while no loop ran: the next serve_forever() returns at once
    # (the standard module's contract), and that shutdown() waits for it.
    SHUTDOWN_PENDING = "shutdown pending"
    # server_close() ran while a loop runs: the loop returns after its current turn.
    CLOSING = "closing"
    # server_close() has run and no loop runs: nothing can serve any more.
    CLOSED = "closed"


_S = ServerState

#: Every legal step: (state, step) -> the state after it. Steps that leave
#: the state as it is (shutdown() twice, handle_request() while open) are
#: listed too: a step that is not here is an error.
TRANSITIONS: Mapping[tuple[ServerState, str], ServerState] = MappingProxyType({
    (_S.READY, "serve_forever"): _S.SERVING,
    (_S.SHUTDOWN_PENDING, "serve_forever"): _S.STOPPING,  # the loop returns at once
    (_S.READY, "handle_request"): _S.READY,
    (_S.SHUTDOWN_PENDING, "handle_request"): _S.SHUTDOWN_PENDING,
    (_S.SERVING, "handle_request"): _S.SERVING,  # allowed, as in the stdlib
    (_S.STOPPING, "handle_request"): _S.STOPPING,
    (_S.READY, "shutdown"): _S.SHUTDOWN_PENDING,
    (_S.SERVING, "shutdown"): _S.STOPPING,
    (_S.STOPPING, "shutdown"): _S.STOPPING,
    (_S.SHUTDOWN_PENDING, "shutdown"): _S.SHUTDOWN_PENDING,
    (_S.CLOSING, "shutdown"): _S.CLOSING,  # waits for the loop to return
    (_S.CLOSED, "shutdown"): _S.CLOSED,  # returns at once: no loop can run
    (_S.READY, "server_close"): _S.CLOSED,
    (_S.SHUTDOWN_PENDING, "server_close"): _S.CLOSED,  # releases the waiting shutdown()
    (_S.SERVING, "server_close"): _S.CLOSING,
    (_S.STOPPING, "server_close"): _S.CLOSING,
    (_S.CLOSING, "server_close"): _S.CLOSING,
    (_S.CLOSED, "server_close"): _S.CLOSED,  # closing twice is harmless, as in the stdlib
    (_S.SERVING, "loop_end"): _S.READY,  # an exception ended the loop
    (_S.STOPPING, "loop_end"): _S.READY,
    (_S.CLOSING, "loop_end"): _S.CLOSED,
})

#: States in which a loop that runs, or starts, must return at once.
STOP_REQUESTED = frozenset({_S.STOPPING, _S.SHUTDOWN_PENDING, _S.CLOSING, _S.CLOSED})

# Why a step is refused, by state: (adjective for the server, reason).
_REFUSALS = {
    _S.SERVING: ("running", "serve_forever() is already running; one server runs one loop"),
    _S.STOPPING: ("running", "serve_forever() is still running; one server runs one loop"),
    _S.CLOSING: ("closed", "server_close() has already run"),
    _S.CLOSED: ("closed", "server_close() has already run"),
}


class Lifecycle:
    """The state of one server and the one method that moves it.

    ``owner`` names the server in error messages. ``idle`` is the Event
    shutdown() waits on: cleared by the serve_forever step, set by loop_end
    and by any step into CLOSED (see the module docstring). Thread-safe:
    every step holds the lock.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._state = ServerState.READY
        self._lock = threading.Lock()
        self.idle = threading.Event()
        # Whether a loop that runs, or starts, must return at once: the state
        # is in STOP_REQUESTED. Kept by step(), so the loop reads one attribute.
        self.stop_requested = False

    @property
    def state(self) -> ServerState:
        return self._state

    def check(self, step: str) -> None:
        """Raise RuntimeError now if ``step`` is illegal; move nothing."""
        new = TRANSITIONS.get((self._state, step))
        if new is None:
            raise self._refusal(step)

    def step(self, step: str) -> tuple[ServerState, ServerState]:
        """Move along TRANSITIONS; return (old, new) state.

        Raises RuntimeError naming the state and the step if the table has
        no such move; the state is then unchanged.
        """
        with self._lock:
            old = self._state
            new = TRANSITIONS.get((old, step))
            if new is None:
                raise self._refusal(step)
            self._state = new
            self.stop_requested = new in STOP_REQUESTED
            if step == "serve_forever":
                self.idle.clear()
            elif step == "loop_end" or new is ServerState.CLOSED:
                self.idle.set()
        return old, new

    def _refusal(self, step: str) -> RuntimeError:
        state = self._state
        adjective, reason = _REFUSALS.get(state, ("", f"{step}() is not a step from here"))
        return RuntimeError(f"{step}() on a {adjective + ' ' if adjective else ''}"
                            f"{self.owner}: {reason} (state {state.name})")


def describe_transitions() -> str:
    """TRANSITIONS as text, one line per move, grouped by state (for docs and figures)."""
    lines = []
    for state in ServerState:
        for (source, step), target in TRANSITIONS.items():
            if source is state:
                lines.append(f"{source.name:<16} --{step}--> {target.name}")
    return "\n".join(lines)


#: The two bytes a Waker carries: "look again" and "a forked copy asks you to stop".
_WAKE, _STOP = b"\0", b"\1"
#: Longest a stop request waits for room in a full socket pair (seconds): the
#: loop empties it on every turn, so room comes as soon as the loop runs.
_STOP_SEND_TIMEOUT = 5.0


class Waker:
    """One end of a socket pair that a selector loop watches.

    ``wake()`` may be called from any thread, any number of times; the loop
    calls ``drain()`` after it woke up. The pair is non-blocking so that
    neither side can ever block: a full pipe already means "wake up".
    ``wake(stop=True)`` (from a forked copy of the serving process) sends a
    stop byte, waiting up to _STOP_SEND_TIMEOUT for room, since that one
    must not be lost; ``drain()`` returns True when it read one.
    Creating one takes two file descriptors and may raise OSError (EMFILE).
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def wake(self, stop: bool = False) -> None:
        if stop:
            select.select([], [self._writer], [], _STOP_SEND_TIMEOUT)
        try:
            self._writer.send(_STOP if stop else _WAKE)
        except OSError:
            pass  # already full (a wake-up is pending: BlockingIOError) or already closed

    def drain(self) -> bool:
        """Empty the pair; True if a stop byte was among what it held."""
        stop = False
        try:
            while data := self._reader.recv(4096):
                stop = stop or _STOP in data
        except OSError:
            pass  # empty (BlockingIOError) or closed
        return stop

    def close(self) -> None:
        self._reader.close()
        self._writer.close()
