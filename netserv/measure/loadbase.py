"""What every simulated client of a load worker is, and what it sees of its worker.

Theory of operation
-------------------
A worker process (netserv.measure.loadworker) runs many simulated clients
on one loop; the clients (netserv.measure.loadclient for streams,
netserv.measure.loaddatagram for datagrams) send requests and match
replies. The two sides call each other, so the part they share lives here,
below both, and neither imports the other:

* :class:`Poller`: the readiness poller (epoll, or poll()) the worker waits
  on and each client registers its sockets with, with the handler to call;
* :class:`WorkerView`: the few things a client asks of its worker (the
  address to reach, the protocol, the clock's accounting, the error counts,
  a delayed retry), written down as a typing Protocol that
  netserv.measure.loadworker.Worker satisfies;
* :class:`Client`: the base of every client, the state the worker reads
  (did it send, did it get a reply) and the methods it calls.

A new kind of client (another transport, a TLS stream) subclasses
:class:`Client` in a module of its own that imports this one; the worker
then picks it by the run's transport. Nothing here sends or parses bytes.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from typing import Any, Protocol

from .protocol import Protocol as WireProtocol
from .spec import LoadSpec

__all__ = ["IN", "OUT", "READABLE", "RECV_SIZE", "RETRY_DELAY", "Client", "Handler", "Poller",
           "WorkerView"]

#: Bytes read per recv() call.
RECV_SIZE = 65536
#: Pause before retrying a connection the server refused (full Unix backlog,
#: server not there): short, but not a busy loop.
RETRY_DELAY = 0.005
#: poll()/epoll event bits (the same numbers in both APIs).
IN, OUT = select.POLLIN, select.POLLOUT
READABLE = select.POLLIN | select.POLLERR | select.POLLHUP


class Handler(Protocol):
    """What the poller calls when a registered descriptor is ready."""

    def on_event(self, events: int) -> None: ...


class Poller:
    """epoll (Linux) or poll(): which descriptors are ready, and whose they are.

    ``wait(timeout, precise=True)`` waits with microsecond resolution (for
    open-loop sends, which epoll and poll would make up to 1 ms late by
    rounding their timeout up to whole milliseconds): it waits in select()
    on the epoll descriptor itself, then collects the events without waiting.
    The worker creates its poller before any socket, so that descriptor's
    number is small: select() cannot watch one at or above FD_SETSIZE (1024).
    """

    def __init__(self) -> None:
        self.handlers: dict[int, Handler] = {}
        # _poller is whichever exists: both take the same register/modify/unregister.
        self._epoll: select.epoll | None = None
        self._poll: select.poll | None = None
        self._poller: select.epoll | select.poll
        if hasattr(select, "epoll"):
            self._poller = self._epoll = select.epoll()
        else:  # pragma: no cover - not Linux
            self._poller = self._poll = select.poll()

    def register(self, fd: int, events: int, handler: Handler) -> None:
        self.handlers[fd] = handler
        self._poller.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._poller.modify(fd, events)

    def unregister(self, fd: int) -> None:
        del self.handlers[fd]
        self._poller.unregister(fd)

    def wait(self, timeout: float, precise: bool = False) -> list[tuple[int, int]]:
        if self._epoll is not None:
            if precise and timeout > 0:
                if not select.select([self._epoll.fileno()], [], [], timeout)[0]:
                    return []  # the timeout came first: nothing is ready
                timeout = 0.0
            return self._epoll.poll(timeout)
        assert self._poll is not None
        return self._poll.poll(timeout * 1e3)

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()


class WorkerView(Protocol):
    """The worker as its clients see it (netserv.measure.loadworker.Worker).

    ``admit`` before each send (False: the request is not sent: past the end
    of the run or over the request budget), ``record`` for each right reply,
    ``count`` for each failed request, ``later`` to retry after a delay.
    ``seq`` is the worker's request counter: a client increments it once per
    request it sends and writes it into the request (the protocol's job).
    """

    run: LoadSpec
    address: Any  # str or (host, port): what connect() takes
    family: socket.AddressFamily
    protocol: WireProtocol
    poller: Poller
    reply_timeout: float
    tmpdir: str | None  # where a Unix datagram client binds its own address
    seq: int

    def admit(self, intended: float, now: float) -> bool: ...

    def record(self, intended: float, sent: float, now: float) -> None: ...

    def count(self, kind: str, n: int = 1) -> None: ...

    def later(self, delay: float, action: Callable[[], None]) -> None: ...


class Client:
    """One simulated client: the state its worker reads, the calls it makes.

    Subclasses implement every method below but ``retry``; ``fire(None)``
    sends a closed-loop client's next request now. Errors are counted on the
    worker (``worker.count``), never raised, except from ``__init__`` (a
    socket that cannot be made is the run's failure, not a request's).
    """

    def __init__(self, worker: WorkerView, index: int) -> None:
        self.worker = worker
        self.index = index
        self.got_reply = False
        self.sent_any = False  # a client whose turn never came is not "silent"
        self.closed_loop = worker.run.rate is None

    def connect(self) -> None:
        """Before the start: set up what the first request needs."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Set up (or given up): the run may start as far as this client goes."""
        raise NotImplementedError

    def fire(self, intended: float | None) -> None:
        """Send one request due at ``intended`` (None: now, closed loop)."""
        raise NotImplementedError

    def retry(self) -> None:
        self.fire(None)

    def pending(self) -> int:
        """Requests sent and not yet answered."""
        raise NotImplementedError

    def check_timeouts(self, now: float) -> None:
        """Count as ``timeout`` what waited longer than the reply timeout."""
        raise NotImplementedError

    def finish(self) -> None:
        """End of the run: count what is unanswered, close every socket."""
        raise NotImplementedError

